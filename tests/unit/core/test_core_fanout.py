"""The broadcast engine: bounded concurrency, 410 cleanup of the right connection, retries, failures."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from core_support import RecordingTransport, load_event, seed_subscribers
from lambdacast.channels import ChannelStore
from lambdacast.errors import ConnectionGone
from lambdacast.fanout import ThreadedFanout
from lambdacast.gateway import ManagementGateway, RetryPolicy
from lambdacast.handlers import Runtime

TTL = 1_900_000_000


def subscribe_many(store: ChannelStore, channel: str, ids: list[str]) -> None:
    for cid in ids:
        store.put_connection(cid, connected_at=1_795_626_612_345, source_ip=None, user_id=None, ttl=TTL)
        store.subscribe(cid, channel, max_channels=100, ttl_epoch=TTL)


@pytest.fixture
def engine(transport: RecordingTransport, store: ChannelStore) -> Iterator[ThreadedFanout]:
    fanout = ThreadedFanout(transport, concurrency=8, on_gone=store.remove_connection)
    yield fanout
    fanout.close()


def test_every_recipient_in_every_page_gets_the_frame_once(
    engine: ThreadedFanout, transport: RecordingTransport
) -> None:
    # GIVEN three pages of recipients
    pages = [[f"c{n}" for n in range(k, k + 10)] for k in (0, 10, 20)]
    # WHEN broadcasting
    result = engine.broadcast(pages, b"{}")
    # THEN each got it exactly once
    assert sorted(c for c, _ in transport.posts) == sorted(c for p in pages for c in p)
    assert (result.delivered, result.recipients, result.gone, result.failed) == (30, 30, [], [])


def test_skipped_connections_get_nothing(engine: ThreadedFanout, transport: RecordingTransport) -> None:
    # GIVEN the publisher in skip WHEN broadcasting THEN only the others receive
    result = engine.broadcast([["me", "you"]], b"{}", skip=frozenset({"me"}))
    assert [c for c, _ in transport.posts] == ["you"]
    assert result.recipients == 1


def test_a_gone_recipient_is_removed_and_the_others_still_receive(
    engine: ThreadedFanout, transport: RecordingTransport, store: ChannelStore
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
    # AND exactly c07's rows are gone, on every channel, both sides; the sender's and others' stay
    assert store.get_connection("c07") is None
    assert list(store.subscriber_pages("news")) == [[]]
    assert sorted(next(iter(store.subscriber_pages("lobby")))) == [c for c in ids if c != "c07"]
    assert store.get_connection("c08") is not None


def test_a_failing_recipient_is_counted_and_never_raised(
    engine: ThreadedFanout, transport: RecordingTransport
) -> None:
    # GIVEN a recipient whose retries run out WHEN broadcasting THEN it is counted failed, the rest receive
    transport.failing.add("bad")
    result = engine.broadcast([["a", "bad", "b"]], b"{}")
    assert result.failed == ["bad"]
    assert result.delivered == 2


def test_a_failing_cleanup_does_not_stop_the_broadcast(transport: RecordingTransport) -> None:
    # GIVEN a gone recipient whose cleanup fails
    def broken_cleanup(_cid: str) -> None:
        raise RuntimeError("table unavailable")

    transport.gone.add("g")
    engine = ThreadedFanout(transport, concurrency=2, on_gone=broken_cleanup)
    # WHEN broadcasting THEN the others still receive and g is still counted gone
    result = engine.broadcast([["a", "g", "b"]], b"{}")
    engine.close()
    assert (result.delivered, result.gone) == (2, ["g"])


def test_posts_run_concurrently_up_to_the_limit_and_never_beyond() -> None:
    # GIVEN a transport whose first 4 posts each wait until 4 posts are in flight together
    concurrency = 4
    barrier = threading.Barrier(concurrency, timeout=30)
    lock = threading.Lock()
    in_flight = 0
    peak = 0

    class Gate:
        def post(self, connection_id: str, data: bytes) -> int:
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            try:
                if int(connection_id) < concurrency:
                    barrier.wait()  # breaks (BrokenBarrierError -> failed) unless 4 run at once
            finally:
                with lock:
                    in_flight -= 1
            return 0

    engine = ThreadedFanout(Gate(), concurrency=concurrency, on_gone=lambda _c: None)
    # WHEN 40 recipients are broadcast to
    result = engine.broadcast([[str(n) for n in range(40)]], b"{}")
    engine.close()
    # THEN all were delivered (so 4 ran at once) and never more than 4 were in flight
    assert result.delivered == 40
    assert peak == concurrency


class ThrottlingClient:
    """A management API client answering 429 to the first post of each connection in ``throttled``."""

    def __init__(self, throttled: set[str], always: set[str]) -> None:
        self.throttled = set(throttled)
        self.always = always
        self.delivered: list[str] = []
        self.lock = threading.Lock()

    def post_to_connection(self, *, ConnectionId: str, Data: bytes) -> dict[str, Any]:
        with self.lock:
            if ConnectionId in self.always or ConnectionId in self.throttled:
                self.throttled.discard(ConnectionId)
                error: Any = {
                    "Error": {"Code": "LimitExceededException", "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": 429},
                }
                raise ClientError(error, "PostToConnection")
            self.delivered.append(ConnectionId)
        return {}


def test_throttled_posts_are_retried_and_exhaustion_is_counted_as_failed() -> None:
    # GIVEN a gateway over a client that throttles c1 and c2 once and c3 always
    client = ThrottlingClient({"c1", "c2"}, always={"c3"})
    gateway = ManagementGateway(client, retry=RetryPolicy(max_attempts=3), sleep=lambda _s: None)  # type: ignore[arg-type]
    engine = ThreadedFanout(gateway, concurrency=4, on_gone=lambda _c: None)
    # WHEN broadcasting to c0..c4
    result = engine.broadcast([[f"c{n}" for n in range(5)]], b"{}")
    engine.close()
    # THEN c1 and c2 were delivered after one retry each, and c3's exhaustion is a counted failure
    assert sorted(client.delivered) == ["c0", "c1", "c2", "c4"]
    assert (result.delivered, result.retries, result.failed) == (4, 2, ["c3"])


def test_gone_through_the_real_gateway_classification(store: ChannelStore) -> None:
    # GIVEN a client answering 410 for one connection
    class GoneClient:
        def post_to_connection(self, *, ConnectionId: str, Data: bytes) -> dict[str, Any]:
            if ConnectionId == "dead":
                error = {
                    "Error": {"Code": "GoneException", "Message": ""},
                    "ResponseMetadata": {"HTTPStatusCode": 410},
                }
                raise ClientError(error, "PostToConnection")  # type: ignore[arg-type]
            return {}

    subscribe_many(store, "lobby", ["dead", "live"])
    gateway = ManagementGateway(GoneClient())  # type: ignore[arg-type]
    with pytest.raises(ConnectionGone):
        gateway.post("dead", b"{}")
    engine = ThreadedFanout(gateway, concurrency=2, on_gone=store.remove_connection)
    result = engine.broadcast(store.subscriber_pages("lobby"), b"{}")
    engine.close()
    assert (result.delivered, result.gone) == (1, ["dead"])
    assert list(store.subscriber_pages("lobby")) == [["live"]]


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
    assert invoke("default")(event) == {"statusCode": 200}
    elapsed = time.perf_counter() - started
    record_property("fanout_600_seconds", round(elapsed, 3))
    print(f"\nfan-out to {n - 1} subscribers (moto + in-memory transport): {elapsed * 1000:.0f} ms")
    # THEN every other subscriber received exactly one message with seq 1
    received: dict[str, list[int]] = {}
    for cid, data in transport.posts:
        frame = json.loads(data)
        if frame["type"] == "message":
            received.setdefault(cid, []).append(frame["seq"])
    assert received == {cid: [1] for cid in ids[1:]}
    # AND the ack counts them
    assert transport.frames(publisher) == [
        {"type": "ack", "id": "g", "channel": "stadium", "seq": 1, "delivered": n - 1}
    ]


def test_fanout_with_simulated_network_latency_runs_posts_in_parallel(record_property: Any) -> None:
    # GIVEN a transport where every post takes 5 ms (an in-region round trip is ~5-10 ms)
    class Slow(RecordingTransport):
        def post(self, connection_id: str, data: bytes) -> int:
            time.sleep(0.005)
            return super().post(connection_id, data)

    transport = Slow()
    engine = ThreadedFanout(transport, concurrency=64, on_gone=lambda _c: None)
    recipients = [f"r{n}" for n in range(1000)]
    # WHEN 1000 recipients are broadcast to in pages of 250
    started = time.perf_counter()
    result = engine.broadcast([recipients[k : k + 250] for k in range(0, 1000, 250)], b"{}")
    elapsed = time.perf_counter() - started
    engine.close()
    record_property("fanout_1000x5ms_seconds", round(elapsed, 3))
    print(
        f"\nfan-out to 1000 recipients at 5 ms per post, 64 threads: {elapsed * 1000:.0f} ms"
        " (sequential would be 5000 ms)"
    )
    # THEN every recipient got it exactly once (wall time is reported, not asserted: shared machine)
    assert sorted(c for c, _ in transport.posts) == sorted(recipients)
    assert result.delivered == 1000


def test_a_failing_page_read_finishes_the_started_posts_then_raises(
    engine: ThreadedFanout, transport: RecordingTransport
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
    assert invoke("default")(_publish_event(ids[0])) == {"statusCode": 200}
    # THEN the first page's subscribers received the message
    assert sorted(c for c, d in transport.posts if json.loads(d)["type"] == "message") == sorted(ids[1:])
    # AND the publisher gets an ack for seq 1 counting them, not internal_error (no retry, no new seq)
    assert transport.frames(ids[0]) == [
        {"type": "ack", "id": "p", "channel": "stadium", "seq": 1, "delivered": 2}
    ]


def test_a_publish_whose_presence_announcement_fails_still_acks(
    invoke: Any, transport: RecordingTransport, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a subscribed publisher and a presence announcement that fails after the fan-out
    ids = ["PubAAAAAAAAAAAA=", "S1AAAAAAAAAAAA="]
    seed_subscribers(dynamodb, "stadium", ids, ttl=TTL)

    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("announce failed")

    monkeypatch.setattr("lambdacast.publishing.announce", boom)
    # WHEN the publisher publishes
    assert invoke("default")(_publish_event(ids[0])) == {"statusCode": 200}
    # THEN the subscriber has the message and the publisher its ack
    assert [json.loads(d)["seq"] for c, d in transport.posts if c == ids[1]] == [1]
    assert transport.frames(ids[0])[-1]["type"] == "ack"


def test_no_post_starts_after_the_deadline_and_the_cut_recipients_count_failed(
    engine: ThreadedFanout, transport: RecordingTransport
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
    from lambdacast.fanout import DEADLINE_MARGIN_S
    from lambdacast.handlers import on_message

    ids = ["PubAAAAAAAAAAAA=", "S1AAAAAAAAAAAA=", "S2AAAAAAAAAAAA="]
    seed_subscribers(dynamodb, "stadium", ids, ttl=TTL)

    class AlmostOutOfTime:
        def get_remaining_time_in_millis(self) -> int:
            return int(DEADLINE_MARGIN_S * 1000) - 1

    # WHEN the publisher publishes
    assert on_message(_publish_event(ids[0]), AlmostOutOfTime()) == {"statusCode": 200}  # type: ignore[arg-type]
    # THEN the fan-out posts to nobody (the deadline derived from the context has passed)
    assert [c for c, d in transport.posts if json.loads(d)["type"] == "message"] == []
    # AND the publisher still gets its ack, counting no deliveries
    assert transport.frames(ids[0]) == [
        {"type": "ack", "id": "p", "channel": "stadium", "seq": 1, "delivered": 0}
    ]
