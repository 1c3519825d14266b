"""The $connect REQUEST authorizer: AuthMode behaviour, the IAM policy, the context, the handler."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from auth_helpers import SECRET_PARAMETER, event_with_token, load_event, mint_hs256
from lambdacast.auth import authorizer as authorizer_module
from lambdacast.auth.access import ANONYMOUS, Identity, identity_from_authorizer
from lambdacast.auth.authorizer import AuthDecision, ConnectAuthorizer, default_authorizer, policy_response
from lambdacast.auth.settings import AuthConfigError, AuthSettings

METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123def4/dev/$connect"
APP = Path(__file__).resolve().parents[3] / "functions" / "authorizer" / "app.py"


def authorizer(mode: str) -> ConnectAuthorizer:
    return ConnectAuthorizer(
        AuthSettings.from_env({"AUTH_MODE": mode, "AUTH_SECRET_PARAMETER": SECRET_PARAMETER})
    )


def effect(result: dict[str, Any]) -> str:
    statements = result["policyDocument"]["Statement"]
    assert len(statements) == 1
    return str(statements[0]["Effect"])


@pytest.mark.usefixtures("ssm", "at_event_time")
@pytest.mark.parametrize(
    ("mode", "event_name", "expected_effect", "expected_principal", "reason"),
    [
        ("required", "authorizer-token", "Allow", "user-42", "token_valid"),
        ("required", "authorizer-no-token", "Deny", "anonymous", "missing_token"),
        ("required", "authorizer-bad-token", "Deny", "anonymous", "malformed"),
        ("required", "authorizer-forged-token", "Deny", "anonymous", "bad_signature"),
        ("required", "authorizer-expired-token", "Deny", "anonymous", "expired"),
        ("required", "authorizer-alg-none", "Deny", "anonymous", "algorithm_not_allowed"),
        ("optional", "authorizer-token", "Allow", "user-42", "token_valid"),
        ("optional", "authorizer-no-token", "Allow", "anonymous", "anonymous"),
        ("optional", "authorizer-bad-token", "Deny", "anonymous", "malformed"),
        ("optional", "authorizer-forged-token", "Deny", "anonymous", "bad_signature"),
        ("optional", "authorizer-expired-token", "Deny", "anonymous", "expired"),
        ("optional", "authorizer-alg-none", "Deny", "anonymous", "algorithm_not_allowed"),
        ("none", "authorizer-token", "Allow", "anonymous", "auth_disabled"),
        ("none", "authorizer-no-token", "Allow", "anonymous", "auth_disabled"),
        ("none", "authorizer-forged-token", "Allow", "anonymous", "auth_disabled"),
    ],
)
def test_mode_matrix(
    mode: str, event_name: str, expected_effect: str, expected_principal: str, reason: str
) -> None:
    # GIVEN an authorizer in a mode and a $connect event from events/, at the time it was captured
    event = load_event(event_name)
    subject = authorizer(mode)
    # WHEN it decides and answers
    decision = subject.decide(event)
    result = subject.authorize(event)
    # THEN the policy's effect, principal and the logged reason follow the mode's rules
    assert decision.reason == reason
    assert effect(result) == expected_effect
    assert result["principalId"] == expected_principal


@pytest.mark.usefixtures("ssm")
def test_allow_policy_targets_the_event_method_arn_with_string_context() -> None:
    # GIVEN a valid token in required mode
    event = event_with_token(mint_hs256(sub="user-9", name="Io", channels=["private-x-*"]))
    # WHEN the authorizer answers
    result = authorizer("required").authorize(event)
    # THEN it is an IAM policy allowing execute-api:Invoke on exactly this $connect
    assert result["policyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [event["methodArn"]]}],
    }
    # AND the context carries strings only
    assert result["context"] == {"userId": "user-9", "channels": '["private-x-*"]', "name": "Io"}
    assert all(isinstance(value, str) for value in result["context"].values())


@pytest.mark.usefixtures("ssm")
def test_deny_policy_has_no_context_and_reveals_no_reason() -> None:
    # GIVEN a forged token
    event = load_event("authorizer-forged-token")
    # WHEN the authorizer answers
    result = authorizer("required").authorize(event)
    # THEN it denies this $connect, with nothing but the policy (the reason stays in the log)
    assert set(result) == {"principalId", "policyDocument"}
    assert result["policyDocument"]["Statement"][0]["Resource"] == [event["methodArn"]]
    assert "signature" not in json.dumps(result)


def test_anonymous_allow_context_reads_back_as_anonymous() -> None:
    # GIVEN the answer to an anonymous $connect
    result = policy_response(METHOD_ARN, AuthDecision(True, ANONYMOUS, "anonymous"))
    # WHEN a later handler reads requestContext.authorizer (principalId + context)
    identity = identity_from_authorizer({"principalId": result["principalId"], **result["context"]})
    # THEN the connection is anonymous
    assert identity == ANONYMOUS


@pytest.mark.usefixtures("ssm", "at_event_time")
def test_allowed_identity_reads_back_in_later_events() -> None:
    # GIVEN the answer to an authenticated $connect
    result = authorizer("optional").authorize(load_event("authorizer-token"))
    # WHEN a later handler reads requestContext.authorizer
    identity = identity_from_authorizer({"principalId": result["principalId"], **result["context"]})
    # THEN it sees the token's identity
    assert identity == Identity("user-42", ("private-team-*", "presence-lobby"), "Ada")


def test_largest_result_stays_well_under_the_8_kb_limit() -> None:
    # GIVEN the largest identity the claim limits allow (4 KB of patterns, 128-char id and emoji name)
    patterns = tuple(f"private-{i:02d}-" + "x" * 67 for i in range(50))
    identity = Identity(user_id="u" * 128, channels=patterns, name="\U0001f600" * 128)
    # WHEN the result is built and serialized as Lambda would
    size = len(json.dumps(policy_response(METHOD_ARN, AuthDecision(True, identity, "token_valid"))).encode())
    # THEN it is under 7 KB (API Gateway's limit is 8 KB)
    assert size < 7 * 1024, size


@pytest.mark.usefixtures("ssm")
@pytest.mark.parametrize("mode", ["required", "optional"])
def test_several_different_tokens_are_refused(mode: str) -> None:
    # GIVEN a query string with two different token values
    event = event_with_token(mint_hs256())
    event["multiValueQueryStringParameters"] = {"token": [mint_hs256(sub="a"), mint_hs256(sub="b")]}
    # WHEN the authorizer decides
    # THEN it denies rather than guess which one counts
    assert authorizer(mode).decide(event).reason == "malformed"


@pytest.mark.usefixtures("ssm")
def test_oversized_token_is_refused_without_parsing() -> None:
    # GIVEN a 9,000-character token
    event = event_with_token("x" * 9000)
    # WHEN the authorizer decides
    # THEN it is refused as malformed
    assert authorizer("required").decide(event).reason == "malformed"


@pytest.mark.usefixtures("ssm")
def test_empty_token_counts_as_no_token() -> None:
    # GIVEN ?token= with nothing after it
    event = event_with_token("")
    # WHEN optional and required authorizers decide
    # THEN it is anonymous where allowed, and missing where required
    assert authorizer("optional").decide(event).reason == "anonymous"
    assert authorizer("required").decide(event).reason == "missing_token"


@pytest.mark.usefixtures("ssm")
def test_refusal_reason_is_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a recording logger
    lines: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(authorizer_module.logger, "warning", lambda msg, extra: lines.append((msg, extra)))
    # WHEN an expired token is refused
    authorizer("required").decide(load_event("authorizer-expired-token"))
    # THEN the reason is logged
    assert [(msg, extra["reason"]) for msg, extra in lines] == [("token refused", "expired")]


@pytest.mark.usefixtures("ssm")
def test_mode_none_never_loads_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN mode none, and a verifier that would fail the test if used
    class Exploding:
        def verify(self, token: str) -> Identity:
            raise AssertionError("tokens must be ignored when AUTH_MODE=none")

    subject = ConnectAuthorizer(AuthSettings.from_env({"AUTH_MODE": "none"}), verifier=Exploding())
    # WHEN a $connect with a token arrives
    # THEN it is allowed as anonymous without touching the token
    assert subject.decide(load_event("authorizer-token")) == AuthDecision(True, ANONYMOUS, "auth_disabled")


@dataclass
class FakeLambdaContext:
    function_name: str = "authorizer"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:authorizer"
    aws_request_id: str = "8d3f0f2c-0000-4000-8000-000000000000"


def load_handler_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lambdacast_test_authorizer_app", APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def handler_env(monkeypatch: pytest.MonkeyPatch, ssm: Any) -> Any:
    monkeypatch.setenv("AUTH_MODE", "required")
    monkeypatch.setenv("AUTH_SECRET_PARAMETER", SECRET_PARAMETER)
    default_authorizer.cache_clear()
    yield
    default_authorizer.cache_clear()


@pytest.mark.usefixtures("handler_env", "at_event_time")
@pytest.mark.parametrize(
    ("event_name", "expected_effect"),
    [("authorizer-token", "Allow"), ("authorizer-no-token", "Deny")],
)
def test_lambda_handler_answers_from_the_environment(event_name: str, expected_effect: str) -> None:
    # GIVEN the deployed handler with AUTH_MODE=required and the secret in SSM
    app = load_handler_module()
    # WHEN API Gateway invokes it with a $connect event
    result = app.handler(load_event(event_name), FakeLambdaContext())
    # THEN it answers with the policy
    assert effect(result) == expected_effect


def test_lambda_handler_fails_closed_when_misconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the deployed handler with AUTH_MODE=required but no key source
    monkeypatch.setenv("AUTH_MODE", "required")
    monkeypatch.delenv("AUTH_SECRET_PARAMETER", raising=False)
    monkeypatch.delenv("AUTH_JWKS_URL", raising=False)
    default_authorizer.cache_clear()
    app = load_handler_module()
    # WHEN API Gateway invokes it
    # THEN it raises a clear configuration error (API Gateway refuses the handshake; nothing is allowed)
    with pytest.raises(AuthConfigError, match="exactly one key source"):
        app.handler(load_event("authorizer-token"), FakeLambdaContext())
    default_authorizer.cache_clear()
