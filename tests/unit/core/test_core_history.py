"""History (every accepted publish stored, paged) and recovery (subscribe with since)."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import load_event
from lambdacast.history import MAX_RECOVERY, HistoryStore, seq_key
from lambdacast.ratelimit import RateLimiter
from world_support import World

ME = "BFHPhfCWIAMCKlQ="  # the connection id in every events/ file
PUB = "BFHPub11oAMCAAA="


@pytest.fixture
def lobby(world: World) -> World:
    """PUB is subscribed to lobby (and may publish fast); ME is connected but not subscribed."""
    world.runtime.limiter = RateLimiter(rate=10_000, burst=10_000)
    world.open(PUB)
    world.open(ME)
    world.send({"action": "subscribe", "channel": "lobby"}, PUB)
    return world


def publish(world: World, *values: Any) -> None:
    for value in values:
        world.send({"action": "publish", "channel": "lobby", "data": value}, PUB)


def test_every_publish_is_stored_with_its_seq_and_a_ttl(lobby: World) -> None:
    # GIVEN a publisher WHEN it publishes twice
    publish(lobby, "a", "b")
    # THEN two history items hold the exact message frames, zero-padded seq keys, TTL = ts + 24 h
    items = sorted(lobby.items("HIST#lobby"), key=lambda i: i["sk"]["S"])
    assert (
        [i["sk"]["S"] for i in items] == [seq_key(1), seq_key(2)] == ["0000000000000001", "0000000000000002"]
    )
    messages = lobby.frames(PUB, "ack")
    assert len(messages) == 2
    import json

    stored = json.loads(items[0]["frame"]["S"])
    assert (stored["type"], stored["seq"], stored["data"]) == ("message", 1, "a")
    assert int(items[0]["ttl"]["N"]) == stored["ts"] // 1000 + 86400


def test_a_publish_writes_only_the_counter_and_the_history_item(
    lobby: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a count of the write calls the store's client makes
    writes: list[str] = []
    client = lobby.store.client
    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
        original = getattr(client, name)
        monkeypatch.setattr(client, name, _counting(original, name, writes))
    # WHEN one message is published
    publish(lobby, "x")
    # THEN exactly two writes happened: the seq counter and the history item
    assert sorted(writes) == ["put_item", "update_item"]


def _counting(original: Any, name: str, writes: list[str]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        writes.append(name)
        return original(*args, **kwargs)

    return wrapper


def test_history_answers_the_newest_messages_in_seq_order(lobby: World) -> None:
    # GIVEN five messages
    publish(lobby, 1, 2, 3, 4, 5)
    # WHEN ME asks for history with limit 2 (events/history.json)
    lobby.default(load_event("history"))
    # THEN it gets seq 4 and 5, in order, as full message frames
    reply = lobby.last(ME)
    assert (reply["type"], reply["id"], reply["channel"]) == ("history", "hi1", "lobby")
    assert [(m["seq"], m["data"]) for m in reply["messages"]] == [(4, 4), (5, 5)]


def test_history_pages_backwards_with_before(lobby: World) -> None:
    # GIVEN five messages WHEN paging with before=4, limit 2, then before=2
    publish(lobby, 1, 2, 3, 4, 5)
    lobby.send({"action": "history", "channel": "lobby", "limit": 2, "before": 4}, ME)
    first = [m["seq"] for m in lobby.last(ME)["messages"]]
    lobby.send({"action": "history", "channel": "lobby", "limit": 2, "before": 2}, ME)
    second = [m["seq"] for m in lobby.last(ME)["messages"]]
    # THEN the pages are [2, 3] then [1]
    assert (first, second) == ([2, 3], [1])


def test_history_defaults_to_fifty_messages(lobby: World) -> None:
    # GIVEN 60 messages WHEN history is asked without a limit THEN the newest 50 come back
    publish(lobby, *range(60))
    lobby.send({"action": "history", "channel": "lobby"}, ME)
    assert [m["seq"] for m in lobby.last(ME)["messages"]] == list(range(11, 61))


def test_history_of_an_empty_channel_is_empty(lobby: World) -> None:
    # GIVEN no messages WHEN history is asked THEN an empty list
    lobby.send({"action": "history", "channel": "quiet"}, ME)
    assert lobby.last(ME)["messages"] == []


def test_a_history_limit_over_100_is_refused(lobby: World) -> None:
    # GIVEN events/history-bad-limit.json (limit 500) WHEN sent THEN invalid_frame saying the range
    lobby.default(load_event("history-bad-limit"))
    reply = lobby.last(ME)
    assert (reply["code"], reply["id"]) == ("invalid_frame", "hi2")
    assert "1 to 100" in reply["message"]


def test_expired_messages_are_not_returned_even_before_dynamodb_deletes_them(lobby: World) -> None:
    # GIVEN three messages, the first of which is past its TTL (DynamoDB deletes lazily)
    publish(lobby, 1, 2, 3)
    lobby.dynamodb.update_item(
        TableName=lobby.store.table_name,
        Key={"pk": {"S": "HIST#lobby"}, "sk": {"S": seq_key(1)}},
        UpdateExpression="SET #t = :old",
        ExpressionAttributeNames={"#t": "ttl"},
        ExpressionAttributeValues={":old": {"N": "1"}},
    )
    # WHEN history is asked THEN only 2 and 3 come back
    lobby.send({"action": "history", "channel": "lobby"}, ME)
    assert [m["seq"] for m in lobby.last(ME)["messages"]] == [2, 3]


# -- recovery --------------------------------------------------------------------------------------


def test_subscribe_since_replays_the_gap_in_order_before_subscribed(lobby: World) -> None:
    # GIVEN five messages, and a client that last saw seq 2 (events/subscribe-since.json)
    publish(lobby, "a", "b", "c", "d", "e")
    # WHEN it subscribes with since 2
    lobby.default(load_event("subscribe-since"))
    # THEN messages 3, 4, 5 arrive as normal message frames, then subscribed with recovered true
    frames = lobby.frames(ME)
    assert [(f["type"], f.get("seq")) for f in frames] == [
        ("message", 3),
        ("message", 4),
        ("message", 5),
        ("subscribed", 5),
    ]
    assert frames[-1] == {"type": "subscribed", "id": "r1", "channel": "lobby", "seq": 5, "recovered": True}
    # AND it then receives new messages live
    publish(lobby, "f")
    assert lobby.last(ME)["seq"] == 6


def test_subscribe_since_the_latest_seq_replays_nothing_and_is_recovered(lobby: World) -> None:
    # GIVEN two messages WHEN a client that saw both subscribes with since 2
    publish(lobby, "a", "b")
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 2}, ME)
    # THEN only subscribed, recovered true
    assert [(f["type"], f.get("recovered")) for f in lobby.frames(ME)] == [("subscribed", True)]


def test_a_gap_longer_than_100_is_not_recovered(lobby: World) -> None:
    # GIVEN 102 messages WHEN a client that saw none subscribes with since 0 (gap 102 > 100)
    publish(lobby, *range(MAX_RECOVERY + 2))
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 0}, ME)
    # THEN nothing is replayed and recovered is false (the client refetches with history)
    assert [(f["type"], f.get("recovered")) for f in lobby.frames(ME)] == [("subscribed", False)]


def test_a_gap_of_exactly_100_is_recovered(lobby: World) -> None:
    # GIVEN 100 messages WHEN a client subscribes with since 0 THEN all 100 are replayed in order
    publish(lobby, *range(MAX_RECOVERY))
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 0}, ME)
    assert [f["seq"] for f in lobby.frames(ME, "message")] == list(range(1, 101))
    assert lobby.last(ME)["recovered"] is True


def test_a_gap_older_than_the_retention_is_not_recovered(lobby: World) -> None:
    # GIVEN three messages, the oldest missed one past the history TTL
    publish(lobby, "a", "b", "c")
    lobby.dynamodb.delete_item(
        TableName=lobby.store.table_name, Key={"pk": {"S": "HIST#lobby"}, "sk": {"S": seq_key(2)}}
    )
    # WHEN a client that saw seq 1 subscribes with since 1
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 1}, ME)
    # THEN recovered false and no partial replay
    assert [(f["type"], f.get("recovered")) for f in lobby.frames(ME)] == [("subscribed", False)]


def test_a_hole_in_the_middle_of_the_gap_is_not_recovered(lobby: World) -> None:
    # GIVEN five messages, seq 3 missing from the history (its write failed or it expired)
    publish(lobby, "a", "b", "c", "d", "e")
    lobby.dynamodb.delete_item(
        TableName=lobby.store.table_name, Key={"pk": {"S": "HIST#lobby"}, "sk": {"S": seq_key(3)}}
    )
    # WHEN a client that saw seq 1 subscribes with since 1
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 1}, ME)
    # THEN nothing is replayed and recovered is false (the client refetches with history)
    assert [(f["type"], f.get("recovered")) for f in lobby.frames(ME)] == [("subscribed", False)]


def test_a_hole_filled_by_an_in_flight_publish_before_the_reread_is_recovered(
    lobby: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN three messages, seq 3's history item not written yet (its publish is in flight)
    publish(lobby, "a", "b", "c")
    key = {"pk": {"S": "HIST#lobby"}, "sk": {"S": seq_key(3)}}
    item = lobby.dynamodb.get_item(TableName=lobby.store.table_name, Key=key)["Item"]
    lobby.dynamodb.delete_item(TableName=lobby.store.table_name, Key=key)
    waits: list[float] = []

    def land_the_write(seconds: float) -> None:  # the in-flight write lands while recovery waits
        waits.append(seconds)
        lobby.dynamodb.put_item(TableName=lobby.store.table_name, Item=item)

    monkeypatch.setattr("lambdacast.history.time.sleep", land_the_write)
    # WHEN a client that saw seq 1 subscribes with since 1
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 1}, ME)
    # THEN recovery waited once, re-read, and replayed 2 and 3 contiguously
    assert len(waits) == 1
    assert [f["seq"] for f in lobby.frames(ME, "message")] == [2, 3]
    assert lobby.last(ME)["recovered"] is True


def test_since_ahead_of_the_channel_is_not_recovered(lobby: World) -> None:
    # GIVEN one message WHEN a client claims to have seen seq 9 THEN recovered false
    publish(lobby, "a")
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 9}, ME)
    assert lobby.last(ME)["recovered"] is False


@pytest.mark.parametrize("since", [-1, "3", 1.5, True, 2**53])
def test_a_bad_since_is_refused_before_subscribing(lobby: World, since: object) -> None:
    # GIVEN a malformed since WHEN subscribing THEN invalid_frame and no subscription row
    lobby.send({"action": "subscribe", "channel": "lobby", "since": since}, ME)
    assert lobby.last(ME)["code"] == "invalid_frame"
    assert not lobby.store.is_subscribed(ME, "lobby")


def test_a_message_whose_history_write_failed_still_reaches_subscribers(
    lobby: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a history table write that fails
    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("throttled")

    monkeypatch.setattr(HistoryStore, "append", boom)
    lobby.send({"action": "subscribe", "channel": "lobby"}, ME)
    # WHEN a message is published
    publish(lobby, "live")
    # THEN the subscriber still receives it and the publisher gets its ack
    assert lobby.last(ME)["data"] == "live"
    assert lobby.last(PUB)["type"] == "ack"
