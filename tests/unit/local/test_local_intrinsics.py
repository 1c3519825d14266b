"""Intrinsic functions and parameters resolved to local values."""

from __future__ import annotations

from typing import Any

import pytest

from lambdacast_local.errors import TemplateError, UsageError
from lambdacast_local.intrinsics import Resolver, UnsupportedIntrinsic, fake_id, parse_overrides

TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Stage": {"Type": "String", "Default": "dev"},
        "Size": {"Type": "Number", "Default": 5},
        "Names": {"Type": "CommaDelimitedList", "Default": "a,b,c"},
        "Mode": {"Type": "String", "Default": "prod"},
    },
    "Conditions": {
        "IsProd": {"Fn::Equals": [{"Ref": "Mode"}, "prod"]},
        "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
    },
    "Mappings": {"Sizes": {"prod": {"Memory": 1024}}},
    "Resources": {
        "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"ProtocolType": "WEBSOCKET"}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {}},
        "Named": {
            "Type": "AWS::Lambda::Function",
            "Properties": {"FunctionName": {"Fn::Sub": "${Stage}-named"}},
        },
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
    },
}


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(TEMPLATE)


def test_parameters_resolve_to_defaults_as_strings(resolver):
    # WHEN parameters are referenced
    # THEN their defaults come back as CloudFormation strings (lists for list types)
    assert resolver.resolve({"Ref": "Stage"}) == "dev"
    assert resolver.resolve({"Ref": "Size"}) == "5"
    assert resolver.resolve({"Ref": "Names"}) == ["a", "b", "c"]


def test_overrides_replace_defaults():
    # GIVEN an override
    resolver = Resolver(TEMPLATE, {"Stage": "test"})
    # THEN it wins over the default, also inside Sub
    assert resolver.resolve({"Fn::Sub": "${Stage}-x"}) == "test-x"


def test_unknown_override_is_refused():
    # WHEN an override names no parameter
    # THEN a clear error says so
    with pytest.raises(UsageError, match="Nope"):
        Resolver(TEMPLATE, {"Nope": "1"})


def test_parameter_without_default_needs_an_override():
    # GIVEN a parameter without Default
    template = {"Parameters": {"Secret": {"Type": "String"}}, "Resources": {}}
    # THEN the resolver asks for an override
    with pytest.raises(TemplateError, match="Secret"):
        Resolver(template)


def test_pseudo_parameters_and_execute_api_host_in_sub(resolver):
    # WHEN the management endpoint is built the way templates do
    value = resolver.resolve(
        {"Fn::Sub": "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"}
    )
    # THEN the API's stable fake id and the pseudo parameters fill it
    assert value == f"https://{fake_id('Api')}.execute-api.us-east-1.amazonaws.com/dev"


def test_sub_with_attributes_variables_and_literals(resolver):
    # WHEN Sub uses ${Res.Attr}, a variable map and an escaped ${!Literal}
    value = resolver.resolve({"Fn::Sub": ["${Fn.Arn}|${X}|${!Keep}", {"X": {"Ref": "Size"}}]})
    # THEN each is resolved (the literal kept)
    assert value == "arn:aws:lambda:us-east-1:123456789012:function:Fn|5|${Keep}"


def test_physical_names_follow_name_properties(resolver):
    # THEN FunctionName (itself resolved) names the function, the logical id otherwise
    assert resolver.resolve({"Fn::GetAtt": ["Named", "Arn"]}).endswith(":function:dev-named")
    assert resolver.resolve({"Ref": "Table"}) == "Table"
    assert resolver.resolve({"Fn::GetAtt": "Table.Arn"}).endswith(":table/Table")


def test_join_select_split_and_find_in_map(resolver):
    # THEN the list functions compose
    assert resolver.resolve({"Fn::Join": ["-", [{"Ref": "Stage"}, "x"]]}) == "dev-x"
    assert resolver.resolve({"Fn::Select": [1, {"Ref": "Names"}]}) == "b"
    assert resolver.resolve({"Fn::Split": [",", "p,q"]}) == ["p", "q"]
    assert resolver.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Mode"}, "Memory"]}) == 1024


def test_if_uses_conditions_and_no_value_drops_entries(resolver):
    # WHEN Fn::If picks by condition, and AWS::NoValue appears in a map
    value = resolver.resolve(
        {
            "A": {"Fn::If": ["IsProd", "big", "small"]},
            "B": {"Fn::If": ["NotProd", "x", {"Ref": "AWS::NoValue"}]},
        }
    )
    # THEN the right branch is taken and the NoValue key disappears
    assert value == {"A": "big"}


def test_unsupported_intrinsic_and_attribute_are_named(resolver):
    # THEN what cannot be resolved locally says what it is
    with pytest.raises(UnsupportedIntrinsic, match="Fn::ImportValue"):
        resolver.resolve({"Fn::ImportValue": "x"})
    with pytest.raises(UnsupportedIntrinsic, match=r"Fn\.Nope"):
        resolver.resolve({"Fn::GetAtt": ["Fn", "Nope"]})
    with pytest.raises(UnsupportedIntrinsic, match="Missing"):
        resolver.resolve({"Ref": "Missing"})


def test_parse_overrides_accepts_both_forms():
    # WHEN overrides come as Name=Value and as SAM's ParameterKey/ParameterValue
    parsed = parse_overrides(["A=1", "ParameterKey=B,ParameterValue=x=y", "C="])
    # THEN both parse (values may contain '=' or be empty)
    assert parsed == {"A": "1", "B": "x=y", "C": ""}


def test_parse_overrides_refuses_garbage():
    # THEN an item without '=' is a usage error naming it
    with pytest.raises(UsageError, match="oops"):
        parse_overrides(["oops"])


def test_ssm_typed_parameter_resolves_to_the_local_value():
    # GIVEN a parameter of type AWS::SSM::Parameter::Value<String> naming /app/secret
    template = {
        "Parameters": {"Secret": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/app/secret"}},
        "Resources": {},
    }
    # WHEN the local SSM holds that name
    resolver = Resolver(template, ssm={"/app/secret": "s3cr3t"})
    # THEN Ref gives its value, as CloudFormation would at deploy time
    assert resolver.resolve({"Ref": "Secret"}) == "s3cr3t"


def test_ssm_typed_parameter_without_local_value_says_how_to_give_one():
    template = {
        "Parameters": {"P": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/x"}},
        "Resources": {},
    }
    # THEN the error names the flag to use
    with pytest.raises(TemplateError, match="--ssm /x=VALUE"):
        Resolver(template)


def test_dynamic_references_resolve_from_local_ssm_and_secrets():
    # GIVEN dynamic references in a Sub and a plain string
    resolver = Resolver(
        {"Resources": {}}, ssm={"/p": "from-ssm"}, secrets={"db": '{"password": "pw"}', "plain": "raw"}
    )
    # WHEN they are resolved
    value = resolver.resolve(
        {
            "A": {"Fn::Sub": "x-{{resolve:ssm:/p}}"},
            "B": "{{resolve:secretsmanager:db:SecretString:password}}",
            "C": "{{resolve:secretsmanager:plain}}",
            "D": "{{resolve:ssm-secure:/p:1}}",
        }
    )
    # THEN each takes the local value (JSON keys of secrets included)
    assert value == {"A": "x-from-ssm", "B": "pw", "C": "raw", "D": "from-ssm"}


def test_unknown_secret_reference_names_the_flag():
    # THEN an unknown secret says how to give it locally
    with pytest.raises(TemplateError, match="--secret nope=VALUE"):
        Resolver({"Resources": {}}).resolve("{{resolve:secretsmanager:nope:SecretString:k}}")
