"""Helpers for the $connect authentication tests: events, claims, token minting, key material."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

EVENTS = Path(__file__).resolve().parents[3] / "events"

# The secret the HS256 tokens in events/authorizer_*.json are signed with. Test-only.
TEST_SECRET = "lambdacast-test-secret-only-for-unit-tests-0123456789"
SECRET_PARAMETER = "/lambdacast/test/auth-secret"
ISSUER = "https://issuer.example.test/"
AUDIENCE = "lambdacast-test-client"  # the JWKS tests' configured audience
DEFAULT_AUDIENCE = "lambdacast"  # what the authorizer expects when AUTH_AUDIENCE is not set


def load_event(name: str) -> dict[str, Any]:
    """An event from events/, parsed (a fresh copy each time)."""
    return json.loads((EVENTS / f"{name}.json").read_text())


def event_with_token(token: str | None) -> dict[str, Any]:
    """events/authorizer-token.json with its token replaced (or removed when None)."""
    event = load_event("authorizer-token")
    if token is None:
        event["queryStringParameters"] = None
        event["multiValueQueryStringParameters"] = None
    else:
        event["queryStringParameters"] = {"token": token}
        event["multiValueQueryStringParameters"] = {"token": [token]}
    return event


def event_time(name: str = "authorizer-token") -> float:
    """The moment a sample event was captured (its requestTimeEpoch), in seconds.

    The sample events carry short-lived tokens minted around that moment, so a test that verifies
    one as valid runs with the clock pinned there (``time_machine.travel(event_time(), tick=False)``).
    """
    return float(load_event(name)["requestContext"]["requestTimeEpoch"]) / 1000


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims (default audience, exp in 10 minutes) with overrides; None removes a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "user-42",
        "name": "Ada",
        "channels": ["private-team-*", "presence-lobby"],
        "aud": DEFAULT_AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@dataclass
class SigningKeys:
    rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey
    other_rsa: rsa.RSAPrivateKey  # not published in the JWKS: a forger's key

    def jwks(self) -> dict[str, Any]:
        rsa_jwk = json.loads(RSAAlgorithm.to_jwk(self.rsa.public_key()))
        ec_jwk = json.loads(ECAlgorithm.to_jwk(self.ec.public_key()))
        return {
            "keys": [
                {**rsa_jwk, "kid": "rsa-1", "use": "sig", "alg": "RS256"},
                {**ec_jwk, "kid": "ec-1", "use": "sig", "alg": "ES256"},
            ]
        }


@dataclass
class JwksServer:
    url: str
    document: dict[str, Any]
    hits: list[str] = field(default_factory=list)


def mint_rs256(keys: SigningKeys, **overrides: Any) -> str:
    return jwt.encode(
        claims(**{"iss": ISSUER, "aud": AUDIENCE, **overrides}),
        keys.rsa,
        algorithm="RS256",
        headers={"kid": "rsa-1"},
    )


def mint_es256(keys: SigningKeys, **overrides: Any) -> str:
    return jwt.encode(
        claims(**{"iss": ISSUER, "aud": AUDIENCE, **overrides}),
        keys.ec,
        algorithm="ES256",
        headers={"kid": "ec-1"},
    )


def mint_hs256(secret: str = TEST_SECRET, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm="HS256")
