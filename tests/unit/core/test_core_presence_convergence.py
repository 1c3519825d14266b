"""Presence converges: memberships never expire early, a disconnect cannot strand a member, and every
change carries a version one above the last, so clients can order changes and drop stale ones."""

from __future__ import annotations

from typing import Any

import pytest
from lambdacast.channels import ChannelStore
from lambdacast.presence import Member, PresenceStore
from presence_support import Interleaving, every_interleaving, interleave
from world_support import World

ME = "BFHPhfCWIAMCKlQ="  # user-42
TAB2 = "BFHT2abcoAMCAAA="  # user-42's second tab
ALICE = "BFHA1iceoAMCAAA="
BOB = "BFHB0bbboAMCAAA="
ROOM = "presence-team-42"
GRANT = ("presence-team-*",)
FAR = 4_000_000_000


@pytest.fixture
def room(world: World) -> World:
    """Alice is in the room; user-42 is connected (two tabs) but not subscribed yet."""
    world.open(ALICE, user="alice", channels=GRANT, name="Alice")
    world.open(ME, user="user-42", channels=GRANT, name="Ada")
    world.open(TAB2, user="user-42", channels=GRANT, name="Ada")
    world.send({"action": "subscribe", "channel": ROOM}, ALICE)
    world.transport.clear()
    return world


def changes(world: World, cid: str, user: str | None = None) -> list[tuple[str, int | None]]:
    """The membership frames ``cid`` received (of ``user`` when given), as (type, v)."""
    return [
        (f["type"], f.get("v"))
        for f in world.frames(cid)
        if f["type"] in {"member_joined", "member_left"} and user in (None, f["member"]["userId"])
    ]


def listed(world: World, cid: str) -> dict[str, Any]:
    world.send({"action": "presence", "channel": ROOM}, cid)
    reply = world.last(cid)
    assert reply["type"] == "presence"
    return reply


def member_item(world: World, user: str) -> dict[str, Any] | None:
    found = [i for i in world.items(f"PRES#{ROOM}") if i["sk"]["S"] == f"USER#{user}"]
    return found[0] if found else None


# -- versions ---------------------------------------------------------------------------------------


def test_each_membership_change_is_announced_with_the_next_version(room: World) -> None:
    # GIVEN Alice in the room
    # WHEN user-42 joins, a second tab joins, the first tab leaves, the second leaves, and it rejoins
    for action, cid in [
        ("subscribe", ME),
        ("subscribe", TAB2),
        ("unsubscribe", ME),
        ("unsubscribe", TAB2),
        ("subscribe", ME),
    ]:
        room.send({"action": action, "channel": ROOM}, cid)
    # THEN Alice heard joined, left, joined (the tabs changed nothing), each one version above the last
    heard = changes(room, ALICE)
    assert [kind for kind, _ in heard] == ["member_joined", "member_left", "member_joined"]
    first = heard[0][1]
    assert [v for _, v in heard] == [first, first + 1, first + 2]
    # AND the member list is at the version of the last change, so a member_left that arrives late
    # (behind a slow fan-out) is recognizably older than the rejoin and than the list
    reply = listed(room, ALICE)
    assert reply["v"] == first + 2
    assert [m["userId"] for m in reply["members"]] == ["alice", "user-42"]


def test_a_new_tally_continues_above_the_versions_of_an_expired_one(
    store: ChannelStore, dynamodb: Any
) -> None:
    # GIVEN a channel whose members came and went, and whose tally then expired and was deleted
    clock = {"ms": 1_000_000}
    presence = PresenceStore(store, clock=lambda: clock["ms"])
    store.put_connection("c1", connected_at=0, source_ip=None, user_id="u1", ttl=FAR)
    joins = [
        presence.subscribe("c1", ROOM, Member("u1", {}), max_channels=5, ttl_epoch=FAR, cap=5, now_epoch=1),
        presence.unsubscribe("c1", ROOM, "u1"),
        presence.subscribe("c1", ROOM, Member("u1", {}), max_channels=5, ttl_epoch=FAR, cap=5, now_epoch=1),
    ]
    assert [c.v for c in joins if c is not None] == [1_000_000, 1_000_001, 1_000_002]
    presence.unsubscribe("c1", ROOM, "u1")
    dynamodb.delete_item(TableName=store.table_name, Key={"pk": {"S": f"PRES#{ROOM}"}, "sk": {"S": "COUNT"}})
    # WHEN the channel is used again, later
    clock["ms"] = 9_000_000
    change = presence.subscribe(
        "c1", ROOM, Member("u1", {}), max_channels=5, ttl_epoch=FAR, cap=5, now_epoch=2
    )
    # THEN its version is above every version handed out before (clients holding 1,000,003 accept it)
    assert change is not None
    assert change.v == 9_000_000


# -- TTL --------------------------------------------------------------------------------------------


def test_an_older_tab_joining_after_a_newer_one_keeps_the_membership_alive(
    store: ChannelStore, dynamodb: Any
) -> None:
    # GIVEN user u in the room through its newer tab, whose items expire at 2,000
    presence = PresenceStore(store)
    store.put_connection("newer", connected_at=0, source_ip=None, user_id="u", ttl=2_000)
    store.put_connection("older", connected_at=0, source_ip=None, user_id="u", ttl=1_000)
    presence.subscribe("newer", ROOM, Member("u", {}), max_channels=5, ttl_epoch=2_000, cap=5, now_epoch=10)
    # WHEN its older tab (connected earlier, so expiring at 1,000) joins afterwards
    presence.subscribe("older", ROOM, Member("u", {}), max_channels=5, ttl_epoch=1_000, cap=5, now_epoch=20)
    # THEN the member item still lives until 2,000: at 1,500 (the older tab gone) u is still listed
    item = dynamodb.get_item(
        TableName=store.table_name, Key={"pk": {"S": f"PRES#{ROOM}"}, "sk": {"S": "USER#u"}}
    )["Item"]
    assert item["ttl"]["N"] == "2000"
    assert [m.user_id for m in presence.members(ROOM, now_epoch=1_500)] == ["u"]
    # AND the tally lives as long
    tally = dynamodb.get_item(
        TableName=store.table_name, Key={"pk": {"S": f"PRES#{ROOM}"}, "sk": {"S": "COUNT"}}
    )["Item"]
    assert tally["ttl"]["N"] == "2000"


