"""Presence channels: members are users, announced on their first connection in and last out."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import load_event
from lambdacast.channels import ChannelStore
from lambdacast.presence import Member, PresenceStore
from presence_support import one_request_at_a_time
from world_support import World

ME = "BFHPhfCWIAMCKlQ="  # user-42 in events/
TAB2 = "BFHT2abcoAMCAAA="  # user-42's second tab
ALICE = "BFHA1iceoAMCAAA="
BOB = "BFHB0bbboAMCAAA="
ROOM = "presence-team-42"
GRANT = ("presence-team-*",)


def joined(world: World, cid: str) -> list[dict[str, Any]]:
    return [f["member"] for f in world.frames(cid, "member_joined")]


def left(world: World, cid: str) -> list[dict[str, Any]]:
    return [f["member"] for f in world.frames(cid, "member_left")]


@pytest.fixture
def room(world: World) -> World:
    """Alice is in the room; user-42 is connected (two tabs) but not subscribed yet."""
    world.open(ALICE, user="alice", channels=GRANT, name="Alice")
    world.open(ME, user="user-42", channels=GRANT, name="Ada")
    world.open(TAB2, user="user-42", channels=GRANT, name="Ada")
    world.send({"action": "subscribe", "channel": ROOM}, ALICE)
    world.transport.clear()
    return world


def test_first_connection_of_a_user_announces_member_joined(room: World) -> None:
    # GIVEN Alice in the room WHEN user-42 subscribes (events/subscribe-presence-authorized.json)
    room.default(load_event("subscribe-presence-authorized"))
    # THEN Alice hears member_joined with the user id and display info; user-42 gets subscribed
    assert joined(room, ALICE) == [{"userId": "user-42", "info": {"name": "Ada"}}]
    assert room.last(ME)["type"] == "subscribed"
    assert joined(room, ME) == []


def test_a_second_tab_of_the_same_user_is_not_a_new_member(room: World) -> None:
    # GIVEN user-42 in the room through one tab
    room.send({"action": "subscribe", "channel": ROOM}, ME)
    # WHEN the second tab subscribes
    room.send({"action": "subscribe", "channel": ROOM}, TAB2)
    # THEN Alice heard one member_joined, and the member list has two users, at its version
    assert len(joined(room, ALICE)) == 1
    room.send({"action": "presence", "channel": ROOM, "id": "q"}, ALICE)
    assert room.last(ALICE) == {
        "type": "presence",
        "id": "q",
        "channel": ROOM,
        "v": room.frames(ALICE, "member_joined")[0]["v"],
        "members": [
            {"userId": "alice", "info": {"name": "Alice"}},
            {"userId": "user-42", "info": {"name": "Ada"}},
        ],
    }


def test_presence_answers_the_member_list(room: World) -> None:
    # GIVEN user-42 in the room WHEN it asks for presence (events/presence.json)
    room.send({"action": "subscribe", "channel": ROOM}, ME)
    room.default(load_event("presence"))
    # THEN it receives both members, sorted by user id
    reply = room.last(ME)
    assert reply["id"] == "pr1"
    assert [m["userId"] for m in reply["members"]] == ["alice", "user-42"]


def test_member_left_only_when_the_last_tab_unsubscribes(room: World) -> None:
    # GIVEN user-42 in the room through two tabs
    for cid in (ME, TAB2):
        room.send({"action": "subscribe", "channel": ROOM}, cid)
    # WHEN the first tab unsubscribes THEN nobody hears member_left
    room.send({"action": "unsubscribe", "channel": ROOM}, ME)
    assert left(room, ALICE) == []
    # WHEN the second tab unsubscribes THEN Alice hears member_left once, with the info
    room.send({"action": "unsubscribe", "channel": ROOM}, TAB2)
    assert left(room, ALICE) == [{"userId": "user-42", "info": {"name": "Ada"}}]
    # AND the member item and its count are gone
    assert not [i for i in room.items("PRES#") if i["sk"]["S"] == "USER#user-42"]


def test_disconnect_of_the_last_tab_announces_member_left(room: World) -> None:
    # GIVEN user-42 in the room through two tabs
    for cid in (ME, TAB2):
        room.send({"action": "subscribe", "channel": ROOM}, cid)
    # WHEN both tabs drop (abrupt close: $disconnect)
    room.close(ME)
    assert left(room, ALICE) == []
    room.close(TAB2)
    # THEN member_left was announced exactly once
    assert [m["userId"] for m in left(room, ALICE)] == ["user-42"]


def test_a_gone_member_found_by_a_fan_out_is_announced_as_left(room: World) -> None:
    # GIVEN user-42 in the room, then its only tab vanishes without a $disconnect
    room.send({"action": "subscribe", "channel": ROOM}, ME)
    room.transport.gone.add(ME)
    room.transport.clear()
    # WHEN Alice publishes to the room
    room.send({"action": "publish", "channel": ROOM, "data": "anyone?", "echo": True}, ALICE)
    # THEN the 410 removed user-42 and Alice heard member_left once, after her own message
    kinds = [f["type"] for f in room.frames(ALICE)]
    assert sorted(kinds) == ["ack", "member_left", "message"]
    assert kinds.index("message") < kinds.index("member_left")
    room.send({"action": "presence", "channel": ROOM}, ALICE)
    assert [m["userId"] for m in room.last(ALICE)["members"]] == ["alice"]


def test_resubscribing_is_idempotent_and_announces_nothing(room: World) -> None:
    # GIVEN user-42 in the room WHEN the same tab subscribes again THEN no second announcement
    room.send({"action": "subscribe", "channel": ROOM}, ME)
    room.send({"action": "subscribe", "channel": ROOM}, ME)
    assert len(joined(room, ALICE)) == 1
    # AND leaving once announces member_left (the connection was counted once)
    room.send({"action": "unsubscribe", "channel": ROOM}, ME)
    assert len(left(room, ALICE)) == 1


def test_a_full_room_answers_too_many_members(room: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a cap of 2 members, Alice and user-42 in
    monkeypatch.setattr(room.runtime, "settings", _with(room, presence_max_members=2))
    room.send({"action": "subscribe", "channel": ROOM}, ME)
    room.open(BOB, user="bob", channels=GRANT)
    before = room.items()
    # WHEN Bob subscribes
    room.send({"action": "subscribe", "channel": ROOM, "id": "b"}, BOB)
    # THEN too_many_members, and nothing was written
    reply = room.last(BOB)
    assert (reply["code"], reply["id"]) == ("too_many_members", "b")
    assert room.items() == before
    # AND user-42's second tab still gets in (it is not a new member)
    room.send({"action": "subscribe", "channel": ROOM}, TAB2)
    assert room.last(TAB2)["type"] == "subscribed"


def test_a_count_that_drifted_high_is_repaired_when_the_cap_is_hit(
    store: ChannelStore, dynamodb: Any
) -> None:
    # GIVEN a channel whose COUNT says 2 (cap 2) but only one live member item exists
    # (the other expired by TTL after its connections vanished without $disconnect or 410)
    presence = PresenceStore(store)
    for cid in ("c1", "c2"):
        store.put_connection(cid, connected_at=0, source_ip=None, user_id=None, ttl=4_000_000_000)
    presence.subscribe(
        "c1", ROOM, Member("u1", {}), max_channels=10, ttl_epoch=4_000_000_000, cap=2, now_epoch=1
    )
    dynamodb.put_item(
        TableName=store.table_name,
        Item={
            "pk": {"S": f"PRES#{ROOM}"},
            "sk": {"S": "USER#ghost"},
            "userId": {"S": "ghost"},
            "ttl": {"N": "5"},
        },
    )
    dynamodb.update_item(
        TableName=store.table_name,
        Key={"pk": {"S": f"PRES#{ROOM}"}, "sk": {"S": "COUNT"}},
        UpdateExpression="SET members = :two",
        ExpressionAttributeValues={":two": {"N": "2"}},
    )
    # WHEN a new user joins at now=10 (the ghost expired at 5)
    change = presence.subscribe(
        "c2", ROOM, Member("u2", {}), max_channels=10, ttl_epoch=4_000_000_000, cap=2, now_epoch=10
    )
    # THEN the count was recounted and the join succeeded
    assert change is not None
    assert [m.user_id for m in presence.members(ROOM, now_epoch=10)] == ["u1", "u2"]


def test_two_tabs_leaving_at_once_announce_member_left_exactly_once(
    store: ChannelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a user with two connections in the room (each DynamoDB request atomic, as on AWS)
    one_request_at_a_time(store.client, monkeypatch)
    presence = PresenceStore(store)
    for cid in ("t1", "t2"):
        store.put_connection(cid, connected_at=0, source_ip=None, user_id="u", ttl=4_000_000_000)
        presence.subscribe(
            cid, ROOM, Member("u", {}), max_channels=10, ttl_epoch=4_000_000_000, cap=5, now_epoch=1
        )
    # WHEN both leave concurrently (threads racing on the same member item)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        changes = list(pool.map(lambda cid: presence.unsubscribe(cid, ROOM, "u"), ["t1", "t2"]))
    # THEN exactly one of them reports member_left, and the member is gone
    assert sum(c is not None for c in changes) == 1
    assert presence.members(ROOM, now_epoch=1) == []


def _with(world: World, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(world.runtime.settings, **changes)


def test_a_failed_announcement_still_answers_subscribed_and_keeps_the_member(
    room: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a subscriber listing that fails once (the announcement's read)
    calls = {"n": 0}
    original = room.store.subscriber_pages

    def flaky(channel: str, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("throttled")
        return original(channel, **kwargs)

    monkeypatch.setattr(room.store, "subscriber_pages", flaky)
    # WHEN user-42 subscribes
    room.send({"action": "subscribe", "channel": ROOM, "id": "s"}, ME)
    # THEN it is subscribed and a member (the announcement is best-effort and logged)
    assert room.last(ME)["type"] == "subscribed"
    room.send({"action": "presence", "channel": ROOM}, ME)
    assert [m["userId"] for m in room.last(ME)["members"]] == ["alice", "user-42"]


@pytest.mark.parametrize("round_", range(10))
def test_a_tab_joining_while_the_last_tab_leaves_keeps_announcements_balanced(
    store: ChannelStore, round_: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a user in the room through tab t1, and a second tab t2 connected (requests atomic)
    one_request_at_a_time(store.client, monkeypatch)
    presence = PresenceStore(store)
    room = f"{ROOM}-{round_}"
    for cid in ("t1", "t2"):
        store.put_connection(cid, connected_at=0, source_ip=None, user_id="u", ttl=4_000_000_000)
    presence.subscribe(
        "t1", room, Member("u", {}), max_channels=10, ttl_epoch=4_000_000_000, cap=5, now_epoch=1
    )
    # WHEN t1 leaves and t2 joins at the same moment
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    barrier = Barrier(2, timeout=30)

    def leave() -> object:
        barrier.wait()
        return presence.unsubscribe("t1", room, "u")

    def join() -> object:
        barrier.wait()
        return presence.subscribe(
            "t2", room, Member("u", {}), max_channels=10, ttl_epoch=4_000_000_000, cap=5, now_epoch=1
        )

    with ThreadPoolExecutor(2) as pool:
        leaving, joining = pool.submit(leave), pool.submit(join)
        left_change, joined_change = leaving.result(timeout=60), joining.result(timeout=60)
    # THEN the user is a member through t2 only, counted once, and every member_left was
    # followed by a member_joined (either both were announced or neither)
    assert [m.user_id for m in presence.members(room, now_epoch=1)] == ["u"]
    count = store.client.get_item(
        TableName=store.table_name, Key={"pk": {"S": f"PRES#{room}"}, "sk": {"S": "COUNT"}}
    )["Item"]["members"]["N"]
    assert count == "1"
    assert (left_change is None) == (joined_change is None)


def test_a_failed_read_before_a_disconnect_still_removes_the_rows(
    room: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN user-42 in the room, and a META read (the closing mark) that fails at $disconnect time
    room.send({"action": "subscribe", "channel": ROOM}, ME)

    def boom(_cid: str) -> None:
        raise RuntimeError("throttled")

    monkeypatch.setattr(room.store, "close_connection", boom)
    # WHEN its only tab disconnects
    room.close(ME)
    # THEN its subscription rows are gone anyway, and so is the member: the member item holding
    # the connection is found without the connection's record, and member_left is announced
    assert ME not in next(iter(room.store.subscriber_pages(ROOM)))
    assert [m["userId"] for m in left(room, ALICE)] == ["user-42"]


def _count_item(store: ChannelStore, dynamodb: Any) -> dict[str, Any] | None:
    item: dict[str, Any] | None = dynamodb.get_item(
        TableName=store.table_name, Key={"pk": {"S": f"PRES#{ROOM}"}, "sk": {"S": "COUNT"}}
    ).get("Item")
    return item


def _join(presence: PresenceStore, cid: str, user: str, *, ttl: int, now: int) -> None:
    presence.subscribe(cid, ROOM, Member(user, {}), max_channels=10, ttl_epoch=ttl, cap=5, now_epoch=now)


def test_a_second_tab_joining_extends_the_member_count_ttl(store: ChannelStore, dynamodb: Any) -> None:
    # GIVEN a member whose first tab set the COUNT's TTL to 1,000
    presence = PresenceStore(store)
    for cid in ("t1", "t2"):
        store.put_connection(cid, connected_at=0, source_ip=None, user_id=None, ttl=4_000_000_000)
    _join(presence, "t1", "u1", ttl=1_000, now=1)
    # WHEN the same user's second tab (an existing member) joins with a TTL of 2,000
    _join(presence, "t2", "u1", ttl=2_000, now=500)
    # THEN the COUNT lives as long as the newest connection, and still counts one member
    item = _count_item(store, dynamodb)
    assert item is not None
    assert (item["members"]["N"], item["ttl"]["N"]) == ("1", "2000")


def test_a_member_count_that_expired_while_members_remain_is_recounted(
    store: ChannelStore, dynamodb: Any
) -> None:
    # GIVEN two members, and their COUNT item deleted by its TTL while they remain
    presence = PresenceStore(store)
    for cid in ("a1", "b1", "a2", "c1"):
        store.put_connection(cid, connected_at=0, source_ip=None, user_id=None, ttl=4_000_000_000)
    _join(presence, "a1", "ua", ttl=4_000_000_000, now=1)
    _join(presence, "b1", "ub", ttl=4_000_000_000, now=1)
    dynamodb.delete_item(TableName=store.table_name, Key={"pk": {"S": f"PRES#{ROOM}"}, "sk": {"S": "COUNT"}})
    # WHEN a member's second tab joins THEN the count is recreated from the live members (2)
    _join(presence, "a2", "ua", ttl=4_000_000_000, now=10)
    item = _count_item(store, dynamodb)
    assert item is not None
    assert item["members"]["N"] == "2"
    # AND a new member joining afterwards makes it 3, not 1
    _join(presence, "c1", "uc", ttl=4_000_000_000, now=10)
    item = _count_item(store, dynamodb)
    assert item is not None
    assert item["members"]["N"] == "3"


def test_a_new_member_recreating_an_expired_count_recounts_it(store: ChannelStore, dynamodb: Any) -> None:
    # GIVEN two members whose COUNT item expired and was deleted
    presence = PresenceStore(store)
    for cid in ("a1", "b1", "c1"):
        store.put_connection(cid, connected_at=0, source_ip=None, user_id=None, ttl=4_000_000_000)
    _join(presence, "a1", "ua", ttl=4_000_000_000, now=1)
    _join(presence, "b1", "ub", ttl=4_000_000_000, now=1)
    dynamodb.delete_item(TableName=store.table_name, Key={"pk": {"S": f"PRES#{ROOM}"}, "sk": {"S": "COUNT"}})
    # WHEN a new user joins (its transaction recreates the COUNT at 1)
    _join(presence, "c1", "uc", ttl=4_000_000_000, now=10)
    # THEN the count is corrected to the three live members
    item = _count_item(store, dynamodb)
    assert item is not None
    assert item["members"]["N"] == "3"
