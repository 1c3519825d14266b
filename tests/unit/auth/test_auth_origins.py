"""AUTH_ALLOWED_ORIGINS: the $connect authorizer refuses web pages of other sites, in every AuthMode."""

from __future__ import annotations

from typing import Any

import pytest
from auth_helpers import SECRET_PARAMETER, event_with_token, load_event, mint_hs256
from lambdacast.auth.authorizer import ConnectAuthorizer
from lambdacast.auth.settings import AuthConfigError, AuthSettings, normalize_origin, parse_allowed_origins

SITE = "https://chat.example.com"


def authorizer(mode: str, origins: str = SITE) -> ConnectAuthorizer:
    env = {"AUTH_MODE": mode, "AUTH_ALLOWED_ORIGINS": origins}
    if mode != "none":
        env["AUTH_SECRET_PARAMETER"] = SECRET_PARAMETER
    return ConnectAuthorizer(AuthSettings.from_env(env))


def with_origin(event: dict[str, Any], *origins: str | None) -> dict[str, Any]:
    """The event with its Origin header replaced (several values, or removed with None)."""
    for key in ("headers", "multiValueHeaders"):
        event[key] = {k: v for k, v in event[key].items() if k.lower() != "origin"}
    values = [o for o in origins if o is not None]
    if values:
        event["headers"]["Origin"] = values[-1]
        event["multiValueHeaders"]["Origin"] = values
    return event


def effect(result: dict[str, Any]) -> str:
    return str(result["policyDocument"]["Statement"][0]["Effect"])


@pytest.mark.usefixtures("ssm")
@pytest.mark.parametrize("mode", ["none", "optional", "required"])
def test_a_foreign_origin_is_denied_in_every_mode(mode: str) -> None:
    # GIVEN the attack: a page on another site opens a socket with a valid token
    event = with_origin(event_with_token(mint_hs256()), "https://evil.example")
    # WHEN the authorizer answers
    subject = authorizer(mode)
    result = subject.authorize(event)
    # THEN the handshake is denied (API Gateway answers 403; no $connect runs)
    assert effect(result) == "Deny"
    assert subject.decide(event).reason == "origin_not_allowed"


@pytest.mark.usefixtures("ssm")
@pytest.mark.parametrize("mode", ["none", "optional", "required"])
def test_the_allowed_origin_passes_in_every_mode(mode: str) -> None:
    # GIVEN the site's own page with a valid token
    event = with_origin(event_with_token(mint_hs256()), SITE)
    # WHEN the authorizer answers THEN the mode decides as usual
    assert effect(authorizer(mode).authorize(event)) == "Allow"


@pytest.mark.usefixtures("ssm")
@pytest.mark.parametrize(
    "origin", ["HTTPS://Chat.Example.COM", "https://chat.example.com:443", "https://chat.example.com/"]
)
def test_origins_match_case_insensitively_and_without_the_default_port(origin: str) -> None:
    # GIVEN the allowed origin spelled another way
    event = with_origin(event_with_token(None), origin)
    # WHEN the authorizer decides THEN it is the same origin
    assert authorizer("optional").decide(event).reason == "anonymous"


@pytest.mark.usefixtures("ssm")
@pytest.mark.parametrize(
    "origin",
    [
        "http://chat.example.com",  # another scheme
        "https://chat.example.com:8443",  # another port
        "https://chat.example.com.evil.example",  # a suffix
        "https://evilchat.example.com",
        "null",  # sandboxed frames, file:// pages
        "",
    ],
)
def test_anything_but_the_exact_origin_is_denied(origin: str) -> None:
    # GIVEN a handshake from an origin close to the allowed one
    event = with_origin(event_with_token(None), origin)
    # WHEN the authorizer decides THEN it is refused
    assert authorizer("optional").decide(event).reason == "origin_not_allowed"


@pytest.mark.usefixtures("ssm")
def test_several_different_origin_headers_are_denied() -> None:
    # GIVEN a handshake carrying the allowed origin and another one
    event = with_origin(event_with_token(None), SITE, "https://evil.example")
    # WHEN the authorizer decides THEN it does not guess which one counts
    assert authorizer("optional").decide(event).reason == "origin_not_allowed"


@pytest.mark.usefixtures("ssm")
def test_a_handshake_without_origin_is_left_to_the_token() -> None:
    # GIVEN a program (no browser: no Origin header) connecting with and without a token
    anonymous = with_origin(event_with_token(None), None)
    signed_in = with_origin(event_with_token(mint_hs256()), None)
    # WHEN the authorizer decides THEN the origin list does not apply, the mode does
    assert authorizer("optional").decide(anonymous).reason == "anonymous"
    assert authorizer("required").decide(anonymous).reason == "missing_token"
    assert authorizer("required").decide(signed_in).reason == "token_valid"


def test_an_empty_list_allows_any_origin() -> None:
    # GIVEN no AUTH_ALLOWED_ORIGINS (server clients, or a site that does not restrict)
    event = with_origin(load_event("authorizer-no-token"), "https://anywhere.example")
    # WHEN the authorizer decides THEN the origin is not checked
    assert authorizer("none", origins="").decide(event).reason == "auth_disabled"


def test_the_sample_events_origin_is_what_the_header_looks_like() -> None:
    # GIVEN the sample event captured from a browser WHEN its origin is allowed THEN it passes
    event = load_event("authorizer-no-token")
    assert authorizer("none", origins="https://example.com").decide(event).allowed


def test_the_list_is_parsed_and_normalized() -> None:
    # GIVEN a list with spaces, an empty entry, case and default ports
    origins = parse_allowed_origins(" https://A.example.com , ,http://localhost:8000,https://b.example:443,")
    # THEN each origin is in its canonical form
    assert origins == {"https://a.example.com", "http://localhost:8000", "https://b.example"}


@pytest.mark.parametrize(
    "entry",
    ["*", "https://*.example.com", "example.com", "https://example.com/app", "ftp://example.com", "null"],
)
def test_an_entry_that_is_not_an_exact_origin_fails_the_cold_start(entry: str) -> None:
    # GIVEN a configured entry that is not scheme://host[:port]
    # WHEN settings are read
    # THEN a configuration error names it (failing closed, rather than allowing every origin)
    with pytest.raises(AuthConfigError, match="AUTH_ALLOWED_ORIGINS"):
        AuthSettings.from_env({"AUTH_ALLOWED_ORIGINS": f"https://ok.example,{entry}"})


def test_ipv6_origins_keep_their_brackets() -> None:
    # GIVEN an IPv6 origin WHEN it is normalized THEN it keeps its brackets and port
    assert normalize_origin("http://[::1]:8000") == "http://[::1]:8000"
