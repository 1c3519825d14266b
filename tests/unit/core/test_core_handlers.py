"""The three deployed handlers end to end: events/ in, DynamoDB (moto) changed, frames posted."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from core_support import RecordingTransport, load_event, message_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lambdacast.channels import ChannelStore
from lambdacast.handlers import Runtime
from lambdacast.numbering import Counter, Numbering

ME = "BFHPhfCWIAMCKlQ="  # the connection id in every events/ file
OTHER = "BFHQ2dLtoAMCJjw="
Invoke = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class App:
    """The three deployed handlers wired to moto and the recording transport, one connection open."""

    connect: Invoke
    disconnect: Invoke
    default: Invoke
    transport: RecordingTransport
    store: ChannelStore
    dynamodb: Any
    runtime: Runtime

    def open(self, connection_id: str) -> None:
        assert self.connect(load_event("connect", connectionId=connection_id)) == {"statusCode": 200}

    def send(self, body: dict[str, Any], connection_id: str = ME) -> None:
        assert self.default(message_event(json.dumps(body), connection_id))["statusCode"] == 200

    def event(self, name: str) -> None:
        assert self.default(load_event(name))["statusCode"] == 200

    def items(self) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName=self.store.table_name)["Items"])


@pytest.fixture
def fresh(
    invoke: Callable[[str], Invoke],
    transport: RecordingTransport,
    store: ChannelStore,
    dynamodb: Any,
    runtime: Runtime,
) -> App:
    """The handlers, no connection open yet."""
    return App(
        invoke("connect"), invoke("disconnect"), invoke("default"), transport, store, dynamodb, runtime
    )


@pytest.fixture
def app(fresh: App) -> App:
    """The handlers with connection ME open."""
    fresh.open(ME)
    return fresh


def publish_n(app: App, channel: str, count: int) -> None:
    """``count`` messages numbered on ``channel`` by the deployed numbering (no subscriber needed)."""
    numbering = Numbering(app.store)
    for _ in range(count):
        numbering.number(
            channel, build_frame=lambda *_: "{}", clock=lambda: 1_795_626_616_334, history_ttl_seconds=60
        )


def only_frame(transport: RecordingTransport, connection_id: str = ME) -> dict[str, Any]:
    frames = transport.frames(connection_id)
    assert len(frames) == 1, frames
    return frames[0]


# -- $connect / $disconnect -------------------------------------------------------------------------


def test_connect_records_the_connection_with_ttl_and_posts_nothing(fresh: App) -> None:
    # GIVEN the $connect event WHEN the handler runs
    event = load_event("connect")
    assert fresh.connect(event) == {"statusCode": 200}
    # THEN the META item holds connectedAt, sourceIp, no user, and a TTL of connectedAt + the setting
    conn = fresh.store.get_connection(ME)
    assert conn is not None
    rc = event["requestContext"]
    assert conn.connected_at == rc["connectedAt"]
    assert conn.source_ip == rc["identity"]["sourceIp"]
    assert conn.user_id is None
    assert conn.subs == 0
    assert conn.ttl == rc["connectedAt"] // 1000 + fresh.runtime.settings.connection_ttl_seconds
    # AND nothing was posted (API Gateway answers 410 during $connect)
    assert fresh.transport.posts == []


def test_connect_records_the_authorizer_user_id(fresh: App) -> None:
    # GIVEN a $connect that passed an authorizer WHEN handled THEN its userId is recorded
    assert fresh.connect(load_event("connect-authorized")) == {"statusCode": 200}
    conn = fresh.store.get_connection(ME)
    assert conn is not None
    assert conn.user_id == "user-42"


def test_connect_refuses_the_handshake_when_the_table_write_fails(
    fresh: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a table that refuses writes
    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("table unavailable")

    monkeypatch.setattr(fresh.store, "put_connection", boom)
    # WHEN $connect runs THEN it answers 500 instead of accepting an unrecorded connection
    assert fresh.connect(load_event("connect")) == {"statusCode": 500}


def test_connect_offering_lambdacast_v1_gets_it_echoed(fresh: App) -> None:
    # GIVEN a browser's $connect offering "lambdacast.v1, chat" (events/connect-subprotocol.json)
    event = load_event("connect-subprotocol")
    # WHEN handled
    response = fresh.connect(event)
    # THEN the handshake is accepted with lambdacast.v1 echoed (else the browser fails it) and recorded
    assert response == {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "lambdacast.v1"}}
    assert fresh.store.get_connection(ME) is not None


def test_connect_offering_only_unknown_subprotocols_is_refused_and_recorded_nowhere(
    fresh: App, log_lines: Any
) -> None:
    # GIVEN a $connect whose client offers only subprotocols this server does not speak
    event = load_event("connect-subprotocol")
    event["headers"]["Sec-WebSocket-Protocol"] = "mqtt, wamp.2.json"
    event["multiValueHeaders"]["Sec-WebSocket-Protocol"] = ["mqtt, wamp.2.json"]
    # WHEN handled THEN 400, nothing is recorded, and the log says why
    assert fresh.connect(event) == {"statusCode": 400}
    assert fresh.store.get_connection(ME) is None
    refusals = [line for line in log_lines() if line.get("message") == "refusing the handshake"]
    assert "mqtt" in refusals[0]["reason"]
    assert "lambdacast.v1" in refusals[0]["reason"]


def test_connect_without_a_subprotocol_offer_has_no_protocol_header(fresh: App) -> None:
    # GIVEN the plain $connect event (no Sec-WebSocket-Protocol) WHEN handled THEN a bare 200
    assert fresh.connect(load_event("connect")) == {"statusCode": 200}


def test_disconnect_removes_the_connection_and_every_subscription(app: App) -> None:
    # GIVEN a connection subscribed to two channels, and another connection on one of them
    app.open(OTHER)
    for channel in ("lobby", "news"):
        app.send({"action": "subscribe", "channel": channel})
    app.send({"action": "subscribe", "channel": "lobby"}, OTHER)
    # WHEN it disconnects
    assert app.disconnect(load_event("disconnect")) == {"statusCode": 200}
    # THEN its META and both sides of its subscriptions are gone, and the other connection's stay
    assert app.store.get_connection(ME) is None
    assert list(app.store.subscriber_pages("lobby")) == [[OTHER]]
    assert list(app.store.subscriber_pages("news")) == [[]]
    assert not [i for i in app.items() if ME in i["pk"]["S"] or ME in i["sk"]["S"]]
    assert app.store.get_connection(OTHER) is not None


def test_disconnect_of_an_unknown_connection_is_harmless(fresh: App) -> None:
    # GIVEN no record of the connection WHEN $disconnect runs THEN it succeeds and writes nothing
    assert fresh.disconnect(load_event("disconnect")) == {"statusCode": 200}
    assert fresh.items() == []


# -- actions ---------------------------------------------------------------------------------------


def test_hello_answers_welcome_with_connection_id_and_limits(app: App) -> None:
    # GIVEN a connected client WHEN it sends events/hello.json
    app.event("hello")
    # THEN it receives welcome with its connection id, no user, protocol 1 and the limits
    assert only_frame(app.transport) == {
        "type": "welcome",
        "id": "h1",
        "connectionId": ME,
        "userId": None,
        "protocol": 1,
        "limits": {"maxDataBytes": 32768, "maxChannels": 100},
    }


def test_hello_reports_the_authorizer_user_id(app: App) -> None:
    # GIVEN a frame whose requestContext carries an authorizer context
    event = load_event("hello", authorizer={"principalId": "user-42", "userId": "user-42"})
    # WHEN handled THEN welcome reports the user
    app.default(event)
    assert only_frame(app.transport)["userId"] == "user-42"


def test_ping_answers_pong_with_server_time(app: App) -> None:
    # GIVEN a connected client WHEN it sends events/ping.json THEN pong with its id and a millisecond time
    app.event("ping")
    frame = only_frame(app.transport)
    assert (frame["type"], frame["id"]) == ("pong", "k1")
    assert isinstance(frame["ts"], int)
    assert frame["ts"] > 1_700_000_000_000


def test_subscribe_answers_subscribed_with_seq_zero_on_a_new_channel(app: App) -> None:
    # GIVEN a new channel WHEN events/subscribe.json arrives THEN subscribed with seq 0 and the row exists
    app.event("subscribe")
    reply = only_frame(app.transport)
    epoch = reply.pop("epoch")
    assert reply == {"type": "subscribed", "id": "s1", "channel": "lobby", "seq": 0}
    assert list(app.store.subscriber_pages("lobby")) == [[ME]]
    # AND the channel's counter now exists with that epoch (12 hex characters), so the first
    # message will carry it
    assert len(epoch) == 12
    assert Numbering(app.store).current("lobby") == Counter(seq=0, epoch=epoch)


def test_subscribe_reports_the_latest_seq(app: App) -> None:
    # GIVEN a channel that has seen 3 publishes
    publish_n(app, "lobby", 3)
    # WHEN subscribing THEN subscribed carries seq 3
    app.event("subscribe")
    assert only_frame(app.transport)["seq"] == 3


def test_subscribe_is_idempotent(app: App) -> None:
    # GIVEN a subscription WHEN the same subscribe is sent again
    app.event("subscribe")
    app.event("subscribe")
    # THEN both are answered subscribed, and there is one subscription counted once
    assert [f["type"] for f in app.transport.frames(ME)] == ["subscribed", "subscribed"]
    assert list(app.store.subscriber_pages("lobby")) == [[ME]]
    conn = app.store.get_connection(ME)
    assert conn is not None
    assert conn.subs == 1


def test_unsubscribe_answers_unsubscribed_and_removes_both_sides(app: App) -> None:
    # GIVEN a subscription WHEN events/unsubscribe.json arrives
    app.event("subscribe")
    app.transport.clear()
    app.event("unsubscribe")
    # THEN unsubscribed, and neither side of the subscription is left; the counter is back to 0
    assert only_frame(app.transport) == {"type": "unsubscribed", "id": "u1", "channel": "lobby"}
    assert [i["sk"]["S"] for i in app.items() if i["pk"]["S"] != "CHAN#lobby"] == ["META"]
    assert [i["sk"]["S"] for i in app.items() if i["pk"]["S"] == "CHAN#lobby"] == ["SEQ"]
    conn = app.store.get_connection(ME)
    assert conn is not None
    assert conn.subs == 0


def test_unsubscribe_is_idempotent(app: App) -> None:
    # GIVEN a connection that never subscribed WHEN it unsubscribes twice
    app.event("unsubscribe")
    app.event("unsubscribe")
    # THEN both are answered and the counter did not go below zero
    assert [f["type"] for f in app.transport.frames(ME)] == ["unsubscribed", "unsubscribed"]
    conn = app.store.get_connection(ME)
    assert conn is not None
    assert conn.subs == 0


def test_publish_reaches_every_subscriber_but_not_the_publisher(app: App) -> None:
    # GIVEN two subscribers of lobby
    app.open(OTHER)
    app.event("subscribe")
    app.send({"action": "subscribe", "channel": "lobby"}, OTHER)
    app.transport.clear()
    # WHEN the first publishes events/publish.json
    app.event("publish")
    # THEN the other receives the message with seq 1, from, ts
    message = only_frame(app.transport, OTHER)
    assert (message["type"], message["channel"], message["seq"]) == ("message", "lobby", 1)
    assert message["data"] == {"text": "hello, world"}
    assert message["from"] == {"userId": None}  # SenderIdentity "user": no connection id
    assert isinstance(message["ts"], int)
    # AND the publisher only receives the ack, counting one delivery, in the message's epoch
    assert only_frame(app.transport) == {
        "type": "ack",
        "id": "p1",
        "channel": "lobby",
        "seq": 1,
        "epoch": message["epoch"],
        "delivered": 1,
    }


def test_publish_with_echo_reaches_the_publisher_too(app: App) -> None:
    # GIVEN the only subscriber WHEN it publishes with echo THEN it gets its message, then the ack
    app.event("subscribe")
    app.transport.clear()
    app.event("publish-echo")
    frames = app.transport.frames(ME)
    assert [f["type"] for f in frames] == ["message", "ack"]
    assert frames[0]["data"] == {"text": "me too"}
    assert frames[1]["delivered"] == 1


def test_seq_goes_up_by_one_per_publish(app: App) -> None:
    # GIVEN a subscriber WHEN it publishes three times THEN messages and acks carry seq 1, 2, 3
    app.event("subscribe")
    app.transport.clear()
    for _ in range(3):
        app.event("publish-echo")
    assert [f["seq"] for f in app.transport.frames(ME) if f["type"] == "message"] == [1, 2, 3]
    assert [f["seq"] for f in app.transport.frames(ME) if f["type"] == "ack"] == [1, 2, 3]


def test_a_gone_subscriber_is_removed_and_the_publish_goes_on(app: App) -> None:
    # GIVEN three subscribers, one of which closed without a $disconnect
    gone = "BFHR1aB2oAMCKzg="
    for cid in (OTHER, gone):
        app.open(cid)
        app.send({"action": "subscribe", "channel": "lobby"}, cid)
    app.event("subscribe")
    app.transport.gone.add(gone)
    app.transport.clear()
    # WHEN a message is published
    app.event("publish")
    # THEN the live one got it, the publisher's ack counts 1, and the gone one's rows are removed
    assert only_frame(app.transport, OTHER)["seq"] == 1
    assert only_frame(app.transport)["delivered"] == 1
    assert app.store.get_connection(gone) is None
    assert sorted(next(iter(app.store.subscriber_pages("lobby")))) == sorted([ME, OTHER])


# -- every error code ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "code", "frame_id"),
    [
        ("invalid-json", "invalid_json", None),
        ("not-an-object", "invalid_frame", None),
        ("missing-action", "invalid_frame", "m1"),
        ("bad-id", "invalid_frame", None),
        ("binary-frame", "invalid_frame", None),
        ("subscribe-missing-channel", "invalid_frame", "s5"),
        ("publish-missing-data", "invalid_frame", "p5"),
        ("unknown-action", "unknown_action", "d1"),
        ("subscribe-bad-channel", "invalid_channel", "s4"),
        ("subscribe-private", "forbidden", "s2"),
        ("subscribe-presence", "forbidden", "s3"),
        ("publish-private", "forbidden", "p4"),
        ("publish-too-large", "too_large", "p3"),
        ("publish", "not_subscribed", "p1"),
    ],
)
def test_bad_frames_get_their_error_frame_and_change_nothing(
    app: App, event: str, code: str, frame_id: str | None
) -> None:
    # GIVEN a connected client and the table as it is
    before = app.items()
    # WHEN it sends a bad frame
    app.event(event)
    # THEN it receives one error frame with the code, its id when it had a valid one, and a sentence
    frame = only_frame(app.transport)
    assert (frame["type"], frame["code"]) == ("error", code)
    assert frame.get("id") == frame_id
    assert len(frame["message"]) > 20
    # AND nothing in the table changed
    assert app.items() == before


def test_data_just_under_the_limit_is_published(app: App) -> None:
    # GIVEN events/publish-too-large.json: a 32767-char string, 32769 bytes serialized
    body = json.loads(load_event("publish-too-large")["body"])
    assert len(json.dumps(body["data"])) == 32769
    app.event("subscribe")
    app.transport.clear()
    # WHEN the same data two characters shorter (exactly the limit) is published THEN it is acked
    body["data"] = body["data"][:-2]
    app.send(body)
    assert only_frame(app.transport)["type"] == "ack"


def test_too_many_channels(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a limit of 3 channels per connection, all used
    monkeypatch.setattr(app.runtime, "settings", replace(app.runtime.settings, max_channels=3))
    for n in range(3):
        app.send({"action": "subscribe", "channel": f"c{n}"})
    app.transport.clear()
    # WHEN a 4th is asked for
    app.send({"action": "subscribe", "channel": "c3", "id": "four"})
    # THEN too_many_channels, no row was written and the counter stays at 3
    frame = only_frame(app.transport)
    assert (frame["code"], frame["id"]) == ("too_many_channels", "four")
    assert list(app.store.subscriber_pages("c3")) == [[]]
    conn = app.store.get_connection(ME)
    assert conn is not None
    assert conn.subs == 3


def test_at_the_channel_limit_resubscribing_still_works_and_unsubscribing_frees_a_slot(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a limit of 3 channels per connection, all used
    monkeypatch.setattr(app.runtime, "settings", replace(app.runtime.settings, max_channels=3))
    for n in range(3):
        app.send({"action": "subscribe", "channel": f"c{n}"})
    app.transport.clear()
    # WHEN it re-subscribes to one it holds, unsubscribes another, then subscribes to a 4th
    app.send({"action": "subscribe", "channel": "c0"})
    app.send({"action": "unsubscribe", "channel": "c1"})
    app.send({"action": "subscribe", "channel": "c3"})
    # THEN all three succeed
    assert [f["type"] for f in app.transport.frames(ME)] == ["subscribed", "unsubscribed", "subscribed"]


def test_unexpected_failure_becomes_internal_error_frame(
    app: App, monkeypatch: pytest.MonkeyPatch, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    # GIVEN a store that fails unexpectedly
    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.store, "subscribe", boom)
    # WHEN a valid subscribe arrives
    app.event("subscribe")
    # THEN the client gets internal_error with its id and no internals
    frame = only_frame(app.transport)
    assert (frame["type"], frame["code"], frame["id"]) == ("error", "internal_error", "s1")
    assert "secret" not in frame["message"]
    # AND the traceback is logged as JSON with the connection id and request id
    errors = [x for x in log_lines() if x.get("level") == "ERROR"]
    assert errors
    assert "RuntimeError: secret internals" in errors[0]["exception"]
    assert errors[0]["connection_id"] == ME
    assert errors[0]["api_request_id"] == load_event("subscribe")["requestContext"]["requestId"]


def test_every_log_line_carries_connection_and_request_id(
    app: App, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    # GIVEN a subscribed client WHEN it publishes
    app.event("subscribe")
    log_lines()
    app.event("publish-echo")
    logs = log_lines()
    # THEN every log line has both ids
    assert logs
    for line in logs:
        assert line["connection_id"] == ME
        assert line["api_request_id"] == load_event("publish-echo")["requestContext"]["requestId"]


def test_publish_emits_emf_metrics(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a subscribed client WHEN it publishes with echo
    app.event("subscribe")
    capsys.readouterr()
    app.event("publish-echo")
    # THEN one EMF document carries the message, delivery, gone and duration metrics
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    assert len(emf) == 1
    names = {m["Name"] for m in emf[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"Messages", "Deliveries", "GoneConnections", "FanoutDuration"} <= names
    assert emf[0]["Deliveries"] == [1.0]


def test_the_reply_is_the_route_response_and_nothing_is_posted(app: App) -> None:
    # GIVEN an open connection WHEN it pings
    response = app.default(load_event("ping"))
    # THEN the pong is the response's body (API Gateway's route response delivers it)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["type"] == "pong"
    # AND no @connections request was made for it
    assert app.transport.requests == 0


def test_without_direct_replies_the_reply_is_posted_to_the_caller(app: App) -> None:
    # GIVEN a stack whose $default route has no route response (DIRECT_REPLIES=false)
    app.runtime.settings = replace(app.runtime.settings, direct_replies=False)
    # WHEN the caller pings
    response = app.default(load_event("ping"))
    # THEN the pong was posted to its connection (one signed request) and the response has no body
    assert response == {"statusCode": 200}
    assert [f["type"] for f in app.transport.frames(ME)] == ["pong"]
    assert app.transport.requests == 1


def test_a_posted_reply_to_a_caller_that_is_gone_cleans_it_up(app: App) -> None:
    # GIVEN posted replies, and a subscribed caller that closes before its reply is posted (410)
    app.runtime.settings = replace(app.runtime.settings, direct_replies=False)
    app.event("subscribe")
    app.transport.gone.add(ME)
    # WHEN it pings
    app.event("ping")
    # THEN its rows are removed
    assert app.store.get_connection(ME) is None
    assert list(app.store.subscriber_pages("lobby")) == [[]]


bodies = st.one_of(
    st.none(),
    st.text(),
    st.builds(
        lambda a, extra: json.dumps({"action": a, **extra}),
        st.sampled_from(["hello", "ping", "subscribe", "unsubscribe", "publish"]) | st.text(max_size=10),
        st.dictionaries(
            st.sampled_from(["id", "channel", "data", "echo"]),
            st.none() | st.booleans() | st.integers() | st.text(max_size=140) | st.lists(st.integers()),
        ),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, binary=st.booleans())
def test_any_body_gets_exactly_one_reply_and_never_an_exception(
    app: App, body: str | None, binary: bool
) -> None:
    # GIVEN any body at all
    app.transport.clear()
    # WHEN the $default handler runs
    result = app.default(message_event(body, ME, binary=binary))
    # THEN it returns 200 and the caller got exactly one reply frame (plus its own echo at most)
    assert result["statusCode"] == 200
    replies = [f for f in app.transport.frames(ME) if f["type"] != "message"]
    assert len(replies) == 1
    assert replies[0]["type"] in {"welcome", "pong", "subscribed", "unsubscribed", "ack", "error"}
    assert replies[0].get("code") != "internal_error"


def test_the_deployed_runtime_posts_through_the_one_engine(fresh: App) -> None:
    # GIVEN the runtime the handlers build when no exchange is injected
    from lambdacast.delivery.broadcaster import DirectBroadcaster

    runtime = Runtime(fresh.runtime.settings, store=fresh.store)
    endpoint = "https://k3xq9w2m7d.execute-api.eu-west-1.amazonaws.com/dev"
    # WHEN it is asked for the fan-out engine of an endpoint
    engine = runtime.fanout(endpoint)
    # THEN it is the signed transport's engine for that endpoint, sized by the setting, cleaning up
    # 410s through the departures (rows and presence), built once per endpoint and shared with replays
    assert isinstance(engine, DirectBroadcaster)
    assert engine.endpoint == endpoint
    assert engine.concurrency == runtime.settings.fanout_concurrency
    assert engine.on_gone == runtime.departures.remove
    assert runtime.fanout(endpoint) is engine
    assert runtime.direct(endpoint) is engine


def test_subscription_rows_expire_with_their_connection(app: App) -> None:
    # GIVEN a connection (connectedAt from events/connect.json) WHEN it subscribes
    app.event("subscribe")
    # THEN both subscription rows carry the same TTL as its META item: connect time + the setting
    expected = str(
        load_event("connect")["requestContext"]["connectedAt"] // 1000
        + app.runtime.settings.connection_ttl_seconds
    )
    ttls = {(i["pk"]["S"], i["sk"]["S"]): i["ttl"]["N"] for i in app.items() if "ttl" in i}
    assert ttls == {
        (f"CONN#{ME}", "META"): expected,
        ("CHAN#lobby", f"CONN#{ME}"): expected,
        (f"CONN#{ME}", "CHAN#lobby"): expected,
    }
