"""RS256/ES256 tokens verified with keys from a JWKS served on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from auth_helpers import AUDIENCE, ISSUER, JwksServer, SigningKeys, claims, mint_es256, mint_hs256, mint_rs256
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lambdacast.auth.access import Identity
from lambdacast.auth.settings import AuthSettings
from lambdacast.auth.tokens import AuthError, JwtVerifier


def refusal(settings: AuthSettings, token: str) -> str:
    with pytest.raises(AuthError) as caught:
        JwtVerifier(settings).verify(token)
    return caught.value.reason


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_valid_rs256_token_gives_its_identity(jwks_settings: AuthSettings, keys: SigningKeys) -> None:
    # GIVEN an RS256 token from the issuer, signed with the key published as rsa-1
    token = mint_rs256(keys, sub="auth0|abc", name="Lin", channels=["private-a"])
    # WHEN it is verified
    identity = JwtVerifier(jwks_settings).verify(token)
    # THEN its claims become the identity
    assert identity == Identity(user_id="auth0|abc", channels=("private-a",), name="Lin")


def test_valid_es256_token_gives_its_identity(jwks_settings: AuthSettings, keys: SigningKeys) -> None:
    # GIVEN an ES256 token signed with the key published as ec-1
    token = mint_es256(keys, sub="user-es")
    # WHEN it is verified
    identity = JwtVerifier(jwks_settings).verify(token)
    # THEN it is accepted
    assert identity.user_id == "user-es"


def test_jwks_is_fetched_once_and_cached_across_invocations(
    jwks_settings: AuthSettings, jwks_server: JwksServer, keys: SigningKeys
) -> None:
    # GIVEN a cold process
    assert jwks_server.hits == []
    # WHEN five invocations (a new verifier each, as a warm Lambda would) verify RS256 and ES256 tokens
    for _ in range(5):
        verifier = JwtVerifier(jwks_settings)
        assert verifier.verify(mint_rs256(keys)).user_id == "user-42"
        assert verifier.verify(mint_es256(keys)).user_id == "user-42"
    # THEN the JWKS endpoint was asked exactly once
    assert len(jwks_server.hits) == 1


def test_key_signed_by_an_unpublished_key_is_refused(jwks_settings: AuthSettings, keys: SigningKeys) -> None:
    # GIVEN an RS256 token claiming kid rsa-1 but signed with another private key
    token = jwt.encode(
        claims(iss=ISSUER, aud=AUDIENCE), keys.other_rsa, algorithm="RS256", headers={"kid": "rsa-1"}
    )
    # WHEN it is verified
    # THEN it is refused as a bad signature
    assert refusal(jwks_settings, token) == "bad_signature"


def test_unknown_kid_is_refused(jwks_settings: AuthSettings, keys: SigningKeys) -> None:
    # GIVEN a token naming a key id the JWKS does not publish
    token = jwt.encode(
        claims(iss=ISSUER, aud=AUDIENCE), keys.other_rsa, algorithm="RS256", headers={"kid": "rogue"}
    )
    # WHEN it is verified
    # THEN it is refused as an unknown key
    assert refusal(jwks_settings, token) == "unknown_key"


def test_kid_of_an_ec_key_with_an_rs256_header_is_refused(
    jwks_settings: AuthSettings, keys: SigningKeys
) -> None:
    # GIVEN an RS256 token that names the EC key's kid
    token = jwt.encode(claims(iss=ISSUER, aud=AUDIENCE), keys.rsa, algorithm="RS256", headers={"kid": "ec-1"})
    # WHEN it is verified
    # THEN the key's own algorithm wins and the token is refused
    assert refusal(jwks_settings, token) == "algorithm_not_allowed"


def test_wrong_audience_is_refused(jwks_settings: AuthSettings, keys: SigningKeys) -> None:
    # GIVEN a token minted for another client of the same issuer
    token = mint_rs256(keys, aud="some-other-app")
    # WHEN it is verified
    # THEN it is refused
    assert refusal(jwks_settings, token) == "wrong_audience"


def test_missing_audience_is_refused(jwks_settings: AuthSettings, keys: SigningKeys) -> None:
    # GIVEN a token with no aud claim
    token = mint_rs256(keys, aud=None)
    # WHEN it is verified
    # THEN it is refused: the audience is required in JWKS mode
    assert refusal(jwks_settings, token) == "missing_claim"


def test_wrong_issuer_is_refused(jwks_settings: AuthSettings, keys: SigningKeys) -> None:
    # GIVEN a token from another issuer (signed with a published key)
    token = mint_rs256(keys, iss="https://evil.example.test/")
    # WHEN it is verified
    # THEN it is refused
    assert refusal(jwks_settings, token) == "wrong_issuer"


def test_expired_rs256_token_is_refused(jwks_settings: AuthSettings, keys: SigningKeys) -> None:
    # GIVEN an RS256 token that expired two minutes ago
    token = mint_rs256(keys, exp=int(time.time()) - 120)
    # WHEN it is verified
    # THEN it is refused
    assert refusal(jwks_settings, token) == "expired"


def test_algorithm_confusion_is_refused_without_fetching_keys(
    jwks_settings: AuthSettings, jwks_server: JwksServer, keys: SigningKeys
) -> None:
    # GIVEN the classic attack: an HS256 token whose HMAC secret is the issuer's *public* RSA key PEM
    pem = keys.rsa.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    signing_input = (
        b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
        + "."
        + b64url(json.dumps(claims(iss=ISSUER, aud=AUDIENCE)).encode())
    )
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url(signature)}"
    # WHEN it is verified in JWKS mode
    reason = refusal(jwks_settings, token)
    # THEN HS256 is not allowed with JWKS keys, and the JWKS was never even fetched
    assert reason == "algorithm_not_allowed"
    assert jwks_server.hits == []


def test_hs256_token_is_refused_in_jwks_mode(jwks_settings: AuthSettings) -> None:
    # GIVEN a well-formed HS256 token
    # WHEN it is verified in JWKS mode
    # THEN it is refused by algorithm
    assert refusal(jwks_settings, mint_hs256(iss=ISSUER, aud=AUDIENCE)) == "algorithm_not_allowed"


def test_alg_none_is_refused_in_jwks_mode(jwks_settings: AuthSettings) -> None:
    # GIVEN an unsigned token with valid-looking claims
    token = (
        b64url(b'{"alg":"none","typ":"JWT"}')
        + "."
        + b64url(json.dumps(claims(iss=ISSUER, aud=AUDIENCE)).encode())
    ) + "."
    # WHEN it is verified
    # THEN it is refused
    assert refusal(jwks_settings, token) == "algorithm_not_allowed"


def test_rs256_token_is_refused_in_secret_mode(hs256_settings: AuthSettings, keys: SigningKeys) -> None:
    # GIVEN an RS256 token (a valid one for the JWKS issuer)
    # WHEN it is verified with the shared-secret settings
    # THEN it is refused by algorithm
    assert refusal(hs256_settings, mint_rs256(keys)) == "algorithm_not_allowed"


def test_unreachable_jwks_refuses_as_key_unavailable(keys: SigningKeys) -> None:
    # GIVEN a JWKS URL where nothing listens (port 9 on 127.0.0.1: discard, normally closed)
    settings = AuthSettings.from_env(
        {
            "AUTH_MODE": "required",
            "AUTH_JWKS_URL": "http://127.0.0.1:9/jwks.json",
            "AUTH_ISSUER": ISSUER,
            "AUTH_AUDIENCE": AUDIENCE,
        }
    )
    # WHEN a token is verified
    # THEN it is refused (fail closed) with a reason an operator can alarm on
    assert refusal(settings, mint_rs256(keys)) == "key_unavailable"


def test_jwks_without_usable_keys_refuses_as_key_unavailable(
    jwks_settings: AuthSettings, jwks_server: JwksServer, keys: SigningKeys
) -> None:
    # GIVEN the JWKS endpoint serves an empty key set
    jwks_server.document = {"keys": []}
    # WHEN a token is verified
    reason = refusal(jwks_settings, mint_rs256(keys))
    # THEN it is refused
    assert reason in {"key_unavailable", "unknown_key"}


def test_unknown_kids_do_not_hammer_the_jwks(
    jwks_settings: AuthSettings, jwks_server: JwksServer, keys: SigningKeys
) -> None:
    # GIVEN a warm cache (one good token verified)
    JwtVerifier(jwks_settings).verify(mint_rs256(keys))
    # WHEN an attacker sends twenty tokens, each naming a different unknown kid
    for i in range(20):
        token = jwt.encode(
            claims(iss=ISSUER, aud=AUDIENCE), keys.other_rsa, algorithm="RS256", headers={"kid": f"rogue-{i}"}
        )
        assert refusal(jwks_settings, token) == "unknown_key"
    # THEN the JWKS endpoint is asked at most once more (PyJWT's refetch cooldown), not twenty times
    assert len(jwks_server.hits) <= 2
