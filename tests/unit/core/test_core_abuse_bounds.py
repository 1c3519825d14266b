"""What one hostile client can make a stack do: bounded reads, no replay amplification, shared limits.

Each test reproduces an attack from the abuse review and counts what it costs now (DynamoDB calls,
items and bytes read, posts, bytes posted). No timing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from core_support import TABLE, load_event
from lambdacast.handlers import Runtime
from lambdacast.history import seq_key
from lambdacast.ratelimit import RateLimiter
from world_support import World

ME = "BFHPhfCWIAMCKlQ="
PUB = "BFHPub11oAMCAAA="
BIG = "x" * 30_000  # a publish near MaxDataBytes (30,720)


class QueryMeter:
    """Counts the Queries a client makes and the items and bytes they read."""

    def __init__(self, client: Any) -> None:
        self.queries = 0
        self.items = 0
        self.bytes = 0
        client.meta.events.register("after-call.dynamodb.Query", self._count)

    def _count(self, parsed: dict[str, Any], **_kwargs: Any) -> None:
        self.queries += 1
        self.items += int(parsed.get("ScannedCount", 0))
        self.bytes += sum(len(i.get("frame", {}).get("S", "")) for i in parsed.get("Items", []))


def seed_history(world: World, channel: str, count: int, *, data: str, ttl: int) -> str:
    """``count`` stored messages (seq 1..count) of one epoch, written straight to the table."""
    epoch = "e0e0e0e0e0e0"
    world.dynamodb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"CHAN#{channel}"},
            "sk": {"S": "SEQ"},
            "seq": {"N": str(count)},
            "epoch": {"S": epoch},
        },
    )
    for start in range(1, count + 1, 25):
        requests = []
        for seq in range(start, min(count, start + 24) + 1):
            frame = json.dumps(
                {"type": "message", "channel": channel, "seq": seq, "epoch": epoch, "data": data}
            )
            item = {"pk": {"S": f"HIST#{channel}"}, "sk": {"S": seq_key(epoch, seq)}, "frame": {"S": frame}}
            requests.append({"PutRequest": {"Item": {**item, "ttl": {"N": str(ttl)}}}})
        world.dynamodb.batch_write_item(RequestItems={TABLE: requests})
    return epoch


@pytest.fixture
def me(world: World) -> World:
    world.open(ME)
    world.transport.clear()
    return world


def test_history_over_thousands_of_expired_messages_is_one_bounded_query(me: World) -> None:
    # GIVEN 3,000 messages past their TTL that DynamoDB has not deleted yet (it can lag by days)
    seed_history(me, "junk", 3000, data="old", ttl=1)
    meter = QueryMeter(me.store.client)
    # WHEN a client asks for the one message before 3001 (the attack: one frame, 3,000 Queries before)
    me.send({"action": "history", "channel": "junk", "limit": 1, "before": 3001, "id": "h"}, ME)
    # THEN it gets an empty page after one Query that read one item
    assert me.last(ME)["messages"] == []
    assert (meter.queries, meter.items) == (1, 1)


def test_a_full_history_page_over_expired_messages_reads_at_most_its_limit(me: World) -> None:
    # GIVEN the same 3,000 expired messages WHEN the largest page (100) is asked for
    seed_history(me, "junk", 3000, data="old", ttl=1)
    meter = QueryMeter(me.store.client)
    me.send({"action": "history", "channel": "junk", "limit": 100, "id": "h"}, ME)
    # THEN at most 100 items are read, in a few Queries, whatever lies beyond
    assert me.last(ME)["messages"] == []
    assert meter.items <= 100
    assert meter.queries <= 4


def test_a_history_page_of_big_messages_stops_reading_once_the_reply_is_full(me: World) -> None:
    # GIVEN 100 live messages of 30 KB (3 MB)
    seed_history(me, "big", 100, data=BIG, ttl=4_000_000_000)
    meter = QueryMeter(me.store.client)
    # WHEN a client asks for all 100 (3 MB read before, for a 120 KB reply)
    me.send({"action": "history", "channel": "big", "limit": 100, "id": "h"}, ME)
    # THEN the reply holds what fits (4 messages, more: true) and about as much was read, not 3 MB
    reply = me.last(ME)
    assert (len(reply["messages"]), reply["more"]) == (4, True)
    assert meter.bytes <= 5 * 30_100
    assert meter.items <= 5


def test_a_repeated_subscribe_with_since_on_a_followed_channel_replays_nothing(world: World) -> None:
    # GIVEN ME follows a channel that has 100 small messages
    world.open(ME)
    epoch = seed_history(world, "lobby", 100, data="hi", ttl=4_000_000_000)
    world.send({"action": "subscribe", "channel": "lobby"}, ME)
    world.transport.clear()
    # WHEN it sends subscribe with since 0 three times (the attack: 3 frames -> 303 posts, 9 MB)
    for n in range(3):
        world.send({"action": "subscribe", "channel": "lobby", "since": 0, "epoch": epoch, "id": f"s{n}"}, ME)
    # THEN nothing is replayed: three answers, recovered false (it can page through history)
    assert [(f["type"], f.get("recovered")) for f in world.frames(ME)] == [("subscribed", False)] * 3
    assert world.transport.requests == 0


def test_a_replay_larger_than_its_byte_budget_is_not_posted(world: World) -> None:
    # GIVEN 100 messages of 30 KB (3 MB) and a new subscription asking for all of them
    world.open(ME)
    epoch = seed_history(world, "big", 100, data=BIG, ttl=4_000_000_000)
    meter = QueryMeter(world.store.client)
    world.send({"action": "subscribe", "channel": "big", "since": 0, "epoch": epoch}, ME)
    # THEN nothing is posted (the replay would exceed 256 KB) and recovered is false
    assert [(f["type"], f.get("recovered")) for f in world.frames(ME)] == [("subscribed", False)]
    assert world.transport.requests == 0
    # AND reading stopped near the budget instead of reading 3 MB
    assert meter.bytes <= 256 * 1024 + 2 * 30_100


@pytest.fixture
def two_containers(world: World, settings: Any) -> tuple[World, Runtime]:
    """World's runtime and a second one (another warm container) over the same table and transport."""
    second = Runtime(world.runtime.settings, store=world.store, exchange=world.transport.exchange)
    for runtime in (world.runtime, second):  # in-memory buckets too large to matter
        runtime.limiter = RateLimiter(rate=1_000, burst=1_000)
    return world, second


