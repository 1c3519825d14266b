"""Presence under concurrency: the member count stays exact and versions go up by one per change."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from lambdacast.channels import ChannelStore
from lambdacast.errors import TooManyMembers
from lambdacast.presence import Change, Member, PresenceStore
from presence_support import Interleaving, every_interleaving, interleave, one_request_at_a_time

ROOM = "presence-team-42"
MEMBER_JOINED = "member_joined"
MEMBER_LEFT = "member_left"
FAR = 4_000_000_000


def tally(store: ChannelStore, room: str) -> dict[str, Any]:
    item: dict[str, Any] = store.client.get_item(
        TableName=store.table_name, Key={"pk": {"S": f"PRES#{room}"}, "sk": {"S": "COUNT"}}
    )["Item"]
    return item


def member_items(store: ChannelStore, room: str) -> list[str]:
    items = store.client.query(
        TableName=store.table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :u)",
        ExpressionAttributeValues={":pk": {"S": f"PRES#{room}"}, ":u": {"S": "USER#"}},
    )["Items"]
    return sorted(i["userId"]["S"] for i in items)


def join(presence: PresenceStore, conn: str, room: str, user: str, *, cap: int = 50) -> Change | None:
    return presence.subscribe(
        conn, room, Member(user, {}), max_channels=50, ttl_epoch=FAR, cap=cap, now_epoch=1
    )


def test_a_join_racing_another_join_at_any_step_keeps_the_count_exact(
    store: ChannelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN, for each step of a join, a room of two members (ua, ub) whose tally was lost, and a
    # cap of four members
    presence = PresenceStore(store)
    versions: list[tuple[int, list[int | None]]] = []

    def run(at: int) -> Interleaving:
        room = f"{ROOM}-{at}"
        for cid, user in (("a", "ua"), ("b", "ub"), ("c", "uc"), ("d", "ud"), ("e", "ue")):
            store.put_connection(f"{cid}{at}", connected_at=0, source_ip=None, user_id=user, ttl=FAR)
        join(presence, f"a{at}", room, "ua")
        join(presence, f"b{at}", room, "ub")
        store.client.delete_item(
            TableName=store.table_name, Key={"pk": {"S": f"PRES#{room}"}, "sk": {"S": "COUNT"}}
        )
        # WHEN uc joins, and ud's whole join happens just before that step of uc's
        seen: list[Change | None] = []
        schedule = Interleaving(at, lambda: seen.append(join(presence, f"d{at}", room, "ud", cap=4)))
        with monkeypatch.context() as patch:
            interleave(store.client, patch, schedule)
            seen.append(join(presence, f"c{at}", room, "uc", cap=4))
        if not schedule.fired:
            return schedule  # uc's join took fewer steps: every interleaving was tried
        # THEN the count is the number of members
        assert member_items(store, room) == ["ua", "ub", "uc", "ud"]
        counted = tally(store, room)
        assert (at, counted["members"]["N"]) == (at, "4")
        # AND the cap holds: a fifth user is refused
        with pytest.raises(TooManyMembers):
            join(presence, f"e{at}", room, "ue", cap=4)
        latest = int(counted["v"]["N"]) if "v" in counted else None
        versions.append((latest or 0, sorted(getattr(c, "v", None) or 0 for c in seen if c is not None)))
        return schedule

    assert len(list(every_interleaving(run))) >= 4
    # AND at every step, the two joins got consecutive versions, the later one the tally's
    for latest, (first, second) in versions:
        assert (first + 1, second) == (second, latest)


def test_tabs_of_many_users_joining_and_leaving_at_once_keep_count_and_versions_exact(
    store: ChannelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN nine users, three of them with two tabs (each DynamoDB request atomic, as on AWS)
    one_request_at_a_time(store.client, monkeypatch)
    presence = PresenceStore(store)
    users = [f"u{n}" for n in range(1, 10)]
    tabs = [
        (f"{user}-t{n}", user) for user in users for n in ((1, 2) if user in {"u1", "u2", "u3"} else (1,))
    ]
    for cid, user in tabs:
        store.put_connection(cid, connected_at=0, source_ip=None, user_id=user, ttl=FAR)
    join(presence, "u1-t1", ROOM, "u1")  # the tally exists before the rush
    start = int(tally(store, ROOM).get("v", {"N": "0"})["N"])
    barrier = threading.Barrier(len(tabs), timeout=60)

    # WHEN every tab, on its own thread, joins and leaves three times in a random rhythm and joins
    # once more (u1-t1 starts as a member)
    def churn(tab: tuple[str, str]) -> list[Change]:
        cid, user = tab
        rng = random.Random(cid)
        made: list[Change] = []
        barrier.wait()
        for step in range(7):
            joining = step % 2 == 0
            if cid == "u1-t1":
                joining = not joining
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0, 0.005))
            change = join(presence, cid, ROOM, user) if joining else presence.unsubscribe(cid, ROOM, user)
            if change is not None:
                made.append(change)
        if cid == "u1-t1":
            change = join(presence, cid, ROOM, user)
            if change is not None:
                made.append(change)
        return made

    with ThreadPoolExecutor(len(tabs)) as pool:
        made = [c for changes in pool.map(churn, tabs) for c in changes]
    # THEN every user is a member (each tab's last step was a join), counted exactly
    assert [m.user_id for m in presence.members(ROOM, now_epoch=1)] == users
    assert member_items(store, ROOM) == users
    final = tally(store, ROOM)
    assert final["members"]["N"] == "9"
    # AND the announced changes have the versions start+1, start+2, ... the tally's, each once
    versions = sorted(getattr(c, "v", 0) for c in made)
    assert versions == list(range(start + 1, int(final.get("v", {"N": "0"})["N"]) + 1))
    # AND replayed in version order they alternate per user, and end with every user joined
    last: dict[str, str] = {"u1": MEMBER_JOINED}
    for change in sorted(made, key=lambda c: c.v):
        before = last.get(change.member.user_id, MEMBER_LEFT)
        assert change.kind != before, f"{change} repeats {before}"
        last[change.member.user_id] = change.kind
    assert last == dict.fromkeys(users, MEMBER_JOINED)
