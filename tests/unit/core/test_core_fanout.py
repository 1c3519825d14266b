"""The fan-out engine as the handlers run it: pages, 410 cleanup of the right connection, retries, deadlines.

The engine is the deployed one (lambdacast.delivery.broadcaster over the signed transport); only
the last hop, API Gateway's @connections API, is the in-memory ``RecordingTransport``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from core_support import RecordingTransport, load_event, seed_subscribers
from lambdacast.channels import ChannelStore
from lambdacast.delivery.broadcaster import DEADLINE_MARGIN_S, DirectBroadcaster
from lambdacast.delivery.policy import RetryPolicy
from lambdacast.handlers import Runtime

TTL = 1_900_000_000
ENDPOINT = "https://abc123.execute-api.eu-west-1.amazonaws.com/dev"


def subscribe_many(store: ChannelStore, channel: str, ids: list[str]) -> None:
    for cid in ids:
        store.put_connection(cid, connected_at=1_795_626_612_345, source_ip=None, user_id=None, ttl=TTL)
        store.subscribe(cid, channel, max_channels=100, ttl_epoch=TTL)


async def _no_sleep(_seconds: float) -> None:
    return None


def make_engine(transport: RecordingTransport, on_gone: Any, concurrency: int = 8) -> DirectBroadcaster:
    return DirectBroadcaster(
        ENDPOINT,
        concurrency=concurrency,
        on_gone=on_gone,
        exchange=transport.exchange,
        policy=RetryPolicy(max_attempts=3),
        sleep=_no_sleep,
    )


@pytest.fixture
def engine(transport: RecordingTransport, store: ChannelStore) -> Iterator[DirectBroadcaster]:
    fanout = make_engine(transport, store.remove_connection)
    yield fanout
    fanout.close()


def test_every_recipient_in_every_page_gets_the_frame_once(
    engine: DirectBroadcaster, transport: RecordingTransport
) -> None:
    # GIVEN three pages of recipients
    pages = [[f"c{n}" for n in range(k, k + 10)] for k in (0, 10, 20)]
    # WHEN broadcasting
    result = engine.broadcast(pages, b"{}")
    # THEN each got it exactly once, through one signed request each
    assert sorted(c for c, _ in transport.posts) == sorted(c for p in pages for c in p)
    assert (result.delivered, result.recipients, result.gone, result.failed) == (30, 30, [], [])
    assert transport.requests == 30


def test_a_recipient_on_two_pages_gets_the_frame_once(
    engine: DirectBroadcaster, transport: RecordingTransport
) -> None:
    # GIVEN a recipient listed on two pages WHEN broadcasting THEN it is posted to once
    result = engine.broadcast([["a", "b"], ["b", "c"]], b"{}")
    assert sorted(c for c, _ in transport.posts) == ["a", "b", "c"]
    assert result.recipients == 3


def test_skipped_connections_get_nothing(engine: DirectBroadcaster, transport: RecordingTransport) -> None:
    # GIVEN the publisher in skip WHEN broadcasting THEN only the others receive
    result = engine.broadcast([["me", "you"]], b"{}", skip=frozenset({"me"}))
    assert [c for c, _ in transport.posts] == ["you"]
    assert result.recipients == 1


def test_a_gone_recipient_is_removed_and_the_others_still_receive(
    engine: DirectBroadcaster, transport: RecordingTransport, store: ChannelStore
) -> None:
    # GIVEN 30 subscribers of lobby, one of them also on news, and that one is gone (410)
    ids = [f"c{n:02d}" for n in range(30)]
    subscribe_many(store, "lobby", ids)
    store.subscribe("c07", "news", max_channels=100, ttl_epoch=TTL)
    transport.gone.add("c07")
    # WHEN lobby is broadcast to
    result = engine.broadcast(store.subscriber_pages("lobby", page_size=7), b"{}")
    # THEN the 29 others received it and only c07 is reported gone
    assert sorted(c for c, _ in transport.posts) == [c for c in ids if c != "c07"]
    assert result.gone == ["c07"]
    assert result.delivered == 29
    # AND exactly c07's rows are gone, on every channel, both sides; the others' stay
    assert store.get_connection("c07") is None
    assert list(store.subscriber_pages("news")) == [[]]
    assert sorted(next(iter(store.subscriber_pages("lobby")))) == [c for c in ids if c != "c07"]
    assert store.get_connection("c08") is not None


def test_a_refused_recipient_is_counted_failed_and_never_raised(
    engine: DirectBroadcaster, transport: RecordingTransport
) -> None:
    # GIVEN a recipient the API refuses for good (403) WHEN broadcasting
    transport.failing.add("bad")
    result = engine.broadcast([["a", "bad", "b"]], b"{}")
    # THEN it is counted failed after one attempt, and the rest receive
    assert result.failed == ["bad"]
    assert result.delivered == 2
    assert transport.requests == 3


def test_a_failing_cleanup_does_not_stop_the_broadcast(transport: RecordingTransport) -> None:
    # GIVEN a gone recipient whose cleanup fails
    def broken_cleanup(_cid: str) -> None:
        raise RuntimeError("table unavailable")

    transport.gone.add("g")
    engine = make_engine(transport, broken_cleanup, concurrency=2)
    # WHEN broadcasting THEN the others still receive and g is still counted gone
    result = engine.broadcast([["a", "g", "b"]], b"{}")
    engine.close()
    assert (result.delivered, result.gone) == (2, ["g"])


def test_throttled_posts_are_retried_and_exhaustion_is_counted_as_failed(
    engine: DirectBroadcaster, transport: RecordingTransport
) -> None:
    # GIVEN c1 and c2 throttled once (429) and c3 throttled more often than the 3 attempts allow
    transport.throttled.update({"c1": 1, "c2": 1, "c3": 99})
    # WHEN broadcasting to c0..c4
    result = engine.broadcast([[f"c{n}" for n in range(5)]], b"{}")
    # THEN c1 and c2 were delivered after one retry each, and c3's exhaustion is a counted failure
    assert sorted(c for c, _ in transport.posts) == ["c0", "c1", "c2", "c4"]
    assert (result.delivered, result.retries, result.failed) == (4, 4, ["c3"])


def test_posting_in_order_stops_at_a_gone_connection_and_cleans_it_up(
    engine: DirectBroadcaster, transport: RecordingTransport, store: ChannelStore
) -> None:
    # GIVEN a subscribed connection that is gone
    subscribe_many(store, "lobby", ["dead"])
    transport.gone.add("dead")
    # WHEN three frames are posted to it in order
    sequenced = engine.post_in_order("dead", [b"1", b"2", b"3"])
    # THEN the first post found it gone, nothing more was sent, and its rows were removed
    assert (sequenced.posted, sequenced.gone, transport.requests) == (0, True, 1)
    assert store.get_connection("dead") is None


def test_posting_in_order_keeps_the_order(engine: DirectBroadcaster, transport: RecordingTransport) -> None:
    # GIVEN a live connection WHEN ten frames are posted in order THEN it receives them in that order
    frames = [str(n).encode() for n in range(10)]
    assert engine.post_in_order("live", frames).posted == 10
    assert [d for c, d in transport.posts if c == "live"] == frames


def test_disconnect_deletes_the_connection_through_the_management_api(
    engine: DirectBroadcaster, transport: RecordingTransport
) -> None:
    # GIVEN an open connection and one already gone WHEN both are disconnected
    transport.gone.add("old")
    # THEN the open one was closed by a DELETE and the gone one reports it was not open
    assert engine.disconnect("open") is True
    assert engine.disconnect("old") is False
    assert transport.deleted == ["open"]


def test_publish_to_600_subscribers_end_to_end(
    invoke: Any, runtime: Runtime, transport: RecordingTransport, dynamodb: Any, record_property: Any
) -> None:
    # GIVEN 600 connections subscribed to one channel (the publisher is one of them)
    n = 600
    ids = [f"F{k:04d}AAAAAAAAAA=" for k in range(n)]
    seed_subscribers(dynamodb, "stadium", ids, ttl=TTL)
    publisher = ids[0]
    event = load_event("publish", connectionId=publisher)
    event["body"] = json.dumps({"action": "publish", "channel": "stadium", "data": {"goal": 1}, "id": "g"})
    # WHEN one publishes through the $default handler
    started = time.perf_counter()
    assert invoke("default")(event)["statusCode"] == 200
    elapsed = time.perf_counter() - started
    record_property("fanout_600_seconds", round(elapsed, 3))
    print(f"\nfan-out to {n - 1} subscribers (moto + in-memory @connections): {elapsed * 1000:.0f} ms")
    # THEN every other subscriber received exactly one message with seq 1
    received: dict[str, list[int]] = {}
    for cid, data in transport.posts:
        frame = json.loads(data)
        if frame["type"] == "message":
            received.setdefault(cid, []).append(frame["seq"])
    assert received == {cid: [1] for cid in ids[1:]}
    # AND the ack counts them
    (ack,) = transport.frames(publisher)
    assert (ack["type"], ack["seq"], ack["delivered"]) == ("ack", 1, n - 1)


def test_a_failing_page_read_finishes_the_started_posts_then_raises(
    engine: DirectBroadcaster, transport: RecordingTransport
) -> None:
    # GIVEN a subscriber list whose second page cannot be read
    def pages() -> Iterator[list[str]]:
        yield ["a", "b", "c"]
        raise RuntimeError("Query failed")

    # WHEN broadcasting THEN the read error surfaces to the caller (publishing guards it) ...
    with pytest.raises(RuntimeError, match="Query failed"):
        engine.broadcast(pages(), b"{}")
    # ... and only after the first page's posts all completed
    assert sorted(c for c, _ in transport.posts) == ["a", "b", "c"]


def _publish_event(publisher: str) -> dict[str, Any]:
    event = load_event("publish", connectionId=publisher)
    event["body"] = json.dumps({"action": "publish", "channel": "stadium", "data": 1, "id": "p"})
    return event


def test_a_publish_whose_subscriber_read_fails_midway_still_acks_what_was_delivered(
    invoke: Any, transport: RecordingTransport, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a channel whose second page of subscribers cannot be read
    ids = ["PubAAAAAAAAAAAA=", "S1AAAAAAAAAAAA=", "S2AAAAAAAAAAAA="]
    seed_subscribers(dynamodb, "stadium", ids, ttl=TTL)
    original = ChannelStore.subscriber_pages

    def failing_pages(self: ChannelStore, channel: str, **kw: Any) -> Iterator[list[str]]:
        if channel != "stadium":
            yield from original(self, channel, **kw)
            return
        yield ids
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "Query")

    monkeypatch.setattr(ChannelStore, "subscriber_pages", failing_pages)
    # WHEN the publisher publishes
    assert invoke("default")(_publish_event(ids[0]))["statusCode"] == 200
    # THEN the first page's subscribers received the message
    assert sorted(c for c, d in transport.posts if json.loads(d)["type"] == "message") == sorted(ids[1:])
    # AND the publisher gets an ack for seq 1 counting them, not internal_error (no retry, no new seq)
    (ack,) = transport.frames(ids[0])
    assert (ack["type"], ack["seq"], ack["delivered"]) == ("ack", 1, 2)


def test_a_publish_whose_presence_announcement_fails_still_acks(
    invoke: Any, transport: RecordingTransport, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a subscribed publisher and a presence announcement that fails after the fan-out
    ids = ["PubAAAAAAAAAAAA=", "S1AAAAAAAAAAAA="]
    seed_subscribers(dynamodb, "stadium", ids, ttl=TTL)

    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("announce failed")

    monkeypatch.setattr("lambdacast.publish.pipeline.announce", boom)
    # WHEN the publisher publishes
    assert invoke("default")(_publish_event(ids[0]))["statusCode"] == 200
    # THEN the subscriber has the message and the publisher its ack
    assert [json.loads(d)["seq"] for c, d in transport.posts if c == ids[1]] == [1]
    assert transport.frames(ids[0])[-1]["type"] == "ack"


def test_no_post_starts_after_the_deadline_and_the_cut_recipients_count_failed(
    engine: DirectBroadcaster, transport: RecordingTransport
) -> None:
    # GIVEN a deadline already past WHEN broadcasting to three recipients
    result = engine.broadcast([["a", "b"], ["c"]], b"{}", deadline=time.monotonic() - 1)
    # THEN nothing is posted and nothing is counted delivered
    assert transport.posts == []
    assert result.delivered == 0


def test_a_publish_near_the_lambda_timeout_still_acks_within_its_deadline(
    runtime: Runtime, transport: RecordingTransport, dynamodb: Any
) -> None:
    # GIVEN subscribers, and an invocation with less time left than the fan-out's safety margin
    from lambdacast.handlers import on_message

    ids = ["PubAAAAAAAAAAAA=", "S1AAAAAAAAAAAA=", "S2AAAAAAAAAAAA="]
    seed_subscribers(dynamodb, "stadium", ids, ttl=TTL)

    class AlmostOutOfTime:
        def get_remaining_time_in_millis(self) -> int:
            return int(DEADLINE_MARGIN_S * 1000) - 1

    # WHEN the publisher publishes
    response = on_message(_publish_event(ids[0]), AlmostOutOfTime())  # type: ignore[arg-type]
    # THEN the fan-out posts to nobody (the deadline derived from the context has passed)
    assert transport.posts == []
    # AND the publisher still gets its ack, counting no deliveries
    ack = json.loads(response["body"])
    assert (ack["type"], ack["seq"], ack["delivered"]) == ("ack", 1, 0)
