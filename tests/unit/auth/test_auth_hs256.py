"""HS256 tokens verified with the shared secret from SSM Parameter Store (moto)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from auth_helpers import SECRET_PARAMETER, TEST_SECRET, claims, load_event, mint_hs256
from lambdacast.auth.access import Identity
from lambdacast.auth.settings import AuthSettings
from lambdacast.auth.tokens import AuthError, JwtVerifier, token_from_event


def refusal(settings: AuthSettings, token: str) -> str:
    with pytest.raises(AuthError) as caught:
        JwtVerifier(settings).verify(token)
    return caught.value.reason


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_valid_token_gives_its_identity(hs256_settings: AuthSettings) -> None:
    # GIVEN a token signed with the secret held in SSM
    token = mint_hs256(sub="user-7", name="Grace", channels=["private-ops-*"])
    # WHEN it is verified
    identity = JwtVerifier(hs256_settings).verify(token)
    # THEN sub, channels and name become the identity
    assert identity == Identity(user_id="user-7", channels=("private-ops-*",), name="Grace")


@pytest.mark.usefixtures("at_event_time")
def test_event_token_signed_with_the_test_secret_is_valid(hs256_settings: AuthSettings) -> None:
    # GIVEN the sample event with a 5-minute token signed with the test secret, at the event's time
    token = token_from_event(load_event("authorizer-token"))
    assert token is not None
    # WHEN it is verified
    identity = JwtVerifier(hs256_settings).verify(token)
    # THEN its claims are read
    assert identity == Identity(user_id="user-42", channels=("private-team-*", "presence-lobby"), name="Ada")


def test_forged_signature_is_refused(hs256_settings: AuthSettings) -> None:
    # GIVEN the sample event whose token is signed with another secret
    token = token_from_event(load_event("authorizer-forged-token"))
    assert token is not None
    # WHEN it is verified
    # THEN it is refused as a bad signature
    assert refusal(hs256_settings, token) == "bad_signature"


def test_tampered_payload_is_refused(hs256_settings: AuthSettings) -> None:
    # GIVEN a valid token whose payload is swapped for one granting every channel
    header, _, signature = mint_hs256().split(".")
    payload = b64url(json.dumps(claims(channels=["*"])).encode())
    # WHEN it is verified
    # THEN the signature no longer matches
    assert refusal(hs256_settings, f"{header}.{payload}.{signature}") == "bad_signature"


def test_expired_beyond_leeway_is_refused(hs256_settings: AuthSettings) -> None:
    # GIVEN a token that expired two minutes ago (leeway is 30 s)
    token = mint_hs256(exp=int(time.time()) - 120)
    # WHEN it is verified
    # THEN it is refused as expired
    assert refusal(hs256_settings, token) == "expired"


def test_event_with_expired_token_is_refused(hs256_settings: AuthSettings) -> None:
    # GIVEN the sample event whose token expired in 2020
    token = token_from_event(load_event("authorizer-expired-token"))
    assert token is not None
    # WHEN it is verified
    # THEN it is refused as expired
    assert refusal(hs256_settings, token) == "expired"


def test_expired_within_leeway_is_accepted(hs256_settings: AuthSettings) -> None:
    # GIVEN a token that expired 5 s ago (inside the 30 s leeway for clock skew)
    token = mint_hs256(exp=int(time.time()) - 5)
    # WHEN it is verified
    identity = JwtVerifier(hs256_settings).verify(token)
    # THEN it is accepted
    assert identity.user_id == "user-42"


def test_not_yet_valid_is_refused(hs256_settings: AuthSettings) -> None:
    # GIVEN a token valid only from two minutes from now
    token = mint_hs256(nbf=int(time.time()) + 120)
    # WHEN it is verified
    # THEN it is refused as not yet valid
    assert refusal(hs256_settings, token) == "not_yet_valid"


def test_token_without_exp_is_refused(hs256_settings: AuthSettings) -> None:
    # GIVEN a correctly signed token that never expires
    token = mint_hs256(exp=None)
    # WHEN it is verified
    # THEN it is refused: exp is required
    assert refusal(hs256_settings, token) == "missing_claim"


def test_token_without_sub_is_refused(hs256_settings: AuthSettings) -> None:
    # GIVEN a correctly signed token naming nobody
    token = mint_hs256(sub=None)
    # WHEN it is verified
    # THEN it is refused: sub is required
    assert refusal(hs256_settings, token) == "missing_claim"


def test_alg_none_is_refused(hs256_settings: AuthSettings) -> None:
    # GIVEN the sample event with an unsigned token (alg: none)
    token = token_from_event(load_event("authorizer-alg-none"))
    assert token is not None
    # WHEN it is verified
    # THEN it is refused before any key is used
    assert refusal(hs256_settings, token) == "algorithm_not_allowed"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512 wants 64 bytes
def test_hs512_is_refused_even_with_the_right_secret(hs256_settings: AuthSettings) -> None:
    # GIVEN a token signed with the right secret but a non-allow-listed algorithm
    import jwt

    token = jwt.encode(claims(), TEST_SECRET, algorithm="HS512")
    # WHEN it is verified
    # THEN only HS256 is accepted with the shared secret
    assert refusal(hs256_settings, token) == "algorithm_not_allowed"


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.e30"])
def test_malformed_token_is_refused(hs256_settings: AuthSettings, token: str) -> None:
    # GIVEN text that is not a compact JWS
    # WHEN it is verified
    # THEN it is refused as malformed
    assert refusal(hs256_settings, token) == "malformed"


def test_the_audience_defaults_to_lambdacast(hs256_settings: AuthSettings) -> None:
    # GIVEN HS256 settings without AUTH_AUDIENCE
    # WHEN a token for the audience "lambdacast" is verified
    identity = JwtVerifier(hs256_settings).verify(mint_hs256(sub="user-7", aud="lambdacast"))
    # THEN it is accepted: the audience is "lambdacast" unless configured otherwise
    assert hs256_settings.audience == "lambdacast"
    assert identity.user_id == "user-7"


def test_a_token_without_aud_is_refused_even_when_no_audience_is_configured(
    hs256_settings: AuthSettings,
) -> None:
    # GIVEN the attack: a JWT the site signs with the same secret for another purpose (no aud)
    token = mint_hs256(aud=None)
    # WHEN it is presented as a lambdacast token
    # THEN it is refused: aud is required in every mode
    assert refusal(hs256_settings, token) == "missing_claim"


def test_a_token_for_another_audience_is_refused_with_the_default_audience(
    hs256_settings: AuthSettings,
) -> None:
    # GIVEN a token the site minted for its billing API with the same secret
    token = mint_hs256(aud="billing")
    # WHEN it is verified with the default settings
    # THEN it is refused
    assert refusal(hs256_settings, token) == "wrong_audience"


def test_wrong_audience_is_refused_when_an_audience_is_configured(ssm: Any) -> None:
    # GIVEN HS256 settings with an audience, and a token for another audience
    settings = AuthSettings.from_env(
        {"AUTH_MODE": "required", "AUTH_SECRET_PARAMETER": SECRET_PARAMETER, "AUTH_AUDIENCE": "chat"}
    )
    token = mint_hs256(aud="lambdacast")
    # WHEN it is verified
    # THEN it is refused (the default audience is no longer accepted either)
    assert refusal(settings, token) == "wrong_audience"


def test_the_right_audience_is_accepted_when_one_is_configured(ssm: Any) -> None:
    # GIVEN HS256 settings with an audience, and a token for that audience
    settings = AuthSettings.from_env(
        {"AUTH_MODE": "required", "AUTH_SECRET_PARAMETER": SECRET_PARAMETER, "AUTH_AUDIENCE": "chat"}
    )
    # WHEN it is verified THEN it is accepted
    assert JwtVerifier(settings).verify(mint_hs256(sub="u", aud="chat")).user_id == "u"


def test_an_audience_list_containing_the_audience_is_accepted(hs256_settings: AuthSettings) -> None:
    # GIVEN a token minted for several audiences, lambdacast among them (RFC 7519 allows a list)
    token = mint_hs256(sub="u", aud=["billing", "lambdacast"])
    # WHEN it is verified THEN it is accepted
    assert JwtVerifier(hs256_settings).verify(token).user_id == "u"


def test_a_token_without_iss_is_refused_when_an_issuer_is_configured(ssm: Any) -> None:
    # GIVEN HS256 settings with an issuer, and a token that names none
    settings = AuthSettings.from_env(
        {"AUTH_MODE": "required", "AUTH_SECRET_PARAMETER": SECRET_PARAMETER, "AUTH_ISSUER": "https://a.test/"}
    )
    # WHEN it is verified THEN it is refused: iss is required once an issuer is configured
    assert refusal(settings, mint_hs256(iss=None)) == "missing_claim"
    assert JwtVerifier(settings).verify(mint_hs256(iss="https://a.test/")).user_id == "user-42"


def test_wrong_issuer_is_refused_when_an_issuer_is_configured(ssm: Any) -> None:
    # GIVEN HS256 settings with an issuer, and a token from another issuer
    settings = AuthSettings.from_env(
        {"AUTH_MODE": "required", "AUTH_SECRET_PARAMETER": SECRET_PARAMETER, "AUTH_ISSUER": "https://a.test/"}
    )
    token = mint_hs256(iss="https://b.test/")
    # WHEN it is verified
    # THEN it is refused
    assert refusal(settings, token) == "wrong_issuer"


def test_secret_is_cached_across_invocations(hs256_settings: AuthSettings, ssm: Any) -> None:
    # GIVEN one verification has read the secret from SSM
    JwtVerifier(hs256_settings).verify(mint_hs256())
    # WHEN the parameter changes in SSM and a new verifier (a later invocation) verifies again
    rotated = "rotated-secret-rotated-secret-rotated-secret-0123"
    ssm.put_parameter(Name=SECRET_PARAMETER, Value=rotated, Type="SecureString", Overwrite=True)
    verifier = JwtVerifier(hs256_settings)
    # THEN the cached secret is still used (no SSM call per invocation)...
    assert verifier.verify(mint_hs256()).user_id == "user-42"
    assert refusal(hs256_settings, mint_hs256(secret=rotated)) == "bad_signature"


def test_secret_is_reread_once_the_cache_is_cleared(hs256_settings: AuthSettings, ssm: Any) -> None:
    # GIVEN the secret was read and then rotated in SSM
    JwtVerifier(hs256_settings).verify(mint_hs256())
    rotated = "rotated-secret-rotated-secret-rotated-secret-0123"
    ssm.put_parameter(Name=SECRET_PARAMETER, Value=rotated, Type="SecureString", Overwrite=True)
    # WHEN the cache expires (simulated by clearing it, as a cold start would)
    from lambdacast.auth.tokens import clear_key_caches

    clear_key_caches()
    # THEN tokens signed with the new secret verify
    assert JwtVerifier(hs256_settings).verify(mint_hs256(secret=rotated)).user_id == "user-42"


def test_missing_parameter_refuses_as_key_unavailable(ssm: Any) -> None:
    # GIVEN settings naming an SSM parameter that does not exist
    settings = AuthSettings.from_env({"AUTH_MODE": "required", "AUTH_SECRET_PARAMETER": "/nope"})
    # WHEN a token is verified
    # THEN it is refused (fail closed) with a reason an operator can alarm on
    assert refusal(settings, mint_hs256()) == "key_unavailable"


def test_short_secret_is_refused_as_key_unavailable(ssm: Any) -> None:
    # GIVEN a 16-byte secret in SSM (HS256 needs at least 32)
    ssm.put_parameter(Name="/short", Value="0123456789abcdef", Type="SecureString")
    settings = AuthSettings.from_env({"AUTH_MODE": "required", "AUTH_SECRET_PARAMETER": "/short"})
    token = b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + b64url(json.dumps(claims()).encode())
    signature = hmac.new(b"0123456789abcdef", token.encode(), hashlib.sha256).digest()
    # WHEN a token signed with it is verified
    # THEN it is refused: a short secret is a misconfiguration, not a key
    assert refusal(settings, f"{token}.{b64url(signature)}") == "key_unavailable"
