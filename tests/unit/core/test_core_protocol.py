"""Protocol v1 parsing and frame building, without I/O."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lambdacast.errors import (
    ErrorCode,
    InvalidChannel,
    InvalidJson,
    ProtocolError,
    TooLarge,
    UnknownAction,
    error_for,
)
from lambdacast.wire.frames import error_frame, message_frame, sender_of, welcome_frame
from lambdacast.wire.handshake import SUBPROTOCOL, Handshake, choose_subprotocol
from lambdacast.wire.limits import Limits
from lambdacast.wire.parser import is_reserved, parse_frame
from lambdacast.wire.requests import Hello, Ping, Publish, Subscribe, Unsubscribe

LIMITS = Limits(max_data_bytes=64, max_channels=3)


def parse(obj: object) -> object:
    return parse_frame(json.dumps(obj), LIMITS)


def code_of(text: str, *, binary: bool = False) -> ErrorCode:
    with pytest.raises(ProtocolError) as info:
        parse_frame(text, LIMITS, binary=binary)
    return error_for(info.value)[0]


def test_hello_and_ping_parse_with_their_id() -> None:
    # GIVEN hello and ping frames with ids WHEN parsed THEN typed requests carry the ids
    assert parse({"action": "hello", "id": "a"}) == Hello(id="a")
    assert parse({"action": "ping"}) == Ping(id=None)


def test_subscribe_and_unsubscribe_parse() -> None:
    # GIVEN subscribe/unsubscribe frames WHEN parsed THEN typed requests with channel and id
    assert parse({"action": "subscribe", "channel": "lobby"}) == Subscribe(channel="lobby")
    assert parse({"action": "unsubscribe", "channel": "a.b:c", "id": "x"}) == Unsubscribe(
        channel="a.b:c", id="x"
    )


def test_publish_keeps_data_serialized_compactly() -> None:
    # GIVEN a publish with nested data and echo
    request = parse({"action": "publish", "channel": "c", "data": {"a": [1, "é"]}, "echo": True})
    # THEN the data is kept as compact JSON, unicode unescaped
    assert request == Publish(channel="c", data_json='{"a":[1,"é"]}', echo=True)


def test_publish_accepts_null_data() -> None:
    # GIVEN data: null WHEN parsed THEN accepted (data is any JSON value)
    assert parse({"action": "publish", "channel": "c", "data": None}) == Publish(
        channel="c", data_json="null"
    )


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    # GIVEN an extra field WHEN parsed THEN it is ignored
    assert parse({"action": "ping", "since": 3}) == Ping()


@pytest.mark.parametrize("text", ["", "{", "nope", '{"action": NaN}', "[" * 100_000])
def test_non_json_is_invalid_json(text: str) -> None:
    # GIVEN text that is not (sane) JSON WHEN parsed THEN invalid_json
    assert code_of(text) is ErrorCode.INVALID_JSON


@pytest.mark.parametrize("text", ["[]", "1", '"ping"', "null", "true"])
def test_non_object_is_invalid_frame(text: str) -> None:
    # GIVEN JSON that is not an object WHEN parsed THEN invalid_frame
    assert code_of(text) is ErrorCode.INVALID_FRAME


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"action": 1},
        {"action": "ping", "id": ""},
        {"action": "ping", "id": "x" * 65},
        {"action": "ping", "id": 7},
        {"action": "subscribe"},
        {"action": "subscribe", "channel": 5},
        {"action": "publish", "channel": "c"},
        {"action": "publish", "channel": "c", "data": 1, "echo": "yes"},
    ],
)
def test_missing_or_wrong_typed_fields_are_invalid_frame(obj: dict[str, object]) -> None:
    # GIVEN a missing or wrong-typed field or a bad id WHEN parsed THEN invalid_frame
    assert code_of(json.dumps(obj)) is ErrorCode.INVALID_FRAME


def test_binary_frames_are_invalid_frame() -> None:
    # GIVEN a binary frame, even holding JSON WHEN parsed THEN invalid_frame
    assert code_of('{"action":"ping"}', binary=True) is ErrorCode.INVALID_FRAME


def test_id_of_64_chars_is_accepted() -> None:
    # GIVEN an id of exactly 64 characters WHEN parsed THEN accepted
    assert parse({"action": "ping", "id": "x" * 64}) == Ping(id="x" * 64)


def test_unknown_action_carries_the_frame_id() -> None:
    # GIVEN an unknown action with an id WHEN parsed THEN unknown_action carrying that id
    with pytest.raises(UnknownAction) as info:
        parse({"action": "dance", "id": "d"})
    assert info.value.frame_id == "d"


@pytest.mark.parametrize("name", ["", "a b", "x" * 129, "émile", "a/b", "a#b", "a\nb"])
def test_bad_channel_names_are_invalid_channel(name: str) -> None:
    # GIVEN a name that is empty, too long or has a disallowed character WHEN parsed THEN invalid_channel
    with pytest.raises(InvalidChannel):
        parse({"action": "subscribe", "channel": name, "id": "i"})


@pytest.mark.parametrize("name", ["a", "x" * 128, "AZaz09_-=@,.;:", "private-x", "presence-y"])
def test_good_channel_names_parse(name: str) -> None:
    # GIVEN a name within the rules (reserved prefixes are syntactically fine) WHEN parsed THEN accepted
    assert parse({"action": "subscribe", "channel": name}) == Subscribe(channel=name)


def test_reserved_prefixes() -> None:
    # GIVEN names WHEN checked THEN only private-/presence- prefixes are reserved
    assert is_reserved("private-a")
    assert is_reserved("presence-a")
    assert not is_reserved("privateer")
    assert not is_reserved("lobby")


def test_data_at_the_limit_is_accepted_and_one_byte_more_is_too_large() -> None:
    # GIVEN a limit of 64 bytes: a JSON string of 62 chars plus quotes is 64 bytes
    at_limit = {"action": "publish", "channel": "c", "data": "x" * 62}
    # WHEN parsed THEN it is accepted, and one more byte is too_large
    assert isinstance(parse(at_limit), Publish)
    with pytest.raises(TooLarge):
        parse({**at_limit, "data": "x" * 63})


def test_data_size_counts_utf8_bytes_not_characters() -> None:
    # GIVEN 31 two-byte characters: 62 + 2 quotes = 64 bytes, then 32 of them: 66 bytes
    assert isinstance(parse({"action": "publish", "channel": "c", "data": "é" * 31}), Publish)
    with pytest.raises(TooLarge):
        parse({"action": "publish", "channel": "c", "data": "é" * 32})


def test_lone_surrogates_in_data_are_escaped_not_crashing() -> None:
    # GIVEN data holding a lone surrogate (valid JSON escape, invalid UTF-8)
    request = parse_frame('{"action":"publish","channel":"c","data":"\\ud800"}', LIMITS)
    # THEN the data is kept as an ASCII escape that encodes to UTF-8
    assert isinstance(request, Publish)
    assert request.data_json.encode("utf-8") == b'"\\ud800"'


def test_welcome_frame_shape() -> None:
    # GIVEN limits WHEN building welcome THEN the exact protocol v1 shape
    frame = json.loads(welcome_frame("h", connection_id="C=", user_id=None, limits=LIMITS))
    assert frame == {
        "type": "welcome",
        "id": "h",
        "connectionId": "C=",
        "userId": None,
        "protocol": 1,
        "limits": {"maxDataBytes": 64, "maxChannels": 3},
    }


def test_error_frame_omits_id_when_unknown() -> None:
    # GIVEN no id WHEN building an error THEN the id key is absent
    frame = json.loads(error_frame(None, code=ErrorCode.INVALID_JSON, message="m"))
    assert frame == {"type": "error", "code": "invalid_json", "message": "m"}


def test_message_frame_splices_data_json() -> None:
    # GIVEN pre-serialized data WHEN building a message THEN it decodes to the full protocol shape
    frame = message_frame(
        channel="c",
        seq=7,
        epoch="e1",
        data_json='{"k":[1,2]}',
        sender={"userId": "u", "connectionId": "A="},
        ts=123,
        msg_id="m-1",
    )
    assert json.loads(frame) == {
        "type": "message",
        "channel": "c",
        "seq": 7,
        "epoch": "e1",
        "data": {"k": [1, 2]},
        "msgId": "m-1",
        "from": {"userId": "u", "connectionId": "A="},
        "ts": 123,
    }


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        ("user", {"userId": "u"}),
        ("connection", {"userId": "u", "connectionId": "A="}),
        ("none", None),
    ],
)
def test_sender_identity_decides_what_a_message_says_about_its_sender(
    identity: str, expected: dict[str, str] | None
) -> None:
    # GIVEN a SenderIdentity WHEN the from object is built THEN it holds only what that setting allows
    assert sender_of(identity, connection_id="A=", user_id="u") == expected
    frame = json.loads(message_frame(channel="c", seq=1, epoch="e", data_json="1", sender=expected, ts=1))
    assert frame.get("from") == expected


def test_invalid_json_message_says_what_is_allowed() -> None:
    # GIVEN broken JSON WHEN parsed THEN the sentence names what to send instead
    with pytest.raises(InvalidJson) as info:
        parse_frame("{", LIMITS)
    assert "JSON object" in info.value.message


@pytest.mark.parametrize("literal", ["1e999", "-1e400", "1.5E+309"])
def test_an_out_of_range_number_is_invalid_json_carrying_the_frame_id(literal: str) -> None:
    # GIVEN a publish whose data holds a number beyond a double's range (it would decode to inf)
    text = f'{{"action":"publish","channel":"c","data":{{"x":{literal}}},"id":"f1"}}'
    # WHEN parsed
    with pytest.raises(InvalidJson) as info:
        parse_frame(text, LIMITS)
    # THEN it is refused as invalid_json, answering the frame's id and naming the number
    assert info.value.frame_id == "f1"
    assert literal in info.value.message


def test_large_but_finite_numbers_still_parse() -> None:
    # GIVEN data with the largest finite double WHEN parsed THEN it is accepted unchanged
    request = parse_frame('{"action":"publish","channel":"c","data":1.7976931348623157e308}', LIMITS)
    assert isinstance(request, Publish)
    assert json.loads(request.data_json) == 1.7976931348623157e308


out_of_range_numbers = st.tuples(st.sampled_from(["", "-"]), st.integers(309, 100_000)).map(
    lambda sign_exp: f"{sign_exp[0]}9e{sign_exp[1]}"
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
frames = st.one_of(
    st.text(),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {
            "action": st.sampled_from(["hello", "ping", "subscribe", "unsubscribe", "publish", "x"])
            | st.text()
        },
        optional={
            "id": json_values,
            "channel": json_values | st.text(),
            "data": json_values,
            "echo": json_values,
        },
    ).map(json.dumps),
    st.tuples(out_of_range_numbers, st.text(max_size=8)).map(
        lambda literal_id: (
            f'{{"action":"publish","channel":"c","id":{json.dumps(literal_id[1])},"data":[{literal_id[0]}]}}'
        )
    ),
)


@settings(max_examples=400, deadline=None)
@given(text=frames, binary=st.booleans())
def test_any_text_parses_or_raises_a_registered_protocol_error(text: str, binary: bool) -> None:
    # GIVEN any text at all
    # WHEN parsed
    try:
        request = parse_frame(text, LIMITS, binary=binary)
    except ProtocolError as exc:
        # THEN a failure is a ProtocolError whose error frame is valid JSON with a client-facing code
        code, message = error_for(exc)
        frame = json.loads(error_frame(exc.frame_id, code=code, message=message))
        assert frame["code"] != "internal_error"
        assert frame["message"]
    else:
        # OR a typed request came out
        assert isinstance(request, Hello | Ping | Subscribe | Unsubscribe | Publish)


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        (None, Handshake(accept=True)),
        ("", Handshake(accept=True)),
        ("lambdacast.v1", Handshake(accept=True, subprotocol=SUBPROTOCOL)),
        ("chat,  lambdacast.v1", Handshake(accept=True, subprotocol=SUBPROTOCOL)),
    ],
)
def test_the_subprotocol_is_chosen_when_offered_and_optional(
    offered: str | None, expected: Handshake
) -> None:
    # GIVEN a Sec-WebSocket-Protocol offer WHEN the subprotocol is chosen THEN lambdacast.v1 if offered
    assert choose_subprotocol(offered) == expected


def test_an_offer_of_only_unknown_subprotocols_is_refused_with_a_reason() -> None:
    # GIVEN an offer without lambdacast.v1 WHEN chosen THEN refused, the reason naming both sides
    handshake = choose_subprotocol("mqtt, lambdacast.v2")
    assert not handshake.accept
    assert handshake.subprotocol is None
    assert "mqtt, lambdacast.v2" in handshake.reason
    assert SUBPROTOCOL in handshake.reason
