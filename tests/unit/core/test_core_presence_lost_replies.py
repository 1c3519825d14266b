"""Presence under lost replies: a membership change DynamoDB applied is announced exactly once, even
when its reply was lost and botocore's retry of it failed the conditions the first attempt met."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import TABLE
from lambdacast.channels import ChannelStore
from presence_support import LostReplies, touches
from world_support import World

ME = "BFHPhfCWIAMCKlQ="  # user-42
ALICE = "BFHA1iceoAMCAAA="
ROOM = "presence-team-42"
GRANT = ("presence-team-*",)


@pytest.fixture
def store(dynamodb: Any) -> ChannelStore:
    """The store as deployed: it builds its own client (standard retries, 4 attempts), here on moto."""
    return ChannelStore(TABLE, sleep=lambda _s: None)


@pytest.fixture
def room(world: World) -> World:
    """Alice is in the room; user-42 is connected but not subscribed yet."""
    world.open(ALICE, user="alice", channels=GRANT, name="Alice")
    world.open(ME, user="user-42", channels=GRANT, name="Ada")
    world.send({"action": "subscribe", "channel": ROOM}, ALICE)
    world.transport.clear()
    return world


def heard(world: World) -> list[tuple[str, str, int | None]]:
    """The membership frames Alice received: (type, userId, v)."""
    return [
        (f["type"], f["member"]["userId"], f.get("v"))
        for f in world.frames(ALICE)
        if f["type"] in {"member_joined", "member_left"}
    ]


def listed(world: World) -> dict[str, Any]:
    world.send({"action": "presence", "channel": ROOM}, ALICE)
    return world.last(ALICE)


def test_the_store_retries_like_the_deployed_one(store: ChannelStore) -> None:
    # GIVEN the store these tests use WHEN its client is built THEN it retries as deployed
    retries = vars(store.client.meta.config)["retries"]
    assert (retries["mode"], retries["total_max_attempts"]) == ("standard", 4)


def test_a_join_whose_reply_was_lost_is_announced_once(room: World) -> None:
    # GIVEN user-42's join transaction is applied but its reply is lost (a 500 instead)
    faults = LostReplies(touches("Put", "USER#user-42")).install(room.store.client)
    # WHEN user-42 subscribes
    room.send({"action": "subscribe", "channel": ROOM, "id": "s"}, ME)
    # THEN botocore sent the transaction again (the retry failed the conditions the first met),
    # with the same ClientRequestToken (which DynamoDB, unlike moto, would answer with success)
    assert len(faults.lost) == 1
    assert faults.sent == 2
    assert faults.tokens[0]
    assert faults.tokens[0] == faults.tokens[1]
    # AND user-42 is subscribed, Alice heard member_joined exactly once, and the list agrees
    assert room.last(ME)["type"] == "subscribed"
    (joined,) = heard(room)
    assert joined[:2] == ("member_joined", "user-42")
    reply = listed(room)
    assert [m["userId"] for m in reply["members"]] == ["alice", "user-42"]
    assert reply["v"] == joined[2]


def test_a_last_unsubscribe_whose_reply_was_lost_is_announced_once(room: World) -> None:
    # GIVEN user-42 in the room, and its leave transaction applied but its reply lost
    room.send({"action": "subscribe", "channel": ROOM}, ME)
    faults = LostReplies(touches("Delete", "USER#user-42")).install(room.store.client)
    # WHEN user-42 unsubscribes
    room.send({"action": "unsubscribe", "channel": ROOM, "id": "u"}, ME)
    # THEN the reply was lost once, user-42 got unsubscribed, and Alice heard member_left once,
    # one version above its member_joined
    assert len(faults.lost) == 1
    assert room.last(ME)["type"] == "unsubscribed"
    (joined, left) = heard(room)
    assert left == ("member_left", "user-42", joined[2] + 1)
    assert [m["userId"] for m in listed(room)["members"]] == ["alice"]


def test_a_disconnect_whose_leave_reply_was_lost_is_announced_once(room: World) -> None:
    # GIVEN user-42 in the room, and the $disconnect's leave transaction applied but its reply lost
    room.send({"action": "subscribe", "channel": ROOM}, ME)
    faults = LostReplies(touches("Delete", "USER#user-42")).install(room.store.client)
    # WHEN its only tab disconnects
    room.close(ME)
    # THEN Alice heard member_left once, and nothing of the tab remains
    assert len(faults.lost) == 1
    assert [kind for kind, _, _ in heard(room)] == ["member_joined", "member_left"]
    assert [m["userId"] for m in listed(room)["members"]] == ["alice"]
    assert room.items(f"CONN#{ME}") == []


def test_every_membership_reply_lost_still_announces_each_change_once(room: World) -> None:
    # GIVEN every membership transaction (joins and leaves of user-42) loses its reply
    faults = LostReplies(
        lambda items: touches("Put", "USER#user-42")(items) or touches("Delete", "USER#user-42")(items),
        times=10,
    ).install(room.store.client)
    # WHEN user-42 joins, leaves, joins, and disconnects
    room.send({"action": "subscribe", "channel": ROOM}, ME)
    room.send({"action": "unsubscribe", "channel": ROOM}, ME)
    room.send({"action": "subscribe", "channel": ROOM}, ME)
    room.close(ME)
    # THEN four replies were lost, and Alice heard the four changes once each, in version order
    assert len(faults.lost) == 4
    changes = heard(room)
    assert [kind for kind, _, _ in changes] == ["member_joined", "member_left"] * 2
    first = changes[0][2]
    assert [v for _, _, v in changes] == [first, first + 1, first + 2, first + 3]
