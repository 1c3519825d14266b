"""Claims -> Identity: strict types and lengths."""

from __future__ import annotations

from typing import Any

import pytest
from lambdacast.auth.access import Identity
from lambdacast.auth.tokens import AuthError, identity_from_claims


def test_claims_become_an_identity() -> None:
    # GIVEN verified claims with sub, channels and name
    claims = {"sub": "user-1", "channels": ["private-a-*", "presence-b"], "name": "Bo", "exp": 1}
    # WHEN they are turned into an identity
    # THEN sub is the user id, channels the patterns, name the display name
    assert identity_from_claims(claims) == Identity("user-1", ("private-a-*", "presence-b"), "Bo")


def test_channels_and_name_are_optional() -> None:
    # GIVEN claims with only a subject
    # WHEN they are turned into an identity
    # THEN the user may use public channels only and has no display name
    assert identity_from_claims({"sub": "user-1"}) == Identity("user-1", (), None)


def test_limits_are_inclusive() -> None:
    # GIVEN claims exactly at the per-field limits (128-char sub, name and pattern)
    claims = {"sub": "s" * 128, "name": "n" * 128, "channels": ["private-" + "x" * 120]}
    # WHEN they are turned into an identity
    identity = identity_from_claims(claims)
    # THEN they are accepted
    assert identity.channels == ("private-" + "x" * 120,)


def test_fifty_patterns_fit_within_the_encoded_size_cap() -> None:
    # GIVEN 50 patterns of 78 characters (4,051 bytes as JSON, under the 4,096-byte cap)
    patterns = [f"private-{i:02d}-" + "x" * 67 for i in range(50)]
    # WHEN they are turned into an identity
    identity = identity_from_claims({"sub": "u", "channels": patterns})
    # THEN all are kept
    assert identity.channels == tuple(patterns)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": ""},
        {"sub": "s" * 129},
        {"sub": 42},
        {"sub": ["a"]},
        {"sub": "line\nbreak"},
        {"sub": "u", "channels": "private-*"},
        {"sub": "u", "channels": [42]},
        {"sub": "u", "channels": [""]},
        {"sub": "u", "channels": ["private-" + "x" * 121]},
        {"sub": "u", "channels": ["private-a/b"]},
        {"sub": "u", "channels": ["private a"]},
        {"sub": "u", "channels": [f"private-{i}" for i in range(51)]},
        {"sub": "u", "channels": ["private-" + "x" * 120] * 40},  # 40 x 128 chars > 4096 bytes encoded
        {"sub": "u", "name": ""},
        {"sub": "u", "name": "n" * 129},
        {"sub": "u", "name": 7},
        {"sub": "u", "name": "bell\x07"},
    ],
)
def test_invalid_claims_are_refused(claims: dict[str, Any]) -> None:
    # GIVEN claims with a wrong type, length or character
    # WHEN they are turned into an identity
    # THEN the token is refused as invalid_claims
    with pytest.raises(AuthError) as caught:
        identity_from_claims(claims)
    assert caught.value.reason == "invalid_claims"
