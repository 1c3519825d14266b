"""The local token minter's rules (pure): who may mint, which user id and which channels a token gets."""

from __future__ import annotations

import pytest

from lambdacast_local.devtokens import (
    DevTokenError,
    DevTokenMinter,
    page_origins,
    parse_channels,
    refusal,
)

PAGE = page_origins(8000)


def test_the_page_origins_are_the_served_pages_loopback_names() -> None:
    # GIVEN the demo page served on port 8000 THEN the minter answers exactly its loopback origins
    assert page_origins(8000) == {"http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"}


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://127.0.0.1:8001", "http://localhost", "null", "http://0.0.0.0:8000"],
)
def test_a_foreign_origin_may_not_mint(origin: str) -> None:
    # GIVEN a browser request from any page but the served one (the attack: any site the developer visits)
    # WHEN the minter decides THEN it refuses
    assert refusal(origin, "127.0.0.1", PAGE) is not None


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8000", "http://LOCALHOST:8000", None])
def test_the_served_page_and_local_programs_may_mint(origin: str | None) -> None:
    # GIVEN the served page (any case) or a program without Origin, on this machine
    # WHEN the minter decides THEN it answers
    assert refusal(origin, "127.0.0.1", PAGE) is None


@pytest.mark.parametrize("peer", ["192.168.1.7", "10.0.0.2", "", None, "not-an-address"])
def test_another_machine_may_not_mint_even_without_origin(peer: str | None) -> None:
    # GIVEN a request from another machine (the emulator exposed with --host)
    # WHEN the minter decides THEN it refuses, whatever the Origin
    assert refusal(None, peer, PAGE) == "The dev token minter answers this machine only."


def test_ipv6_loopback_is_this_machine() -> None:
    assert refusal("http://[::1]:8000", "::1", PAGE) is None


def test_a_client_chosen_user_id_is_ignored_by_default() -> None:
    # GIVEN the default minter and a body naming someone else's user id
    minter = DevTokenMinter("/p")
    claims = minter.claims({"name": "Mallory", "userId": "user-42"}, now=1000)
    # THEN the token names the user derived from the display name, not the chosen id
    assert claims["sub"] != "user-42"
    assert claims["sub"].startswith("dev-mallory-")


def test_any_user_honours_the_chosen_user_id() -> None:
    # GIVEN --dev-tokens-any-user WHEN a user id is asked for THEN it is the token's sub
    claims = DevTokenMinter("/p", any_user=True).claims({"name": "Ada", "userId": "user-42"}, now=1000)
    assert claims["sub"] == "user-42"


def test_any_user_still_checks_the_user_id() -> None:
    with pytest.raises(DevTokenError, match="userId"):
        DevTokenMinter("/p", any_user=True).claims({"name": "Ada", "userId": ""}, now=1000)


def test_tokens_grant_the_configured_channels_only() -> None:
    # GIVEN the default minter and one configured with private- channels too
    default = DevTokenMinter("/p").claims({"name": "Ada"}, now=1000)
    wider = DevTokenMinter("/p", channels=("presence-*", "private-*")).claims({"name": "Ada"}, now=1000)
    # THEN the default grants the demo's presence rooms only, never "*"
    assert default["channels"] == ["presence-*"]
    assert wider["channels"] == ["presence-*", "private-*"]


def test_tokens_carry_the_audience_and_a_bounded_lifetime() -> None:
    # GIVEN a minted token's claims THEN they pass the authorizer's audience and lifetime rules
    claims = DevTokenMinter("/p").claims({"name": "Ada"}, now=1000)
    assert claims["aud"] == "lambdacast"
    assert (claims["iat"], claims["exp"]) == (1000, 1000 + 3600)


def test_the_channels_flag_is_parsed_and_checked() -> None:
    assert parse_channels(" presence-*, private-team-[ab]* ,") == ("presence-*", "private-team-[ab]*")
    assert parse_channels("") == ()
    with pytest.raises(DevTokenError, match="--dev-tokens-channels"):
        parse_channels("presence-*,private/../x")
