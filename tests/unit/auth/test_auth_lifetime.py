"""Token lifetimes: ``exp - iat`` is bounded by AUTH_MAX_TOKEN_LIFETIME_SECONDS, and ``iat`` is required."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from auth_helpers import SECRET_PARAMETER, TEST_SECRET, claims, mint_hs256
from jwt.api_jws import PyJWS
from lambdacast.auth.settings import AuthSettings
from lambdacast.auth.tokens import AuthError, JwtVerifier

DAY = 86400


def refusal(settings: AuthSettings, token: str) -> str:
    with pytest.raises(AuthError) as caught:
        JwtVerifier(settings).verify(token)
    return caught.value.reason


def test_a_30_day_token_is_refused(hs256_settings: AuthSettings) -> None:
    # GIVEN the attack: a correctly signed token minted to live 30 days (a leaked one stays useful)
    now = int(time.time())
    token = mint_hs256(iat=now, exp=now + 30 * DAY)
    # WHEN it is verified with the default settings (24 h at most)
    # THEN it is refused although it is unexpired and correctly signed
    assert hs256_settings.max_token_lifetime_seconds == DAY
    assert refusal(hs256_settings, token) == "lifetime_too_long"


def test_a_token_of_exactly_the_maximum_lifetime_is_accepted(hs256_settings: AuthSettings) -> None:
    # GIVEN a token minted to live exactly 24 h
    now = int(time.time())
    token = mint_hs256(iat=now, exp=now + DAY)
    # WHEN it is verified THEN it is accepted: the bound is inclusive
    assert JwtVerifier(hs256_settings).verify(token).user_id == "user-42"


def test_a_token_one_second_over_the_maximum_is_refused(hs256_settings: AuthSettings) -> None:
    # GIVEN a token minted to live 24 h and one second
    now = int(time.time())
    # WHEN it is verified THEN it is refused
    assert refusal(hs256_settings, mint_hs256(iat=now, exp=now + DAY + 1)) == "lifetime_too_long"


def test_a_long_lived_token_minted_long_ago_is_refused_too(hs256_settings: AuthSettings) -> None:
    # GIVEN a 1-year token minted 364 days ago (one day left: only its minted lifetime tells)
    now = int(time.time())
    token = mint_hs256(iat=now - 364 * DAY, exp=now + DAY)
    # WHEN it is verified THEN it is refused
    assert refusal(hs256_settings, token) == "lifetime_too_long"


def test_a_token_without_iat_is_refused(hs256_settings: AuthSettings) -> None:
    # GIVEN a correctly signed, unexpired token without iat (its lifetime cannot be known)
    token = mint_hs256(iat=None)
    # WHEN it is verified THEN it is refused: iat is required
    assert refusal(hs256_settings, token) == "missing_claim"


def test_a_token_issued_in_the_future_is_refused(hs256_settings: AuthSettings) -> None:
    # GIVEN a token whose iat is an hour ahead (a way to make exp - iat look short)
    now = int(time.time())
    token = mint_hs256(iat=now + 3600, exp=now + 3600 + 60)
    # WHEN it is verified THEN it is refused as not yet valid
    assert refusal(hs256_settings, token) == "not_yet_valid"


@pytest.mark.parametrize("iat", ["0", True, None, [1]])
def test_an_iat_that_is_not_a_number_is_refused(hs256_settings: AuthSettings, iat: Any) -> None:
    # GIVEN a correctly signed token whose iat is not a number (PyJWT alone would accept "0")
    payload = {**claims(), "iat": iat}
    token = PyJWS().encode(json.dumps(payload).encode(), TEST_SECRET, algorithm="HS256")
    # WHEN it is verified THEN it is refused
    assert refusal(hs256_settings, token) in {"invalid_claims", "missing_claim"}


@pytest.mark.usefixtures("ssm")
def test_the_maximum_is_configurable() -> None:
    # GIVEN settings allowing tokens of at most 10 minutes
    settings = AuthSettings.from_env(
        {
            "AUTH_MODE": "required",
            "AUTH_SECRET_PARAMETER": SECRET_PARAMETER,
            "AUTH_MAX_TOKEN_LIFETIME_SECONDS": "600",
        }
    )
    now = int(time.time())
    # WHEN a 10-minute and an 11-minute token are verified
    # THEN the first is accepted and the second refused
    assert JwtVerifier(settings).verify(mint_hs256(iat=now, exp=now + 600)).user_id == "user-42"
    assert refusal(settings, mint_hs256(iat=now, exp=now + 660)) == "lifetime_too_long"