def _publish_through(
    world: World, runtime: Runtime, cid: str, n: int, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    monkeypatch.setattr("lambdacast.handlers.get_runtime", lambda: runtime)
    world.send({"action": "publish", "channel": "lobby", "data": n, "id": f"p{n}"}, cid)
    return world.last(cid)


def test_the_publish_limit_holds_across_containers(
    two_containers: tuple[World, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a connection whose frames API Gateway spreads over two warm containers, each with its
    # own in-memory bucket (the attack: k containers gave k times the rate)
    world, second = two_containers
    monkeypatch.setattr("lambdacast.handlers.now_ms", lambda: 1_795_626_616_000)  # one window
    world.open(ME)
    world.send({"action": "subscribe", "channel": "lobby"}, ME)
    runtimes = [world.runtime, second]
    # WHEN it publishes 21 times in one window, alternating containers
    replies = [_publish_through(world, runtimes[n % 2], ME, n, monkeypatch) for n in range(21)]
    # THEN 20 (the burst) are acked and the 21st is refused, with when to retry
    assert [r["type"] for r in replies] == ["ack"] * 20 + ["error"]
    assert replies[-1]["code"] == "rate_limited"
    assert 0 < replies[-1]["retryAfterMs"] <= 2000
    # AND the refused publish was not numbered
    assert len(world.items("HIST#lobby")) == 20


def test_the_user_limit_holds_across_the_users_connections(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN one user with three connections, user limit 40 per window, connection limit 20
    world.runtime.limiter = RateLimiter(rate=1_000, burst=1_000)
    monkeypatch.setattr("lambdacast.handlers.now_ms", lambda: 1_795_626_616_000)
    tabs = ["BFHTab11oAMCAAA=", "BFHTab22oAMCAAA=", "BFHTab33oAMCAAA="]
    for cid in tabs:
        world.open(cid, user="user-42")
        world.send({"action": "subscribe", "channel": "lobby"}, cid)
    # WHEN the tabs publish 15 each in one window (45, each connection under its own 20)
    replies = []
    for n in range(15):
        for cid in tabs:
            world.send({"action": "publish", "channel": "lobby", "data": n}, cid)
            replies.append(world.last(cid))
    # THEN exactly 40 are acked and the rest are refused by the user limit
    assert sum(r["type"] == "ack" for r in replies) == 40
    refused = [r for r in replies if r["type"] == "error"]
    assert {r["code"] for r in refused} == {"rate_limited"}
    assert all("user" in r["message"] for r in refused)


def test_a_connection_that_caused_too_many_bytes_to_be_posted_is_refused_until_the_next_window(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a limit of 64 KB posted per second (128 KB per 2 s window) and 10 subscribers
    settings = replace(world.runtime.settings, posted_bytes_per_second=64 * 1024)
    world.runtime = Runtime(settings, store=world.store, exchange=world.transport.exchange)
    world.runtime.limiter = RateLimiter(rate=1_000, burst=1_000)
    monkeypatch.setattr("lambdacast.handlers.get_runtime", lambda: world.runtime)
    clock = [1_795_626_616_000]
    monkeypatch.setattr("lambdacast.handlers.now_ms", lambda: clock[0])
    world.open(PUB)
    world.send({"action": "subscribe", "channel": "lobby"}, PUB)
    for n in range(10):
        cid = f"BFHSub{n}oAMCAAA="
        world.open(cid)
        world.send({"action": "subscribe", "channel": "lobby"}, cid)
    # WHEN it publishes 30 KB to the 10 (300 KB posted), then again in the same window
    first = (world.send({"action": "publish", "channel": "lobby", "data": BIG}, PUB), world.last(PUB))[1]
    second = (world.send({"action": "publish", "channel": "lobby", "data": "x"}, PUB), world.last(PUB))[1]
    # THEN the first is delivered (it was numbered before its cost was known), the second refused
    assert (first["type"], first["delivered"]) == ("ack", 10)
    assert (second["type"], second["code"]) == ("error", "rate_limited")
    # AND in the next window it may publish again
    clock[0] += 2000
    world.send({"action": "publish", "channel": "lobby", "data": "y"}, PUB)
    assert world.last(PUB)["type"] == "ack"


def test_message_frames_do_not_tell_subscribers_the_senders_connection_id(world: World) -> None:
    # GIVEN a signed-in publisher and an anonymous reader on a public channel (SenderIdentity user)
    world.unlimited()
    world.open(PUB, user="user-42")
    world.open(ME)
    for cid in (PUB, ME):
        world.send({"action": "subscribe", "channel": "lobby"}, cid)
    # WHEN the publisher publishes
    world.send({"action": "publish", "channel": "lobby", "data": 1}, PUB)
    # THEN the reader learns the user id, never the connection id
    assert world.last(ME)["from"] == {"userId": "user-42"}
    assert PUB not in json.dumps(world.frames(ME))


def test_sender_identity_none_sends_no_from_at_all(world: World) -> None:
    # GIVEN SenderIdentity none
    world.unlimited()
    world.runtime.settings = replace(world.runtime.settings, sender_identity="none")
    world.open(PUB, user="user-42")
    world.open(ME)
    for cid in (PUB, ME):
        world.send({"action": "subscribe", "channel": "lobby"}, cid)
    # WHEN the publisher publishes THEN the frame has no from
    world.send({"action": "publish", "channel": "lobby", "data": 1}, PUB)
    assert "from" not in world.last(ME)
    assert "user-42" not in json.dumps(world.frames(ME))


def test_the_load_events_still_parse(world: World) -> None:
    # GIVEN the sample publish event WHEN decoded THEN it is a publish (the events stay fixtures)
    assert json.loads(load_event("publish")["body"])["action"] == "publish"
