"""The soak client's stream logic (protocol-v1-additions.md), no sockets: what the application is handed."""

from __future__ import annotations

from typing import Any

from soak_orderer import Gap, Orderer
from soak_presence import PresenceView

EPOCH = "e1"


def message(seq: int, epoch: str = EPOCH) -> dict[str, Any]:
    return {"type": "message", "channel": "c", "seq": seq, "epoch": epoch, "data": seq, "msgId": f"m{seq}"}


def subscribed(seq: int, epoch: str = EPOCH, **extra: Any) -> dict[str, Any]:
    return {"type": "subscribed", "channel": "c", "seq": seq, "epoch": epoch, **extra}


def seqs(orderer: Orderer) -> list[int]:
    return [d.seq for d in orderer.delivered]


def test_messages_out_of_order_are_handed_over_in_seq_order():
    # GIVEN a stream subscribed at seq 0
    stream = Orderer()
    stream.subscribed(subscribed(0), resubscribe=False)
    # WHEN 2 and 3 arrive before 1
    for seq in (2, 3, 1):
        stream.push(message(seq), "live")
    # THEN the application gets 1, 2, 3 and there is no hole
    assert seqs(stream) == [1, 2, 3]
    assert stream.hole is None


def test_a_true_duplicate_is_dropped_and_counted():
    stream = Orderer()
    stream.subscribed(subscribed(0), resubscribe=False)
    # WHEN seq 1 arrives twice, and seq 3 twice while held behind the missing 2
    for seq in (1, 1, 3, 3):
        stream.push(message(seq), "live")
    # THEN each is handed over once, 3 still waits, and both copies were dropped
    assert seqs(stream) == [1]
    assert stream.hole == (2, 2)
    assert stream.duplicates_dropped == 2


def test_frames_before_the_first_subscribed_are_held_and_those_at_the_baseline_dropped():
    stream = Orderer()
    # WHEN seq 5 and 6 arrive before `subscribed` answers seq 5
    stream.push(message(5), "live")
    stream.push(message(6), "live")
    stream.subscribed(subscribed(5), resubscribe=False)
    # THEN 6 is handed over; 5 was published at the moment of the subscribe (not a gap, not delivered)
    assert seqs(stream) == [6]
    assert stream.before_baseline == 1


def test_giving_up_a_hole_reports_exactly_the_missing_seqs_and_delivers_what_waited():
    stream = Orderer()
    stream.subscribed(subscribed(0), resubscribe=False)
    for seq in (1, 4, 6):
        stream.push(message(seq), "live")
    # WHEN the client gives up up to 6 (history had none of 2, 3, 5)
    gaps = stream.give_up(6)
    # THEN 2-3 and 5 are gaps, 4 and 6 delivered in order
    assert gaps == [Gap(EPOCH, 2, 3), Gap(EPOCH, 5, 5)]
    assert seqs(stream) == [1, 4, 6]
    assert stream.last == 6


def test_a_seq_of_a_reported_gap_that_arrives_later_is_delivered_late():
    stream = Orderer()
    stream.subscribed(subscribed(0), resubscribe=False)
    stream.push(message(2), "live")
    stream.give_up(2)
    # WHEN seq 1 arrives after all
    stream.push(message(1), "live")
    # THEN it is handed over, flagged late; a second copy is a duplicate
    stream.push(message(1), "live")
    assert [(d.seq, d.late) for d in stream.delivered] == [(2, False), (1, True)]
    assert stream.duplicates_dropped == 1


def test_a_resubscribe_in_a_new_epoch_restarts_the_stream_and_old_frames_are_stale():
    stream = Orderer()
    stream.subscribed(subscribed(0), resubscribe=False)
    stream.push(message(1), "live")
    # WHEN the server answers a resubscribe in another epoch, replaying its seq 1
    stream.push(message(1, "e2"), "live")
    stream.subscribed(subscribed(1, "e2", recovered=True, reset=True), resubscribe=True)
    stream.push(message(2), "live")
    # THEN the new epoch's 1 is handed over after the old one's, and a frame of the old epoch is stale
    assert [(d.epoch, d.seq) for d in stream.delivered] == [(EPOCH, 1), ("e2", 1)]
    assert stream.resets == 1
    assert stream.stale_dropped == 1


def test_presence_frames_apply_in_version_order_and_stale_ones_are_ignored():
    view = PresenceView()
    # GIVEN a member frame before the list, and the list at v 10
    view.apply({"type": "member_joined", "member": {"userId": "bob"}, "v": 11})
    view.snapshot({"v": 10, "members": [{"userId": "ada"}]})
    # WHEN ada's older member_left (v 9) and a skip to v 13 arrive
    view.apply({"type": "member_left", "member": {"userId": "ada"}, "v": 9})
    skipped = view.apply({"type": "member_left", "member": {"userId": "bob"}, "v": 13})
    # THEN bob joined then left, ada stayed, and the skip asks for a refetch
    assert view.members == {"ada"}
    assert view.stale_ignored == 1
    assert skipped
    assert view.v == 13
