"""Delivery guarantees of a publish: numbered exactly once under retries, lost replies and races."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
from core_support import DynamoFaults
from lambdacast.history import seq_key
from lambdacast.numbering import Numbering
from world_support import World

ME = "BFHPhfCWIAMCKlQ="
PUB = "BFHPub11oAMCAAA="


@pytest.fixture
def lobby(world: World) -> World:
    """PUB and ME are subscribed to lobby; publishing is not rate-limited."""
    world.unlimited()
    world.open(PUB)
    world.open(ME)
    world.send({"action": "subscribe", "channel": "lobby"}, PUB)
    world.send({"action": "subscribe", "channel": "lobby"}, ME)
    world.transport.clear()
    return world


def publish(world: World, data: Any, **fields: Any) -> dict[str, Any]:
    world.send({"action": "publish", "channel": "lobby", "data": data, "id": "p", **fields}, PUB)
    return world.last(PUB)


def history_seqs(world: World) -> list[int]:
    items = world.items("HIST#lobby")
    return sorted(int(i["sk"]["S"].rsplit("#", 1)[1]) for i in items)


def test_a_lost_reply_of_the_numbering_transaction_does_not_skip_a_seq(lobby: World) -> None:
    # GIVEN the second numbering transaction is applied but its reply is lost (botocore retries it)
    faults = DynamoFaults(lose={"TransactWriteItems": {2}}).install(lobby.store.client)
    # WHEN three messages are published
    acks = [publish(lobby, n) for n in range(3)]
    # THEN the retry was sent, and the acks are exactly 1, 2, 3 (no skip, nothing numbered twice)
    assert faults.calls["TransactWriteItems"] == 4
    assert [a["seq"] for a in acks] == [1, 2, 3]
    assert history_seqs(lobby) == [1, 2, 3]
    # AND the subscriber received each once, in order
    assert [f["seq"] for f in lobby.frames(ME, "message")] == [1, 2, 3]


def test_a_throttled_numbering_is_retried_and_numbered_once(lobby: World) -> None:
    # GIVEN the first numbering attempt is throttled (not applied)
    faults = DynamoFaults(throttle={"TransactWriteItems": {1}}).install(lobby.store.client)
    # WHEN a message is published THEN it is acked as seq 1 after one retry, and stored once
    assert publish(lobby, "x")["seq"] == 1
    assert faults.calls["TransactWriteItems"] == 2
    assert history_seqs(lobby) == [1]


def test_internal_error_on_publish_means_not_numbered_and_a_resend_is_safe(lobby: World) -> None:
    # GIVEN a table failing every attempt of the first publish (500, not applied, past the retries)
    faults = DynamoFaults(fail={"TransactWriteItems": set(range(1, 11))}).install(lobby.store.client)
    # WHEN a message with a msgId is published
    reply = publish(lobby, "x", msgId="m-1")
    # THEN the publisher is told internal_error, and nothing was numbered, stored or sent
    assert (reply["type"], reply["code"]) == ("error", "internal_error")
    assert faults.calls["TransactWriteItems"] == 10  # botocore's own retries all spent
    assert history_seqs(lobby) == []
    assert lobby.frames(ME, "message") == []
    assert Numbering(lobby.store).peek("lobby").seq == 0  # type: ignore[union-attr]
    # AND resending it once the table answers numbers it as seq 1
    assert publish(lobby, "x", msgId="m-1")["seq"] == 1


def test_a_resent_msg_id_gets_the_first_seq_and_is_delivered_once(lobby: World) -> None:
    # GIVEN a publish with a msgId that was acked (the publisher did not see the ack)
    first = publish(lobby, "hello", msgId="m-42")
    # WHEN the publisher resends it after reconnecting
    again = publish(lobby, "hello", msgId="m-42")
    # THEN the second ack carries the same seq and epoch, says duplicate, and counts no delivery
    assert (again["seq"], again["epoch"], again["duplicate"], again["msgId"]) == (
        first["seq"],
        first["epoch"],
        True,
        "m-42",
    )
    assert "delivered" not in again
    # AND the subscriber received the message once, carrying its msgId
    (message,) = lobby.frames(ME, "message")
    assert (message["seq"], message["msgId"]) == (1, "m-42")
    # AND the next publish is seq 2
    assert publish(lobby, "next")["seq"] == 2


def test_a_resend_after_a_fan_out_that_never_finished_posts_the_stored_message_again(lobby: World) -> None:
    # GIVEN a message numbered and stored whose fan-out never finished (its function crashed):
    # no done mark on its msgId, and the subscriber never received it
    publish(lobby, "lost", msgId="m-7")
    lobby.dynamodb.update_item(
        TableName=lobby.store.table_name,
        Key={"pk": {"S": "MSGID#lobby"}, "sk": {"S": "m-7"}},
        UpdateExpression="REMOVE done",
    )
    lobby.transport.clear()
    # WHEN the publisher resends it
    again = publish(lobby, "lost", msgId="m-7")
    # THEN it is acked as a duplicate of seq 1 and the stored frame is posted again, unchanged
    assert (again["seq"], again["duplicate"]) == (1, True)
    (message,) = lobby.frames(ME, "message")
    assert (message["seq"], message["data"], message["msgId"]) == (1, "lost", "m-7")


def test_a_bad_msg_id_is_refused_and_changes_nothing(lobby: World) -> None:
    # GIVEN a msgId longer than 64 characters WHEN published THEN invalid_frame and nothing stored
    reply = publish(lobby, "x", msgId="m" * 65)
    assert (reply["code"], history_seqs(lobby)) == ("invalid_frame", [])


def test_concurrent_publishers_get_consecutive_seqs_with_no_hole_and_no_repeat(world: World) -> None:
    # GIVEN four publishers on one channel, each in its own thread (another container, say)
    world.unlimited()
    publishers = [f"BFHP{n}ooAMCAAA=" for n in range(4)]
    for cid in publishers:
        world.open(cid)
        world.send({"action": "subscribe", "channel": "lobby"}, cid)
    acks: list[int] = []
    lock = threading.Lock()

    def run(cid: str) -> None:
        for n in range(8):
            world.send({"action": "publish", "channel": "lobby", "data": n, "id": f"{cid}-{n}"}, cid)
            ack = next(f for f in reversed(world.frames(cid)) if f.get("id") == f"{cid}-{n}")
            with lock:
                acks.append(ack["seq"])

    threads = [threading.Thread(target=run, args=(cid,)) for cid in publishers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN the 32 acks are exactly 1..32 and the history holds each once
    assert sorted(acks) == list(range(1, 33))
    assert history_seqs(world) == list(range(1, 33))


def test_a_subscribe_whose_counter_cannot_be_read_is_undone_so_client_and_server_agree(
    lobby: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the channel's counter cannot be read after the subscription commits
    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("counter unavailable")

    monkeypatch.setattr(lobby.runtime.numbering, "current", boom)
    # WHEN a new connection subscribes
    lobby.open("BFHNewooAMCAAA=")
    lobby.send({"action": "subscribe", "channel": "news", "id": "s"}, "BFHNewooAMCAAA=")
    # THEN it is told internal_error, and it is not subscribed (the subscription was undone)
    assert lobby.last("BFHNewooAMCAAA=")["code"] == "internal_error"
    assert not lobby.store.is_subscribed("BFHNewooAMCAAA=", "news")


def test_a_failed_replay_still_answers_subscribed_with_recovered_false(
    lobby: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two messages, and a history that cannot be read for the replay
    publish(lobby, "a")
    publish(lobby, "b")
    epoch = lobby.epoch("lobby")
    lobby.open("BFHNewooAMCAAA=")
    monkeypatch.setattr(
        "lambdacast.history.HistoryStore.since", lambda *_a, **_k: (_ for _ in ()).throw(RuntimeError("down"))
    )
    # WHEN a client that saw seq 1 subscribes with since
    lobby.send({"action": "subscribe", "channel": "lobby", "since": 1, "epoch": epoch}, "BFHNewooAMCAAA=")
    # THEN it is subscribed (and told so), with recovered false: it pages through history itself
    reply = lobby.last("BFHNewooAMCAAA=")
    assert (reply["type"], reply["recovered"]) == ("subscribed", False)
    assert lobby.store.is_subscribed("BFHNewooAMCAAA=", "lobby")


def test_history_items_are_keyed_by_epoch_so_a_new_epoch_never_collides_with_old_history(
    lobby: World,
) -> None:
    # GIVEN seq 1 stored in the first epoch, then the counter lost (a new epoch starts)
    publish(lobby, "old")
    old_epoch = lobby.epoch("lobby")
    lobby.dynamodb.delete_item(
        TableName=lobby.store.table_name, Key={"pk": {"S": "CHAN#lobby"}, "sk": {"S": "SEQ"}}
    )
    lobby.runtime.numbering = Numbering(lobby.store)
    # WHEN a message is published THEN it is seq 1 of a new epoch, stored beside the old seq 1
    ack = publish(lobby, "new")
    assert (ack["seq"], ack["epoch"] != old_epoch) == (1, True)
    keys = sorted(i["sk"]["S"] for i in lobby.items("HIST#lobby"))
    assert keys == sorted([seq_key(old_epoch, 1), seq_key(ack["epoch"], 1)])
    last = lobby.frames(ME, "message")[-1]
    assert (last["data"], last["seq"], last["epoch"]) == ("new", 1, ack["epoch"])


def test_without_history_a_lost_reply_is_recognized_by_the_counter_and_skips_no_seq(lobby: World) -> None:
    # GIVEN a stack that keeps no history (no history item to recognize an attempt by), and the
    # second numbering's reply lost after it was applied
    from dataclasses import replace

    lobby.runtime.settings = replace(lobby.runtime.settings, history_ttl_seconds=0)
    DynamoFaults(lose={"TransactWriteItems": {2}}).install(lobby.store.client)
    # WHEN three messages are published THEN they are 1, 2, 3 and the subscriber got each once
    assert [publish(lobby, n)["seq"] for n in range(3)] == [1, 2, 3]
    assert [f["seq"] for f in lobby.frames(ME, "message")] == [1, 2, 3]
    assert lobby.items("HIST#lobby") == []


def test_a_subscriber_read_that_fails_for_a_while_is_tried_again_and_nobody_misses_the_message(
    lobby: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the subscriber Query of the next publish failing longer than botocore's own retries
    # (10 attempts on this client; their backoff is skipped here), after the message is numbered
    monkeypatch.setattr("botocore.endpoint.time", SimpleNamespace(sleep=lambda _s: None))
    faults = DynamoFaults(fail={"Query": set(range(1, 12))}).install(lobby.store.client)
    # WHEN it is published
    ack = publish(lobby, "still delivered")
    # THEN the page was read again and ME received it live (no hole to fill from the history)
    assert faults.calls["Query"] >= 12
    assert (ack["seq"], ack["delivered"]) == (1, 1)
    assert [f["data"] for f in lobby.frames(ME, "message")] == ["still delivered"]


def test_a_frame_from_a_connection_being_removed_is_no_error_in_the_logs(
    lobby: World, log_lines: Any
) -> None:
    # GIVEN a connection its $disconnect has begun to remove (marked closing)
    lobby.store.close_connection(ME)
    log_lines()
    # WHEN a subscribe it sent just before closing arrives
    lobby.send({"action": "subscribe", "channel": "news", "id": "late"}, ME)
    # THEN it is refused (internal_error: "reconnect"), logged at INFO, never as a failure
    assert lobby.last(ME)["code"] == "internal_error"
    assert [line["level"] for line in log_lines() if line.get("message", "").startswith("frame")] == ["INFO"]
