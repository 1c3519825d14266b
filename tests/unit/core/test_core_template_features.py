"""template.yaml's auth and presence wiring: authorizer, AuthMode, the SSM secret, limits, the publish API.

Checked on the template as written and on the SAM translator's output (what CloudFormation gets).
"""

from __future__ import annotations

from typing import Any

import pytest
from core_support import ROOT
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from lambdacast_local.template import load_yaml


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(ROOT / "template.yaml")
    return loaded


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    """The CloudFormation the SAM translator produces (code URIs stubbed: nothing is uploaded)."""
    document = yaml_parse((ROOT / "template.yaml").read_text())
    for resource in document["Resources"].values():
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = "s3://bucket/key"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        out: dict[str, Any] = transform(document, {}, _NoManagedPolicies())
    return out


def of_type(translated: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in translated["Resources"].items() if v["Type"] == kind}


def test_auth_mode_is_a_parameter_defaulting_to_none(template: dict[str, Any]) -> None:
    # GIVEN the template WHEN its AuthMode parameter is read THEN none|optional|required, default none
    param = template["Parameters"]["AuthMode"]
    assert (param["AllowedValues"], param["Default"]) == (["none", "optional", "required"], "none")


def test_the_authorizer_guards_connect_only(translated: dict[str, Any]) -> None:
    # GIVEN the translated routes WHEN their authorization is read THEN only $connect is CUSTOM
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in of_type(translated, "AWS::ApiGatewayV2::Route").values()
    }
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    assert all("AuthorizationType" not in props for key, props in routes.items() if key != "$connect")


def test_the_identity_source_is_set_only_in_required_mode(
    translated: dict[str, Any], template: dict[str, Any]
) -> None:
    # GIVEN the REQUEST authorizer WHEN its identity source is read
    (authorizer,) = of_type(translated, "AWS::ApiGatewayV2::Authorizer").values()
    props = authorizer["Properties"]
    # THEN it is the token query parameter under AuthRequired, and absent otherwise
    assert props["AuthorizerType"] == "REQUEST"
    assert props["IdentitySource"] == {
        "Fn::If": ["AuthRequired", ["route.request.querystring.token"], {"Ref": "AWS::NoValue"}]
    }
    assert template["Conditions"]["AuthRequired"] == {"Fn::Equals": [{"Ref": "AuthMode"}, "required"]}


def test_the_authorizer_permission_carries_a_source_arn(translated: dict[str, Any]) -> None:
    # GIVEN the Lambda permissions WHEN the authorizer's is found THEN it is scoped to this API's authorizers
    permissions = of_type(translated, "AWS::Lambda::Permission")
    auth = [
        p
        for p in permissions.values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    ]
    assert len(auth) == 1
    assert "/authorizers/*" in str(auth[0]["Properties"]["SourceArn"])
    assert all("SourceArn" in p["Properties"] for p in permissions.values())


def test_the_secret_is_read_by_name_from_ssm_with_least_privilege(template: dict[str, Any]) -> None:
    # GIVEN the authorizer function
    function = template["Resources"]["AuthorizerFunction"]["Properties"]
    # THEN its environment names the parameter (never a value) and its only policy is conditional
    assert function["Environment"]["Variables"]["AUTH_SECRET_PARAMETER"] == {"Ref": "AuthSecretParameterName"}
    (policy,) = function["Policies"]
    condition, statements, otherwise = policy["Fn::If"]
    assert (condition, otherwise) == ("HasAuthSecret", {"Ref": "AWS::NoValue"})
    read, decrypt = statements["Statement"]
    # AND ssm:GetParameter is on that one parameter
    assert read["Action"] == "ssm:GetParameter"
    assert read["Resource"]["Fn::Sub"].endswith(":parameter${AuthSecretParameterName}")
    # AND kms:Decrypt only through SSM, only for that parameter's encryption context
    assert decrypt["Action"] == "kms:Decrypt"
    conditions = decrypt["Condition"]["StringEquals"]
    assert conditions["kms:ViaService"] == {"Fn::Sub": "ssm.${AWS::Region}.${AWS::URLSuffix}"}
    assert conditions["kms:EncryptionContext:PARAMETER_ARN"] == read["Resource"]


def test_no_secret_value_has_a_default(template: dict[str, Any]) -> None:
    # GIVEN the parameters WHEN any is about the secret THEN it is a name (a path pattern), empty by default
    param = template["Parameters"]["AuthSecretParameterName"]
    assert param["Default"] == ""
    assert param["AllowedPattern"].startswith("^$|^(/")


def test_a_mode_with_auth_needs_a_key_source(template: dict[str, Any]) -> None:
    # GIVEN the template's rules WHEN read THEN optional/required without a key source fails the deploy
    rule = template["Rules"]["AuthNeedsAKeySource"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AuthMode"}, "none"]}]}


@pytest.mark.parametrize(
    ("variable", "parameter", "default"),
    [
        ("PRESENCE_MAX_MEMBERS", "PresenceMaxMembers", 100),
        ("HISTORY_TTL_SECONDS", "HistoryTtlSeconds", 86400),
        ("PUBLISH_RATE_PER_SECOND", "PublishRatePerSecond", 10),
        ("PUBLISH_BURST", "PublishBurst", 20),
    ],
)
def test_limits_are_parameters_passed_as_env(
    template: dict[str, Any], variable: str, parameter: str, default: int
) -> None:
    # GIVEN the Globals environment WHEN a limit is looked up THEN it comes from its parameter (default)
    assert template["Globals"]["Function"]["Environment"]["Variables"][variable] == {"Ref": parameter}
    assert template["Parameters"][parameter]["Default"] == default


def test_the_publish_api_is_iam_only(translated: dict[str, Any]) -> None:
    # GIVEN the translated HTTP API WHEN its route's security is read THEN only SigV4 (AWS_IAM)
    body = translated["Resources"]["PublishApi"]["Properties"]["Body"]
    operation = body["paths"]["/channels/{channel}/messages"]["post"]
    assert operation["security"] == [{"AWS_IAM": []}]
    assert operation["x-amazon-apigateway-integration"]["payloadFormatVersion"] == "2.0"
    assert "PublishFunction" in str(operation["x-amazon-apigateway-integration"]["uri"])


def test_the_publish_function_may_post_to_this_stage_only(template: dict[str, Any]) -> None:
    # GIVEN the publish function's policies WHEN ManageConnections is read THEN POST on this stage only
    policies = template["Resources"]["PublishFunction"]["Properties"]["Policies"]
    statements = [s for p in policies if "Statement" in p for s in p["Statement"]]
    (statement,) = [s for s in statements if "execute-api:ManageConnections" in str(s["Action"])]
    assert statement["Action"] == "execute-api:ManageConnections"
    assert [r["Fn::Sub"] for r in statement["Resource"]] == [
        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/POST/@connections/*"
    ]


def test_the_publish_url_is_an_output(template: dict[str, Any]) -> None:
    # GIVEN the outputs WHEN PublishURL is read THEN it is the HTTP API's execute-api URL
    value = template["Outputs"]["PublishURL"]["Value"]["Fn::Sub"]
    assert value == "https://${PublishApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
