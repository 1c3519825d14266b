"""private- and presence- channels: the token's channels claim decides, for every channel action."""

from __future__ import annotations

import pytest
from core_support import load_event
from world_support import World

ME = "BFHPhfCWIAMCKlQ="  # the connection id in every events/ file
ALICE = "BFHA1iceoAMCAAA="
TEAM = ("private-team-42-*", "presence-team-42")


def test_welcome_reports_the_token_user(world: World) -> None:
    # GIVEN a connection authorized as user-42 (events/hello-authorized.json carries its context)
    world.open(ME, user="user-42", channels=TEAM, name="Ada")
    # WHEN it says hello
    assert world.default(load_event("hello-authorized"))["statusCode"] == 200
    # THEN welcome carries the real user id
    assert world.last(ME)["userId"] == "user-42"


def test_a_granted_private_channel_can_be_subscribed(world: World) -> None:
    # GIVEN user-42 holding private-team-42-*
    world.open(ME, user="user-42", channels=TEAM)
    # WHEN it subscribes to private-team-42-plans (events/subscribe-private-authorized.json)
    world.default(load_event("subscribe-private-authorized"))
    # THEN it is subscribed
    reply = world.last(ME)
    assert (reply["type"], reply["id"], reply["channel"], reply["seq"]) == (
        "subscribed",
        "s7",
        "private-team-42-plans",
        0,
    )


def test_a_granted_private_channel_can_be_published_to(world: World) -> None:
    # GIVEN two connections of users granted the channel, both subscribed
    world.open(ME, user="user-42", channels=TEAM)
    world.open(ALICE, user="alice", channels=["private-*"])
    for cid in (ME, ALICE):
        world.send({"action": "subscribe", "channel": "private-team-42-plans"}, cid)
    # WHEN one publishes
    world.send({"action": "publish", "channel": "private-team-42-plans", "data": "hi", "id": "p"}, ME)
    # THEN it is acknowledged and the other receives the message from user-42
    assert world.last(ME)["type"] == "ack"
    message = world.last(ALICE)
    assert message["type"] == "message"
    assert message["from"]["userId"] == "user-42"


@pytest.mark.parametrize(
    ("channels", "frame"),
    [
        (TEAM, {"action": "subscribe", "channel": "private-team-7-plans"}),
        (TEAM, {"action": "subscribe", "channel": "presence-team-7"}),
        (TEAM, {"action": "publish", "channel": "private-team-7-plans", "data": 1}),
        (TEAM, {"action": "history", "channel": "private-team-7-plans"}),
        (TEAM, {"action": "presence", "channel": "presence-team-7"}),
        ((), {"action": "subscribe", "channel": "private-team-42-plans"}),
        (("Private-*",), {"action": "subscribe", "channel": "private-x"}),
    ],
)
def test_an_ungranted_reserved_channel_is_forbidden_and_writes_nothing(
    world: World, channels: tuple[str, ...], frame: dict[str, object]
) -> None:
    # GIVEN a user whose patterns do not match the channel
    world.open(ME, user="user-42", channels=channels)
    before = world.items()
    # WHEN it uses the channel
    world.send(frame, ME)
    # THEN it is answered forbidden, naming the channels claim, and the table is unchanged
    reply = world.last(ME)
    assert reply["code"] == "forbidden"
    assert "channels claim" in reply["message"]
    assert world.items() == before


@pytest.mark.parametrize("action", ["subscribe", "history", "presence"])
def test_an_anonymous_connection_is_forbidden_reserved_channels(world: World, action: str) -> None:
    # GIVEN an anonymous connection
    world.open(ME)
    # WHEN it uses a presence channel
    world.send({"action": action, "channel": "presence-team-42"}, ME)
    # THEN forbidden, saying why
    reply = world.last(ME)
    assert reply["code"] == "forbidden"
    assert "anonymous" in reply["message"]


def test_a_malformed_authorizer_context_grants_nothing(world: World) -> None:
    # GIVEN a connection whose authorizer context has a channels value that is not a JSON list
    world.open(ME, user="user-42", channels=TEAM)
    world.contexts[ME] = {**world.contexts[ME], "channels": "private-*"}
    # WHEN it subscribes to a private channel THEN forbidden (fails closed)
    world.send({"action": "subscribe", "channel": "private-team-42-x"}, ME)
    assert world.last(ME)["code"] == "forbidden"


def test_public_channels_stay_open_to_everyone(world: World) -> None:
    # GIVEN an anonymous connection WHEN it subscribes to a public channel THEN it is subscribed
    world.open(ME)
    world.send({"action": "subscribe", "channel": "lobby"}, ME)
    assert world.last(ME)["type"] == "subscribed"
