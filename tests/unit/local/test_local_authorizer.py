"""REQUEST authorizer semantics: identity sources and policy evaluation."""

from __future__ import annotations

from typing import Any

from lambdacast_local.authorizer import decide, failed, missing_identity_sources

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


def test_wildcards_anywhere_in_the_resource_allow():
    # GIVEN resources with IAM wildcards in the middle of the ARN (* spans ':' and '/', ? is one character)
    resources = [
        "arn:aws:execute-api:*:*:*",
        "arn:aws:execute-api:us-east-1:123456789012:*/*/$connect",
        "arn:aws:execute-api:us-east-1:123456789012:ab?/dev/$connect",
    ]
    # WHEN each is allowed THEN the handshake is allowed
    for resource in resources:
        assert decide(policy("Allow", resource), ARN, 0).status == 200, resource


def test_wildcards_that_do_not_cover_the_method_do_not_allow():
    # GIVEN wildcard resources naming another route, another stage, or a ? that needs one more character
    resources = [
        "arn:aws:execute-api:*:*:*/*/$disconnect",
        "arn:aws:execute-api:us-east-1:123456789012:abc/prod/*",
        "arn:aws:execute-api:us-east-1:123456789012:abc?/dev/$connect",
    ]
    # WHEN each is allowed THEN nothing covers $connect: 403
    for resource in resources:
        assert decide(policy("Allow", resource), ARN, 0).status == 403, resource


def test_an_allow_for_another_action_does_not_allow():
    # GIVEN an Allow whose Action is not execute-api:Invoke
    answer = policy("Allow")
    answer["policyDocument"]["Statement"][0]["Action"] = "execute-api:ManageConnections"
    # WHEN it is evaluated THEN it does not count: 403
    assert decide(answer, ARN, 0).status == 403


def test_wildcard_actions_cover_invoke():
    # GIVEN Actions written with wildcards (and in a list)
    for action in ["execute-api:*", "*", ["s3:GetObject", "execute-api:Inv*"]]:
        answer = policy("Allow")
        answer["policyDocument"]["Statement"][0]["Action"] = action
        # WHEN evaluated THEN the Allow counts
        assert decide(answer, ARN, 0).status == 200, action


def test_explicit_deny_wins_over_an_allow():
    # GIVEN an Allow on everything and a Deny on this method in the same policy
    answer = policy("Allow", "*")
    answer["policyDocument"]["Statement"].append(
        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "arn:aws:execute-api:*:*:abc/dev/*"}
    )
    # WHEN evaluated THEN the Deny wins: 403
    assert decide(answer, ARN, 0).status == 403


def test_a_missing_or_empty_principal_id_is_a_malformed_answer():
    # GIVEN Allow policies without principalId, or with an empty one
    missing = policy("Allow")
    del missing["principalId"]
    empty = policy("Allow", principalId="")
    # WHEN evaluated THEN API Gateway rejects the answer: 500
    assert decide(missing, ARN, 0).status == 500
    assert decide(empty, ARN, 0).status == 500


def test_an_authorizer_raising_unauthorized_is_401():
    # GIVEN an authorizer that raised Exception("Unauthorized") (API Gateway's convention)
    error = {"errorType": "Exception", "errorMessage": "Unauthorized"}
    # WHEN the failure is mapped THEN the handshake gets 401
    assert failed(error).status == 401


def test_an_authorizer_raising_anything_else_is_500():
    # GIVEN authorizers that raised other errors, or died without an error body
    for error in [{"errorType": "ValueError", "errorMessage": "bad token"}, None]:
        # WHEN the failure is mapped THEN the handshake gets 500
        assert failed(error).status == 500
