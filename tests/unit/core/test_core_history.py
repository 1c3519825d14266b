"""History (every numbered message stored, paged) and recovery (subscribe with since and epoch)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from core_support import load_event
from lambdacast.history import MAX_RECOVERY, seq_key
from world_support import World

ME = "BFHPhfCWIAMCKlQ="  # the connection id in every events/ file
PUB = "BFHPub11oAMCAAA="


@pytest.fixture
def lobby(world: World) -> World:
    """PUB is subscribed to lobby (and may publish fast); ME is connected but not subscribed."""
    world.unlimited()
    world.open(PUB)
    world.open(ME)
    world.send({"action": "subscribe", "channel": "lobby"}, PUB)
    return world


def publish(world: World, *values: Any) -> None:
    for value in values:
        world.send({"action": "publish", "channel": "lobby", "data": value}, PUB)


def hist_key(world: World, seq: int) -> dict[str, Any]:
    return {"pk": {"S": "HIST#lobby"}, "sk": {"S": seq_key(world.epoch("lobby"), seq)}}


def test_every_publish_is_stored_under_its_epoch_and_seq_with_a_ttl(lobby: World) -> None:
    # GIVEN a publisher WHEN it publishes twice
    publish(lobby, "a", "b")
    # THEN two history items hold the exact message frames under "<epoch>#<zero-padded seq>"
    epoch = lobby.epoch("lobby")
    items = sorted(lobby.items("HIST#lobby"), key=lambda i: i["sk"]["S"])
    assert [i["sk"]["S"] for i in items] == [f"{epoch}#0000000000000001", f"{epoch}#0000000000000002"]
    stored = json.loads(items[0]["frame"]["S"])
    assert (stored["type"], stored["seq"], stored["epoch"], stored["data"]) == ("message", 1, epoch, "a")
    # AND the TTL is the publish time + HistoryTtlSeconds (24 h by default)
    assert int(items[0]["ttl"]["N"]) == stored["ts"] // 1000 + 86400


def test_a_publish_is_numbered_and_stored_in_one_transaction(
    lobby: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a count of the write calls the store's client makes (and no shared rate limit)
    writes: list[str] = []
    client = lobby.store.client
    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
        original = getattr(client, name)
        monkeypatch.setattr(client, name, _counting(original, name, writes))
    # WHEN one message (without msgId) is published to a channel with no other subscriber
    publish(lobby, "x")
    # THEN exactly one write request happened: the transaction that numbers and stores it
    assert writes == ["transact_write_items"]


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
    # THEN it gets seq 4 and 5, in order, as full message frames, with the channel's epoch
    reply = lobby.last(ME)
    assert (reply["type"], reply["id"], reply["channel"]) == ("history", "hi1", "lobby")
    assert reply["epoch"] == lobby.epoch("lobby")
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


def test_history_of_a_channel_never_published_to_is_empty_and_creates_nothing(lobby: World) -> None:
    # GIVEN no messages on "quiet" WHEN history is asked
    before = lobby.items()
    lobby.send({"action": "history", "channel": "quiet"}, ME)
    # THEN an empty list with no epoch (the channel has none yet), and no item was written
    reply = lobby.last(ME)
    assert (reply["messages"], reply["epoch"]) == ([], None)
    assert lobby.items() == before


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
        Key=hist_key(lobby, 1),
        UpdateExpression="SET #t = :old",
        ExpressionAttributeNames={"#t": "ttl"},
        ExpressionAttributeValues={":old": {"N": "1"}},
    )
    # WHEN history is asked THEN only 2 and 3 come back
    lobby.send({"action": "history", "channel": "lobby"}, ME)
    assert [m["seq"] for m in lobby.last(ME)["messages"]] == [2, 3]


# -- recovery --------------------------------------------------------------------------------------


def test_subscribe_since_in_the_current_epoch_replays_the_gap_in_order_before_subscribed(
    lobby: World,
) -> None:
    # GIVEN five messages, and a client that last saw seq 2 of the current epoch
    publish(lobby, "a", "b", "c", "d", "e")
    epoch = lobby.epoch("lobby")
    # WHEN it subscribes with since 2 and that epoch
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 2, "epoch": epoch, "id": "r1"}, ME)
    # THEN messages 3, 4, 5 arrive as normal message frames, then subscribed with recovered true
    frames = lobby.frames(ME)
    assert [(f["type"], f.get("seq")) for f in frames] == [
        ("message", 3),
        ("message", 4),
        ("message", 5),
        ("subscribed", 5),
    ]
    assert frames[-1] == {
        "type": "subscribed",
        "id": "r1",
        "channel": "lobby",
        "seq": 5,
        "epoch": epoch,
        "recovered": True,
    }
    # AND it then receives new messages live
    publish(lobby, "f")
    assert lobby.last(ME)["seq"] == 6


def test_since_without_an_epoch_replays_the_whole_epoch_and_says_reset(lobby: World) -> None:
    # GIVEN five messages, and an older client that sends since 2 without an epoch
    # (events/subscribe-since.json): it cannot prove seq 2 was of this epoch
    publish(lobby, "a", "b", "c", "d", "e")
    # WHEN it subscribes
    lobby.default(load_event("subscribe-since"))
    # THEN the whole current epoch is replayed from seq 1, then subscribed says recovered and reset
    frames = lobby.frames(ME)
    assert [f["seq"] for f in frames if f["type"] == "message"] == [1, 2, 3, 4, 5]
    assert (frames[-1]["type"], frames[-1]["recovered"], frames[-1]["reset"]) == ("subscribed", True, True)


def test_a_restart_with_a_new_epoch_replays_what_the_old_since_would_have_skipped(lobby: World) -> None:
    # GIVEN a client that saw seq 1 of an epoch that is gone (the table was recreated, as when
    # make dev restarts), and one message published on the fresh channel (seq 1 of a new epoch)
    old_epoch = lobby.epoch("lobby")
    lobby.dynamodb.delete_item(
        TableName=lobby.store.table_name, Key={"pk": {"S": "CHAN#lobby"}, "sk": {"S": "SEQ"}}
    )
    lobby.runtime.numbering = type(lobby.runtime.numbering)(lobby.store)  # a cold container
    publish(lobby, "m-2")
    new_epoch = lobby.epoch("lobby")
    assert new_epoch != old_epoch
    # WHEN it resubscribes with since 1 and its old epoch
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 1, "epoch": old_epoch}, ME)
    # THEN m-2 is replayed (not skipped as "already seen"), and the reply says reset in the new epoch
    frames = lobby.frames(ME)
    assert [(f["type"], f.get("data")) for f in frames] == [("message", "m-2"), ("subscribed", None)]
    assert (frames[-1]["epoch"], frames[-1]["recovered"], frames[-1]["reset"]) == (new_epoch, True, True)


def test_subscribe_since_the_latest_seq_replays_nothing_and_is_recovered(lobby: World) -> None:
    # GIVEN two messages WHEN a client that saw both subscribes with since 2 in this epoch
    publish(lobby, "a", "b")
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 2, "epoch": lobby.epoch("lobby")}, ME)
    # THEN only subscribed, recovered true, no reset
    assert [(f["type"], f.get("recovered"), f.get("reset")) for f in lobby.frames(ME)] == [
        ("subscribed", True, None)
    ]


def test_a_gap_longer_than_100_is_not_recovered(lobby: World) -> None:
    # GIVEN 102 messages WHEN a client that saw none subscribes with since 0 (gap 102 > 100)
    publish(lobby, *range(MAX_RECOVERY + 2))
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 0, "epoch": lobby.epoch("lobby")}, ME)
    # THEN nothing is replayed and recovered is false (the client refetches with history)
    assert [(f["type"], f.get("recovered")) for f in lobby.frames(ME)] == [("subscribed", False)]


def test_a_gap_of_exactly_100_is_recovered(lobby: World) -> None:
    # GIVEN 100 messages WHEN a client subscribes with since 0 THEN all 100 are replayed in order
    publish(lobby, *range(MAX_RECOVERY))
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 0, "epoch": lobby.epoch("lobby")}, ME)
    assert [f["seq"] for f in lobby.frames(ME, "message")] == list(range(1, 101))
    assert lobby.last(ME)["recovered"] is True


def test_a_gap_older_than_the_retention_is_not_recovered(lobby: World) -> None:
    # GIVEN three messages, the oldest missed one deleted by its TTL
    publish(lobby, "a", "b", "c")
    lobby.dynamodb.delete_item(TableName=lobby.store.table_name, Key=hist_key(lobby, 2))
    # WHEN a client that saw seq 1 subscribes with since 1
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 1, "epoch": lobby.epoch("lobby")}, ME)
    # THEN recovered false and no partial replay
    assert [(f["type"], f.get("recovered")) for f in lobby.frames(ME)] == [("subscribed", False)]


def test_a_hole_in_the_middle_of_the_gap_is_not_recovered(lobby: World) -> None:
    # GIVEN five messages, seq 3 expired from the history
    publish(lobby, "a", "b", "c", "d", "e")
    lobby.dynamodb.delete_item(TableName=lobby.store.table_name, Key=hist_key(lobby, 3))
    # WHEN a client that saw seq 1 subscribes with since 1
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 1, "epoch": lobby.epoch("lobby")}, ME)
    # THEN nothing is replayed and recovered is false (the client refetches with history)
    assert [(f["type"], f.get("recovered")) for f in lobby.frames(ME)] == [("subscribed", False)]


def test_since_ahead_of_the_channel_is_not_recovered(lobby: World) -> None:
    # GIVEN one message WHEN a client claims to have seen seq 9 of this epoch THEN recovered false
    publish(lobby, "a")
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 9, "epoch": lobby.epoch("lobby")}, ME)
    assert lobby.last(ME)["recovered"] is False


@pytest.mark.parametrize("since", [-1, "3", 1.5, True, 2**53])
def test_a_bad_since_is_refused_before_subscribing(lobby: World, since: object) -> None:
    # GIVEN a malformed since WHEN subscribing THEN invalid_frame and no subscription row
    lobby.send({"action": "subscribe", "channel": "lobby", "since": since}, ME)
    assert lobby.last(ME)["code"] == "invalid_frame"
    assert not lobby.store.is_subscribed(ME, "lobby")


@pytest.mark.parametrize("epoch", ["", 7, "x" * 65, None])
def test_a_bad_epoch_is_refused_before_subscribing(lobby: World, epoch: object) -> None:
    # GIVEN a malformed epoch WHEN subscribing THEN invalid_frame and no subscription row
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 1, "epoch": epoch}, ME)
    assert lobby.last(ME)["code"] == "invalid_frame"
    assert not lobby.store.is_subscribed(ME, "lobby")


def test_without_history_retention_nothing_is_kept_and_recovery_says_so(lobby: World) -> None:
    # GIVEN a stack with HistoryTtlSeconds 0 (no history)
    from dataclasses import replace

    lobby.runtime.settings = replace(lobby.runtime.settings, history_ttl_seconds=0)
    lobby.send({"action": "subscribe", "channel": "lobby"}, ME)
    publish(lobby, "a")
    # THEN the subscriber still got it live, and nothing was written to the history
    assert lobby.last(ME)["data"] == "a"
    assert lobby.items("HIST#lobby") == []
    # AND history answers nothing
    lobby.send({"action": "history", "channel": "lobby"}, ME)
    assert lobby.last(ME)["messages"] == []
