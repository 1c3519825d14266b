"""REQUEST authorizer semantics: identity sources and policy evaluation."""

from __future__ import annotations

from typing import Any

from lambdacast_local.authorizer import decide, missing_identity_sources

ARN = "arn:aws:execute-api:us-east-1:123456789012:abc/dev/$connect"


def policy(effect: str, resource: Any = ARN, **extra: Any) -> dict[str, Any]:
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}
    return {
        "principalId": "user-1",
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        **extra,
    }


def test_present_identity_sources_are_not_missing():
    # GIVEN a header (any case) and a query parameter
    sources = ["route.request.header.Auth", "route.request.querystring.token"]
    # WHEN both are there
    # THEN nothing is missing
    assert missing_identity_sources(sources, {"auth": "x"}, {"token": "t"}) == []


def test_absent_or_empty_identity_sources_are_missing():
    # WHEN the header is absent and the query parameter empty
    sources = ["route.request.header.Auth", "route.request.querystring.token"]
    # THEN both are reported
    assert missing_identity_sources(sources, {}, {"token": ""}) == sources


def test_allow_gives_context_with_principal_and_values_as_strings():
    # WHEN the policy allows the method and carries a context
    decision = decide(policy("Allow", context={"role": "admin", "n": 2, "ok": True}), ARN, 7)
    # THEN the handshake proceeds with requestContext.authorizer built from it
    assert decision.status == 200
    assert decision.context == {
        "role": "admin",
        "n": "2",
        "ok": "true",
        "principalId": "user-1",
        "integrationLatency": 7,
    }


def test_wildcard_resource_allows():
    # WHEN the resource is a prefix wildcard
    # THEN it matches the method
    assert decide(policy("Allow", "arn:aws:execute-api:us-east-1:123456789012:abc/*"), ARN, 0).status == 200


def test_deny_is_403():
    # WHEN the policy denies
    # THEN 403
    assert decide(policy("Deny"), ARN, 0).status == 403


def test_allow_on_another_resource_is_403():
    # WHEN the Allow is for another API
    # THEN it does not cover $connect here
    assert decide(policy("Allow", "arn:aws:execute-api:us-east-1:1:other/dev/$connect"), ARN, 0).status == 403


def test_malformed_answers_are_500():
    # WHEN the authorizer answers without a policy, or with a nested context value
    # THEN API Gateway fails the handshake with 500
    assert decide({"principalId": "x"}, ARN, 0).status == 500
    assert decide(policy("Allow", context={"nested": {"a": 1}}), ARN, 0).status == 500