# -- $disconnect ------------------------------------------------------------------------------------


def test_a_subscribe_racing_a_disconnect_at_any_step_never_strands_a_member(
    room: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Alice in the room, and for each step of a $disconnect a fresh tab of user-42
    answers: list[str] = []

    def run(at: int) -> Interleaving:
        cid = f"BFHR{at:02d}aceoAMCAAA="
        room.open(cid, user="user-42", channels=GRANT, name="Ada")

        def subscribe() -> None:
            room.send({"action": "subscribe", "channel": ROOM}, cid)
            answers.append(room.last(cid)["type"])

        # WHEN the tab's subscribe to the room lands just before that step of its own $disconnect
        schedule = Interleaving(at, subscribe)
        with monkeypatch.context() as patch:
            interleave(room.store.client, patch, schedule)
            room.close(cid)
        if not schedule.fired:
            return schedule  # the $disconnect took fewer steps: every interleaving was tried
        # THEN nothing of the tab remains: no record, no subscription row, no membership
        assert room.items(f"CONN#{cid}") == []
        assert [i for i in room.items(f"CHAN#{ROOM}") if i["sk"]["S"] == f"CONN#{cid}"] == []
        assert member_item(room, "user-42") is None
        assert [m["userId"] for m in listed(room, ALICE)["members"]] == ["alice"]
        # AND whatever Alice heard of user-42 ends with it gone
        heard = [k for k, _ in changes(room, ALICE, "user-42")]
        assert heard.count("member_joined") == heard.count("member_left")
        return schedule

    steps = list(every_interleaving(run))
    # (the subscribe landed before the removal began, and was undone by it, and after, and refused)
    assert len(steps) == len(answers) >= 3
    assert answers[0] == "subscribed"
    assert answers[-1] == "error"


def test_a_disconnect_whose_presence_leave_failed_is_finished_by_the_next_410(
    room: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN user-42 in the room through one tab, and a leave transaction that fails at $disconnect
    room.send({"action": "subscribe", "channel": ROOM}, ME)
    real = room.store.transact
    failures = {"left": 1}

    def flaky(items: list[Any]) -> list[str]:
        if failures["left"] and any("Delete" in i for i in items):
            failures["left"] -= 1
            raise RuntimeError("throttled")
        return real(items)

    monkeypatch.setattr(room.store, "transact", flaky)
    room.close(ME)
    room.transport.gone.add(ME)  # the socket is closed: API Gateway answers 410 from now on
    assert failures["left"] == 0
    assert [k for k, _ in changes(room, ALICE)] == ["member_joined"]
    # WHEN Alice publishes to the room (the fan-out meets the closed tab)
    room.send({"action": "publish", "channel": ROOM, "data": "anyone?"}, ALICE)
    # THEN the removal finished: Alice heard member_left once, and nothing of the tab remains
    assert [k for k, _ in changes(room, ALICE, "user-42")] == ["member_joined", "member_left"]
    assert room.items(f"CONN#{ME}") == []
    assert member_item(room, "user-42") is None


def test_a_disconnect_that_runs_twice_announces_member_left_once(room: World) -> None:
    # GIVEN user-42 in the room through one tab
    room.send({"action": "subscribe", "channel": ROOM}, ME)
    # WHEN its removal runs twice ($disconnect, and a 410 found by a fan-out at the same time)
    room.close(ME)
    room.runtime.departures.remove(ME)
    room.close(ME)
    # THEN member_left was announced exactly once
    assert [k for k, _ in changes(room, ALICE, "user-42")] == ["member_joined", "member_left"]


# -- expired members --------------------------------------------------------------------------------


def test_listing_removes_members_that_expired_and_announces_them(room: World) -> None:
    # GIVEN Bob in the room, whose connection vanished unannounced: his member item has expired
    room.open(BOB, user="bob", channels=GRANT, name="Bob")
    room.send({"action": "subscribe", "channel": ROOM}, BOB)
    room.transport.gone.add(BOB)
    room.dynamodb.update_item(
        TableName=room.store.table_name,
        Key={"pk": {"S": f"PRES#{ROOM}"}, "sk": {"S": "USER#bob"}},
        UpdateExpression="SET #ttl = :past",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    joined_at = changes(room, ALICE, "bob")[-1][1]
    # WHEN Alice asks who is in the room
    reply = listed(room, ALICE)
    # THEN Bob is not listed, the list is at the version before his removal, and his removal is
    # announced with the next version (so Alice, who listed him before, drops him too)
    assert [m["userId"] for m in reply["members"]] == ["alice"]
    assert reply["v"] == joined_at
    assert changes(room, ALICE, "bob")[-1] == ("member_left", joined_at + 1)
    assert member_item(room, "bob") is None
    # AND he no longer counts toward the cap
    count = room.dynamodb.get_item(
        TableName=room.store.table_name, Key={"pk": {"S": f"PRES#{ROOM}"}, "sk": {"S": "COUNT"}}
    )["Item"]
    assert count["members"]["N"] == "1"
