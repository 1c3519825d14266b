"""The admin API: close a connection, or every connection of a user and ban it (functions/admin/app.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from core_support import EVENTS, load_event
from lambdacast.handlers import Runtime
from world_support import World

Invoke = Callable[[dict[str, Any]], dict[str, Any]]
ME = "BFHPhfCWIAMCKlQ="  # events/http-admin-close-connection.json closes this connection
TAB_1 = "BFHTab11oAMCAAA="
TAB_2 = "BFHTab22oAMCAAA="
OTHER = "BFHOthe1oAMCAAA="


def admin_event(name: str, **path: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    event["pathParameters"].update(path)
    return event


@pytest.fixture
def admin(world: World, invoke: Callable[[str], Invoke], runtime: Runtime) -> Invoke:
    """The deployed admin handler, the template's management endpoint set."""
    runtime.settings = replace(
        runtime.settings, management_endpoint="https://k3xq9w2m7d.execute-api.eu-west-1.amazonaws.com/dev"
    )
    return invoke("admin")


def test_closing_an_open_connection_deletes_it_through_the_management_api(
    world: World, admin: Invoke
) -> None:
    # GIVEN an open connection WHEN an operator closes it (events/http-admin-close-connection.json)
    world.open(ME)
    response = admin(admin_event("http-admin-close-connection"))
    # THEN 204, and a signed DELETE @connections/{id} went out (API Gateway then runs $disconnect)
    assert response["statusCode"] == 204
    assert world.transport.deleted == [ME]


def test_closing_a_connection_that_is_gone_answers_404(world: World, admin: Invoke) -> None:
    # GIVEN a connection that already left WHEN an operator closes it THEN 404 not_found
    world.transport.gone.add(ME)
    response = admin(admin_event("http-admin-close-connection"))
    assert (response["statusCode"], json.loads(response["body"])["code"]) == (404, "not_found")


def test_closing_a_users_connections_closes_every_tab_and_no_one_else(world: World, admin: Invoke) -> None:
    # GIVEN user-42 connected twice and another user connected once
    world.open(TAB_1, user="user-42")
    world.open(TAB_2, user="user-42")
    world.open(OTHER, user="user-7")
    # WHEN an operator closes user-42's connections without a ban
    event = admin_event("http-admin-ban-user")
    event.pop("queryStringParameters")
    response = admin(event)
    # THEN both tabs were closed, the other user's connection was not, and there is no ban
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"userId": "user-42", "closed": 2, "bannedUntil": None}
    assert sorted(world.transport.deleted) == sorted([TAB_1, TAB_2])


def test_a_banned_user_cannot_connect_until_the_ban_ends(
    world: World, admin: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN user-42 connected, and an operator bans it for an hour (?ban=3600)
    world.open(TAB_1, user="user-42")
    now = load_event("connect")["requestContext"]["connectedAt"]
    monkeypatch.setattr("lambdacast.handlers.now_ms", lambda: now)
    reply = json.loads(admin(admin_event("http-admin-ban-user"))["body"])
    assert (reply["closed"], reply["bannedUntil"]) == (1, now // 1000 + 3600)
    # WHEN user-42 connects again within the hour THEN the handshake is refused with 403, nothing recorded
    event = load_event("connect-authorized", connectionId=TAB_2)
    assert world.connect(event) == {"statusCode": 403}
    assert world.store.get_connection(TAB_2) is None
    # AND another user still connects
    world.open(OTHER, user="user-7")
    # AND after the hour, user-42 connects again
    monkeypatch.setattr("lambdacast.handlers.now_ms", lambda: now + 3601_000)
    assert world.connect(event)["statusCode"] == 200


@pytest.mark.parametrize("ban", ["0", "-5", "soon", str(31 * 24 * 3600)])
def test_a_ban_out_of_range_is_refused_and_closes_nothing(world: World, admin: Invoke, ban: str) -> None:
    # GIVEN user-42 connected WHEN an operator asks for a ban that is not 1 s to 30 days
    world.open(TAB_1, user="user-42")
    event = admin_event("http-admin-ban-user")
    event["queryStringParameters"] = {"ban": ban}
    response = admin(event)
    # THEN 400 invalid_frame, and nothing was closed or banned
    assert (response["statusCode"], json.loads(response["body"])["code"]) == (400, "invalid_frame")
    assert world.transport.deleted == []
    assert [i["sk"]["S"] for i in world.items("USER#user-42")] == [f"CONN#{TAB_1}"]  # no BAN item


def test_a_users_listing_of_a_connection_goes_with_its_disconnect(world: World) -> None:
    # GIVEN user-42 connected (listed under USER#user-42) WHEN it disconnects
    world.open(TAB_1, user="user-42")
    assert [i["sk"]["S"] for i in world.items("USER#user-42")] == [f"CONN#{TAB_1}"]
    world.close(TAB_1)
    # THEN the listing is gone with the connection
    assert world.items("USER#user-42") == []


def test_anonymous_connections_are_not_listed_and_cost_one_write(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a count of the writes $connect makes
    writes: list[str] = []
    client = world.store.client
    for name in ("put_item", "transact_write_items"):
        original = getattr(client, name)
        monkeypatch.setattr(
            client, name, lambda *a, _o=original, _n=name, **k: (writes.append(_n), _o(*a, **k))[1]
        )
    # WHEN an anonymous client connects THEN one PutItem, no user listing
    world.open(OTHER)
    assert writes == ["put_item"]
    assert world.items("USER#") == []
