"""Parsing the feature actions (presence, history, subscribe since) and building their frames."""

from __future__ import annotations

import json

import pytest
from lambdacast.errors import InvalidChannel, ProtocolError
from lambdacast.wire.frames import history_frame, member_frame, presence_frame, subscribed_frame
from lambdacast.wire.limits import Limits
from lambdacast.wire.parser import parse_frame
from lambdacast.wire.requests import History, Presence, Subscribe

LIMITS = Limits(max_data_bytes=64, max_channels=3)


def parse(obj: object) -> object:
    return parse_frame(json.dumps(obj), LIMITS)


def test_subscribe_since_parses() -> None:
    # GIVEN a subscribe with since WHEN parsed THEN since is kept
    assert parse({"action": "subscribe", "channel": "c", "since": 7}) == Subscribe(channel="c", since=7)


def test_history_defaults_to_fifty_and_no_before() -> None:
    # GIVEN a bare history frame WHEN parsed THEN limit 50, before None
    assert parse({"action": "history", "channel": "c", "id": "x"}) == History(channel="c", limit=50, id="x")


def test_history_takes_limit_and_before() -> None:
    # GIVEN limit and before WHEN parsed THEN both are kept
    frame = {"action": "history", "channel": "c", "limit": 100, "before": 9}
    assert parse(frame) == History(channel="c", limit=100, before=9)


def test_presence_parses() -> None:
    # GIVEN a presence frame WHEN parsed THEN a Presence request
    assert parse({"action": "presence", "channel": "presence-x"}) == Presence(channel="presence-x")


@pytest.mark.parametrize(
    "obj",
    [
        {"action": "history", "channel": "c", "limit": 0},
        {"action": "history", "channel": "c", "limit": 101},
        {"action": "history", "channel": "c", "limit": "5"},
        {"action": "history", "channel": "c", "before": 0},
        {"action": "history", "channel": "c", "before": None},
        {"action": "subscribe", "channel": "c", "since": False},
        {"action": "presence"},
    ],
)
def test_out_of_range_or_wrong_typed_numbers_are_invalid_frame(obj: dict[str, object]) -> None:
    # GIVEN a malformed field WHEN parsed THEN invalid_frame (ProtocolError), never a crash
    with pytest.raises(ProtocolError):
        parse(obj)


def test_a_bad_channel_in_history_is_invalid_channel() -> None:
    # GIVEN a channel name with a space WHEN parsed THEN invalid_channel
    with pytest.raises(InvalidChannel):
        parse({"action": "history", "channel": "a b"})


def test_the_new_actions_are_listed_in_the_unknown_action_message() -> None:
    # GIVEN an unknown action WHEN parsed THEN the message lists presence and history
    with pytest.raises(ProtocolError, match="presence, history"):
        parse({"action": "nope"})


def test_subscribed_carries_recovered_only_when_asked() -> None:
    # GIVEN the two forms WHEN built THEN recovered appears only with since
    assert "recovered" not in json.loads(subscribed_frame(None, channel="c", seq=1, epoch="e"))
    assert (
        json.loads(subscribed_frame("i", channel="c", seq=1, epoch="e", recovered=False))["recovered"]
        is False
    )
    # AND reset appears only when the replay started the epoch over
    assert "reset" not in json.loads(subscribed_frame("i", channel="c", seq=1, epoch="e", recovered=True))
    reset = json.loads(subscribed_frame("i", channel="c", seq=1, epoch="e", recovered=True, reset=True))
    assert (reset["epoch"], reset["reset"]) == ("e", True)


def test_member_presence_and_history_frames() -> None:
    # GIVEN members and stored messages WHEN the frames are built THEN they have the documented shape
    left = member_frame("member_left", channel="presence-x", user_id="u", info={"name": "A"}, v=8)
    assert json.loads(left) == {
        "type": "member_left",
        "channel": "presence-x",
        "member": {"userId": "u", "info": {"name": "A"}},
        "v": 8,
    }
    members = [{"userId": "u", "info": {}}]
    listed = json.loads(presence_frame("p", channel="presence-x", members=members, v=8))
    assert (listed["members"], listed["v"]) == (members, 8)
    stored = ['{"type":"message","seq":1}', '{"type":"message","seq":2}']
    assert json.loads(history_frame(None, channel="c", epoch="e", messages_json=stored)) == {
        "type": "history",
        "channel": "c",
        "epoch": "e",
        "messages": [{"type": "message", "seq": 1}, {"type": "message", "seq": 2}],
    }
    assert json.loads(history_frame("h", channel="c", epoch=None, messages_json=[]))["messages"] == []
