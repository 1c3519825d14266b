"""AuthSettings: read once from AUTH_* variables, validated, frozen."""

from __future__ import annotations

import dataclasses

import pytest
from lambdacast.auth.settings import AuthConfigError, AuthMode, AuthSettings


def test_defaults_to_auth_disabled() -> None:
    # GIVEN an environment without AUTH_* variables
    # WHEN settings are read
    settings = AuthSettings.from_env({})
    # THEN auth is off (anonymous only) with a 30 s leeway, the audience "lambdacast", 24 h tokens at
    # most and no origin restriction
    assert settings.mode is AuthMode.NONE
    assert settings.leeway_seconds == 30
    assert settings.audience == "lambdacast"
    assert settings.max_token_lifetime_seconds == 86400
    assert settings.allowed_origins == frozenset()


def test_an_empty_audience_means_the_default_not_no_audience() -> None:
    # GIVEN AUTH_AUDIENCE set to an empty string (an empty template parameter)
    # WHEN settings are read
    # THEN the audience is still "lambdacast": there is no way to switch the audience check off
    assert AuthSettings.from_env({"AUTH_AUDIENCE": " "}).audience == "lambdacast"


def test_reads_a_jwks_configuration() -> None:
    # GIVEN a complete JWKS configuration
    env = {
        "AUTH_MODE": "Optional",
        "AUTH_JWKS_URL": "https://example.auth0.com/.well-known/jwks.json",
        "AUTH_ISSUER": "https://example.auth0.com/",
        "AUTH_AUDIENCE": "my-api",
        "AUTH_LEEWAY_SECONDS": "10",
    }
    # WHEN settings are read
    settings = AuthSettings.from_env(env)
    # THEN every value is taken (mode case-insensitively)
    assert settings == AuthSettings(
        mode=AuthMode.OPTIONAL,
        jwks_url=env["AUTH_JWKS_URL"],
        issuer=env["AUTH_ISSUER"],
        audience="my-api",
        leeway_seconds=10,
    )


def test_settings_are_frozen() -> None:
    # GIVEN settings
    settings = AuthSettings.from_env({})
    # WHEN one is changed
    # THEN it is refused
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.mode = AuthMode.REQUIRED  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUTH_MODE": "sometimes"}, "AUTH_MODE"),
        ({"AUTH_MODE": "required"}, "exactly one key source"),
        (
            {"AUTH_MODE": "required", "AUTH_SECRET_PARAMETER": "/s", "AUTH_JWKS_URL": "https://x.test/jwks"},
            "exactly one key source",
        ),
        ({"AUTH_MODE": "optional", "AUTH_JWKS_URL": "https://x.test/jwks"}, "AUTH_ISSUER"),
        (
            {
                "AUTH_MODE": "optional",
                "AUTH_JWKS_URL": "http://x.test/jwks",
                "AUTH_ISSUER": "i",
                "AUTH_AUDIENCE": "a",
            },
            "https",
        ),
        ({"AUTH_LEEWAY_SECONDS": "soon"}, "AUTH_LEEWAY_SECONDS"),
        ({"AUTH_LEEWAY_SECONDS": "3600"}, "0..300"),
        ({"AUTH_MAX_TOKEN_LIFETIME_SECONDS": "2592000"}, "60..604800"),
        ({"AUTH_MAX_TOKEN_LIFETIME_SECONDS": "a day"}, "AUTH_MAX_TOKEN_LIFETIME_SECONDS"),
    ],
)
def test_inconsistent_configuration_is_refused(env: dict[str, str], message: str) -> None:
    # GIVEN an inconsistent environment
    # WHEN settings are read
    # THEN a clear configuration error names the problem (the authorizer fails closed at cold start)
    with pytest.raises(AuthConfigError, match=message):
        AuthSettings.from_env(env)


def test_plain_http_jwks_is_allowed_on_localhost_only() -> None:
    # GIVEN a JWKS served over http on 127.0.0.1 (local development)
    env = {
        "AUTH_MODE": "required",
        "AUTH_JWKS_URL": "http://127.0.0.1:8765/jwks.json",
        "AUTH_ISSUER": "i",
        "AUTH_AUDIENCE": "a",
    }
    # WHEN settings are read
    # THEN they are accepted
    assert AuthSettings.from_env(env).jwks_url == env["AUTH_JWKS_URL"]
