"""Property tests: whatever a client puts in ?token=, the authorizer answers with a policy, never raises."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from auth_helpers import SECRET_PARAMETER, TEST_SECRET, event_with_token
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.api_jws import PyJWS
from lambdacast.auth.access import MAX_PATTERNS, MAX_USER_ID_LENGTH
from lambdacast.auth.authorizer import ConnectAuthorizer
from lambdacast.auth.settings import AuthSettings
from moto import mock_aws

# The autouse env/cache fixture is function-scoped but harmless across examples (the cached secret is
# the one this module's SSM holds), so hypothesis' function-scoped-fixture health check is silenced.
SETTINGS = settings(
    max_examples=75, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
CLAIM_VALUES = st.dictionaries(
    st.sampled_from(["sub", "exp", "nbf", "iat", "aud", "iss", "channels", "name", "x"]), JSON, max_size=8
)


@pytest.fixture(scope="module")
def ssm_module() -> Iterator[None]:
    with mock_aws():
        client = boto3.client("ssm", region_name="eu-west-1")
        client.put_parameter(Name=SECRET_PARAMETER, Value=TEST_SECRET, Type="SecureString")
        yield


@pytest.fixture
def subject(ssm_module: None) -> ConnectAuthorizer:
    env = {"AUTH_MODE": "optional", "AUTH_SECRET_PARAMETER": SECRET_PARAMETER}
    return ConnectAuthorizer(AuthSettings.from_env(env))


def check_answer(result: dict[str, Any], event: dict[str, Any]) -> None:
    statement = result["policyDocument"]["Statement"][0]
    assert statement["Resource"] == [event["methodArn"]]
    assert statement["Effect"] in {"Allow", "Deny"}
    if statement["Effect"] == "Allow":
        assert all(isinstance(v, str) for v in result["context"].values())


@SETTINGS
@given(token=st.text(max_size=300))
def test_any_text_token_gets_a_policy(subject: ConnectAuthorizer, token: str) -> None:
    # GIVEN any text as the token
    event = event_with_token(token)
    # WHEN the authorizer answers
    result = subject.authorize(event)
    # THEN it is a policy for this $connect (no exception), and junk is never allowed as a user
    check_answer(result, event)
    assert result["principalId"] == "anonymous"


@SETTINGS
@given(payload=CLAIM_VALUES)
def test_any_correctly_signed_claims_get_a_policy(
    subject: ConnectAuthorizer, payload: dict[str, Any]
) -> None:
    # GIVEN arbitrary claim values, correctly signed with the secret
    signed = PyJWS().encode(json.dumps(payload).encode(), TEST_SECRET, algorithm="HS256")
    event = event_with_token(signed)
    # WHEN the authorizer decides and answers
    decision = subject.decide(event)
    result = subject.authorize(event)
    # THEN it never raises, and an accepted identity always respects the claim limits
    check_answer(result, event)
    if decision.identity.user_id is not None:
        assert decision.allowed
        assert 0 < len(decision.identity.user_id) <= MAX_USER_ID_LENGTH
        assert len(decision.identity.channels) <= MAX_PATTERNS


IDENTITY_CLAIMS = st.fixed_dictionaries(
    {
        "iat": st.builds(lambda: int(time.time())),
        "exp": st.builds(lambda: int(time.time()) + 600),
        "aud": st.just("lambdacast"),
        "sub": st.text(max_size=140) | JSON,
    },
    optional={
        "channels": st.lists(st.text(alphabet="private-*?[]!abc/ \n", max_size=30), max_size=6) | JSON,
        "name": st.text(max_size=140) | JSON,
    },
)


@SETTINGS
@given(payload=IDENTITY_CLAIMS)
def test_signed_unexpired_claims_allow_only_valid_identities(
    subject: ConnectAuthorizer, payload: dict[str, Any]
) -> None:
    # GIVEN an unexpired, correctly signed token with arbitrary sub/channels/name values
    signed = PyJWS().encode(json.dumps(payload).encode(), TEST_SECRET, algorithm="HS256")
    event = event_with_token(signed)
    # WHEN the authorizer answers
    result = subject.authorize(event)
    check_answer(result, event)
    # THEN an Allow carries exactly the token's sub, and a Deny happens only for claims that break the rules
    sub = payload["sub"]
    valid_sub = isinstance(sub, str) and 0 < len(sub) <= MAX_USER_ID_LENGTH and sub.isprintable()
    if result["policyDocument"]["Statement"][0]["Effect"] == "Allow":
        assert valid_sub
        assert result["context"]["userId"] == sub
    else:
        assert not valid_sub or "channels" in payload or "name" in payload
