"""template.yaml as deployed: what the SAM transform makes of it, checked against the issue's rules.

The template goes through the real SAM translator (offline), so these tests see the IAM roles,
permissions and stage that CloudFormation would create, not just the source YAML.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdacast_local.template import load_yaml, transform

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return load_yaml(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def cfn(source: dict[str, Any]) -> dict[str, Any]:
    document, _ = transform(source, ROOT)
    return document


def _of_type(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in cfn["Resources"].items() if r["Type"] == kind}


def _statements(cfn: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for role in _of_type(cfn, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            # A conditional policy ({"Fn::If": [condition, policy, AWS::NoValue]}): check every branch.
            branches = policy["Fn::If"][1:] if "Fn::If" in policy else [policy]
            for branch in branches:
                if "PolicyDocument" in branch:
                    found.extend(branch["PolicyDocument"]["Statement"])
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _resources(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def test_every_function_runs_python313_on_arm64_with_tracing_and_explicit_limits(cfn: dict[str, Any]) -> None:
    # GIVEN the transformed template
    functions = _of_type(cfn, "AWS::Lambda::Function")
    # THEN there are functions, and each has the runtime, architecture, tracing and sizing the issue names
    assert functions
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.13", name
        assert props["Architectures"] == ["arm64"], name
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert isinstance(props.get("Timeout"), int), name
        assert isinstance(props.get("MemorySize"), int), name
        assert props.get("Layers"), f"{name} does not use the lambdacast layer"


def test_the_layer_is_built_for_python313_arm64(source: dict[str, Any]) -> None:
    # GIVEN the layer resource in the source template
    layers = [r for r in source["Resources"].values() if r["Type"] == "AWS::Serverless::LayerVersion"]
    # THEN it is built by SAM with BuildMethod python3.13 for arm64
    assert len(layers) == 1
    assert layers[0]["Metadata"]["BuildMethod"] == "python3.13"
    assert layers[0]["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_the_table_is_on_demand_with_ttl_pitr_and_sse(cfn: dict[str, Any]) -> None:
    # GIVEN the one DynamoDB table
    tables = _of_type(cfn, "AWS::DynamoDB::Table")
    assert len(tables) == 1
    props = next(iter(tables.values()))["Properties"]
    # THEN it is PAY_PER_REQUEST, with TTL, point-in-time recovery and SSE on
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"]["Enabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_manage_connections_is_granted_on_this_apis_stage_only(cfn: dict[str, Any]) -> None:
    # GIVEN every IAM statement that grants execute-api:ManageConnections
    grants = [s for s in _statements(cfn) if "execute-api:ManageConnections" in _actions(s)]
    assert grants, "no function may post to connections"
    for statement in grants:
        for resource in _resources(statement):
            # THEN each resource is this API's own stage, with an explicit verb, never '*'
            text = json.dumps(resource)
            assert resource != "*"
            assert "${WebSocketApi}/${StageName}/" in text, text
            # AND only POST, except AdminFunction's DELETE: no function reads (GET) a connection,
            # and only the IAM-authorized admin API closes one
            assert "/POST/@connections/*" in text or "/DELETE/@connections/*" in text, text
    closers = {
        name
        for name in _of_type(cfn, "AWS::Lambda::Function")
        if f"{name}Role" in cfn["Resources"]
        and any("/DELETE/@connections/*" in json.dumps(s) for s in _role_statements(cfn, name))
    }
    assert closers == {"AdminFunction"}


def test_no_statement_grants_a_wildcard_resource_for_dynamodb(cfn: dict[str, Any]) -> None:
    # GIVEN every IAM statement with a dynamodb action
    grants = [s for s in _statements(cfn) if any(a.startswith("dynamodb:") for a in _actions(s))]
    assert grants
    for statement in grants:
        for resource in _resources(statement):
            # THEN it names this stack's table (by reference), never '*'
            assert resource != "*"
            assert "Table" in json.dumps(resource), resource


def test_every_lambda_permission_carries_a_source_arn(cfn: dict[str, Any]) -> None:
    # GIVEN the Lambda permissions the transform generated for the API's routes
    permissions = _of_type(cfn, "AWS::Lambda::Permission")
    assert permissions
    # THEN each one is scoped to a SourceArn
    for name, permission in permissions.items():
        assert permission["Properties"].get("SourceArn"), name


def test_the_stage_auto_deploys_and_is_throttled_by_parameters(cfn: dict[str, Any]) -> None:
    # GIVEN the WebSocket API's stage
    stages = _of_type(cfn, "AWS::ApiGatewayV2::Stage")
    ws_stages = [s for s in stages.values() if s["Properties"]["ApiId"] == {"Ref": "WebSocketApi"}]
    assert len(ws_stages) == 1
    props = ws_stages[0]["Properties"]
    # THEN new routes reach it on deploy, and its throttling comes from template parameters
    assert props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ThrottlingRateLimit"}
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] == {"Ref": "ThrottlingBurstLimit"}


def test_the_routes_select_on_the_action_field(cfn: dict[str, Any]) -> None:
    # GIVEN the WebSocket API and its routes
    apis = _of_type(cfn, "AWS::ApiGatewayV2::Api").values()
    apis = [a for a in apis if a["Properties"].get("ProtocolType") == "WEBSOCKET"]
    routes = {r["Properties"]["RouteKey"] for r in _of_type(cfn, "AWS::ApiGatewayV2::Route").values()}
    # THEN routing is on $request.body.action and the three built-in routes exist
    assert apis[0]["Properties"]["RouteSelectionExpression"] == "$request.body.action"
    assert {"$connect", "$disconnect", "$default"} <= routes


def test_default_replies_are_the_routes_response(cfn: dict[str, Any]) -> None:
    # GIVEN the $default route and the route responses of the WebSocket API
    (default,) = [
        (name, r)
        for name, r in _of_type(cfn, "AWS::ApiGatewayV2::Route").items()
        if r["Properties"]["RouteKey"] == "$default"
    ]
    responses = _of_type(cfn, "AWS::ApiGatewayV2::RouteResponse").values()
    # THEN the route is two-way: it selects the $default route response, which exists for it, so API
    # Gateway sends the handler's body to the caller (no @connections call per reply); AutoDeploy
    # (tested above) puts it on the stage
    assert default[1]["Properties"]["RouteResponseSelectionExpression"] == "$default"
    assert [
        r["Properties"]["RouteResponseKey"]
        for r in responses
        if r["Properties"]["RouteId"] == {"Ref": default[0]}
    ] == ["$default"]


def test_connection_items_outlive_api_gateways_two_hour_connections(source: dict[str, Any]) -> None:
    # GIVEN the connection TTL parameter THEN it cannot be set under 2 hours: API Gateway keeps a
    # connection open that long, and an earlier TTL would delete the rows of a live connection
    # (it would stop receiving, silently); the functions refuse such a value too (config.py)
    assert source["Parameters"]["ConnectionTtlSeconds"]["MinValue"] >= 7200
    assert source["Parameters"]["ConnectionTtlSeconds"]["Default"] >= 7200


@pytest.mark.parametrize(
    ("parameter", "variable"),
    [
        ("MaxDataBytes", "MAX_DATA_BYTES"),
        ("MaxChannelsPerConnection", "MAX_CHANNELS_PER_CONNECTION"),
        ("FanoutConcurrency", "FANOUT_CONCURRENCY"),
        ("UserPublishRatePerSecond", "USER_PUBLISH_RATE_PER_SECOND"),
        ("UserPublishBurst", "USER_PUBLISH_BURST"),
        ("PostedBytesPerSecond", "POSTED_BYTES_PER_SECOND"),
        ("SharedRateLimits", "SHARED_RATE_LIMITS"),
        ("SenderIdentity", "SENDER_IDENTITY"),
        ("HistoryTtlSeconds", "HISTORY_TTL_SECONDS"),
        ("ConnectionTtlSeconds", "CONNECTION_TTL_SECONDS"),
    ],
)
def test_limits_reach_the_functions_as_environment_variables(
    source: dict[str, Any], parameter: str, variable: str
) -> None:
    # GIVEN a limit declared as a template parameter
    assert parameter in source["Parameters"]
    # THEN the functions receive it as an environment variable
    variables = source["Globals"]["Function"]["Environment"]["Variables"]
    assert variables[variable] == {"Ref": parameter}


def test_the_outputs_give_the_urls_and_the_table(source: dict[str, Any]) -> None:
    # THEN the stack outputs what a site and an operator need
    assert {"WebSocketURL", "ManagementEndpoint", "TableName"} <= set(source["Outputs"])


def _role_statements(cfn: dict[str, Any], function: str) -> list[dict[str, Any]]:
    role = cfn["Resources"][f"{function}Role"]
    found: list[dict[str, Any]] = []
    for policy in role["Properties"].get("Policies", []):
        branches = policy["Fn::If"][1:] if "Fn::If" in policy else [policy]
        for branch in branches:
            if "PolicyDocument" in branch:
                found.extend(branch["PolicyDocument"]["Statement"])
    return found


#: The DynamoDB calls each function's code makes (lambdacast.channels/presence/history/queue_worker;
#: transactions are authorized per Put/Update/Delete/ConditionCheck item, batch deletes as
#: BatchWriteItem).
DYNAMODB_ACTIONS = {
    "ConnectFunction": {"PutItem", "ConditionCheckItem"},
    "DisconnectFunction": {"GetItem", "Query", "BatchWriteItem", "UpdateItem", "DeleteItem"},
    "DefaultFunction": {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "BatchWriteItem",
        "ConditionCheckItem",
    },
    "PublishFunction": {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "BatchWriteItem"},
    "FanoutFunction": {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "BatchWriteItem"},
    "AdminFunction": {"Query", "PutItem"},
}


@pytest.mark.parametrize("function", sorted(DYNAMODB_ACTIONS))
def test_each_function_gets_only_the_dynamodb_actions_it_calls(cfn: dict[str, Any], function: str) -> None:
    # GIVEN the function's role WHEN its dynamodb actions are collected
    granted = {
        action.removeprefix("dynamodb:")
        for statement in _role_statements(cfn, function)
        for action in _actions(statement)
        if action.startswith("dynamodb:")
    }
    # THEN they are exactly the calls its code makes
    assert granted == DYNAMODB_ACTIONS[function]


def test_no_role_may_scan_or_use_indexes_or_wildcards_on_dynamodb(cfn: dict[str, Any]) -> None:
    # GIVEN every IAM statement with a dynamodb action
    grants = [s for s in _statements(cfn) if any(a.startswith("dynamodb:") for a in _actions(s))]
    assert grants
    for statement in grants:
        # THEN none grants Scan (requests never scan) or a wildcard action
        assert not [a for a in _actions(statement) if a == "dynamodb:Scan" or "*" in a], statement
        # AND none reaches an index (the table has none)
        assert "index" not in json.dumps(_resources(statement)), statement


def _evaluate(node: Any, parameters: dict[str, str]) -> Any:
    """A CloudFormation rule condition or assertion evaluated against parameter values."""
    if isinstance(node, dict) and len(node) == 1:
        ((name, argument),) = node.items()
        if name == "Ref":
            return parameters[argument]
        values = [_evaluate(a, parameters) for a in argument]
        if name == "Fn::Equals":
            return values[0] == values[1]
        if name == "Fn::Not":
            return not values[0]
        if name == "Fn::Or":
            return any(values)
        if name == "Fn::And":
            return all(values)
        raise AssertionError(f"rule function {name} not understood by this test")
    return node


def _rule_failures(source: dict[str, Any], **overrides: str) -> list[str]:
    """The AssertDescriptions CloudFormation would fail a deploy with, for these parameter values."""
    parameters = {name: str(p.get("Default", "")) for name, p in source["Parameters"].items()}
    parameters.update(overrides)
    failures = []
    for rule in source["Rules"].values():
        if "RuleCondition" in rule and not _evaluate(rule["RuleCondition"], parameters):
            continue
        failures += [
            a["AssertDescription"] for a in rule["Assertions"] if not _evaluate(a["Assert"], parameters)
        ]
    return failures


SECRET = {"AuthMode": "required", "AuthSecretParameterName": "/lambdacast/prod/auth-secret"}
JWKS = {
    "AuthMode": "required",
    "AuthJwksUrl": "https://issuer.example.com/.well-known/jwks.json",
    "AuthIssuer": "https://issuer.example.com",
    "AuthAudience": "chat",
}


def test_the_rules_accept_the_defaults_a_secret_or_a_complete_jwks(source: dict[str, Any]) -> None:
    # GIVEN the template's rules WHEN the defaults, a secret, or a JWKS with issuer and audience are set
    # THEN no assertion fails
    assert _rule_failures(source) == []
    assert _rule_failures(source, **SECRET) == []
    assert _rule_failures(source, **JWKS) == []


def test_the_rules_refuse_both_a_secret_and_a_jwks(source: dict[str, Any]) -> None:
    # GIVEN both key sources WHEN the rules are evaluated THEN the deploy fails saying "not both"
    failures = _rule_failures(source, **JWKS, AuthSecretParameterName="/lambdacast/prod/auth-secret")
    assert len(failures) == 1
    assert "not both" in failures[0]


def test_the_rules_refuse_a_jwks_without_an_issuer(source: dict[str, Any]) -> None:
    # GIVEN a JWKS URL without an issuer WHEN the rules are evaluated THEN the deploy fails naming it
    failures = _rule_failures(source, **{**JWKS, "AuthIssuer": ""})
    assert len(failures) == 1
    assert "AuthIssuer" in failures[0]


# -- Abuse and cost bounds (docs/security.md) -----------------------------------------------------

FUNCTIONS = {
    "AuthorizerFunction": "AuthorizerReservedConcurrency",
    "ConnectFunction": "ConnectReservedConcurrency",
    "DisconnectFunction": "DisconnectReservedConcurrency",
    "DefaultFunction": "DefaultReservedConcurrency",
    "PublishFunction": "PublishReservedConcurrency",
    "FanoutFunction": "FanoutReservedConcurrency",
    "AdminFunction": "AdminReservedConcurrency",
}


def _parameters(source: dict[str, Any], **overrides: str) -> dict[str, str]:
    values = {name: str(p.get("Default", "")) for name, p in source["Parameters"].items()}
    values.update(overrides)
    return values


def _resolve(node: Any, cfn: dict[str, Any], parameters: dict[str, str]) -> Any:
    """A property value with ``Fn::If`` (the template's conditions) and ``Ref`` resolved; None: NoValue."""
    if isinstance(node, dict) and list(node) == ["Fn::If"]:
        condition, when_true, when_false = node["Fn::If"]
        chosen = when_true if _evaluate(cfn["Conditions"][condition], parameters) else when_false
        return _resolve(chosen, cfn, parameters)
    if node == {"Ref": "AWS::NoValue"}:
        return None
    if isinstance(node, dict) and list(node) == ["Ref"] and node["Ref"] in parameters:
        return parameters[node["Ref"]]
    return node


def test_the_audience_is_lambdacast_by_default_and_cannot_be_emptied(source: dict[str, Any]) -> None:
    # GIVEN the AuthAudience parameter
    audience = source["Parameters"]["AuthAudience"]
    # THEN it defaults to lambdacast and an empty value is refused before anything is deployed
    assert (audience["Default"], audience["MinLength"]) == ("lambdacast", 1)


@pytest.mark.parametrize(
    ("parameter", "variable"),
    [
        ("AuthAudience", "AUTH_AUDIENCE"),
        ("MaxTokenLifetimeSeconds", "AUTH_MAX_TOKEN_LIFETIME_SECONDS"),
        ("AllowedOrigins", "AUTH_ALLOWED_ORIGINS"),
    ],
)
def test_token_and_origin_settings_reach_the_authorizer(
    cfn: dict[str, Any], parameter: str, variable: str
) -> None:
    # GIVEN the deployed authorizer function
    variables = cfn["Resources"]["AuthorizerFunction"]["Properties"]["Environment"]["Variables"]
    # THEN it reads the parameter
    assert variables[variable] == {"Ref": parameter}


def test_token_lifetime_defaults_to_a_day(source: dict[str, Any]) -> None:
    # GIVEN the MaxTokenLifetimeSeconds parameter THEN it defaults to 24 h and stays within a week
    parameter = source["Parameters"]["MaxTokenLifetimeSeconds"]
    assert (parameter["Default"], parameter["MaxValue"]) == (86400, 604800)


def test_allowed_origins_accepts_exact_origins_only(source: dict[str, Any]) -> None:
    # GIVEN the AllowedOrigins parameter's pattern
    import re

    pattern = source["Parameters"]["AllowedOrigins"]["AllowedPattern"]
    # THEN empty (any origin) and lists of origins pass; paths and wildcards are refused at deploy time
    assert source["Parameters"]["AllowedOrigins"]["Default"] == ""
    for ok in ["", "https://example.com", "https://a.example, http://localhost:8000"]:
        assert re.fullmatch(pattern, ok), ok
    for bad in ["*", "https://example.com/app", "example.com", "https://a.example,"]:
        assert not re.fullmatch(pattern, bad), bad


@pytest.mark.parametrize(("function", "parameter"), sorted(FUNCTIONS.items()))
def test_reserved_concurrency_is_a_parameter_off_by_default(
    source: dict[str, Any], cfn: dict[str, Any], function: str, parameter: str
) -> None:
    # GIVEN the function's ReservedConcurrentExecutions in the translator's output
    value = cfn["Resources"][function]["Properties"]["ReservedConcurrentExecutions"]
    # WHEN the parameters are left at their defaults THEN nothing is reserved (the property is absent)
    assert source["Parameters"][parameter]["Default"] == "unreserved"
    assert _resolve(value, cfn, _parameters(source)) is None
    # AND WHEN the operator sets a number THEN that many executions are reserved
    assert _resolve(value, cfn, _parameters(source, **{parameter: "25"})) == "25"


def test_reserved_concurrency_parameters_refuse_anything_but_a_number_or_unreserved(
    source: dict[str, Any],
) -> None:
    # GIVEN each reserved-concurrency parameter's pattern
    import re

    for parameter in FUNCTIONS.values():
        pattern = source["Parameters"][parameter]["AllowedPattern"]
        # THEN "unreserved" and counts pass (0 is the documented kill switch), anything else fails the deploy
        for ok in ["unreserved", "0", "100"]:
            assert re.fullmatch(pattern, ok), (parameter, ok)
        for bad in ["-1", "lots", ""]:
            assert not re.fullmatch(pattern, bad), (parameter, bad)


def test_the_sqs_event_source_caps_its_concurrency(cfn: dict[str, Any]) -> None:
    # GIVEN the event source mappings of the translated template
    mappings = _of_type(cfn, "AWS::Lambda::EventSourceMapping")
    # THEN the one on FanoutQueue caps concurrent FanoutFunction invocations by a parameter
    assert len(mappings) == 1
    props = next(iter(mappings.values()))["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["FanoutQueue", "Arn"]}
    assert props["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "FanoutMaxConcurrency"}}


def test_no_role_may_receive_or_delete_on_any_queue_but_the_fanout_queue(cfn: dict[str, Any]) -> None:
    # GIVEN every role of the translated template
    roles = _of_type(cfn, "AWS::IAM::Role")
    # THEN no role carries SAM's AWSLambdaSQSQueueExecutionRole (receive/delete on "*")
    for name, role in roles.items():
        managed = json.dumps(role["Properties"].get("ManagedPolicyArns", []))
        assert "AWSLambdaSQSQueueExecutionRole" not in managed, name
    # AND every statement granting sqs:ReceiveMessage/DeleteMessage names FanoutQueue only
    polling = [
        s
        for s in _statements(cfn)
        if {"sqs:ReceiveMessage", "sqs:DeleteMessage"} & set(_actions(s)) or "sqs:*" in _actions(s)
    ]
    assert polling, "FanoutFunction must be able to poll its queue"
    for statement in polling:
        assert _resources(statement) == [{"Fn::GetAtt": ["FanoutQueue", "Arn"]}], statement
    assert [s["Sid"] for s in polling] == ["PollTheFanoutQueueOnly"]
    assert polling[0] in _role_statements(cfn, "FanoutFunction")


def _stage(cfn: dict[str, Any], api: str) -> dict[str, Any]:
    stages = [
        s
        for s in _of_type(cfn, "AWS::ApiGatewayV2::Stage").values()
        if s["Properties"]["ApiId"] == {"Ref": api}
    ]
    assert len(stages) == 1
    return dict(stages[0]["Properties"])


@pytest.mark.parametrize(
    ("api", "log_group", "fields"),
    [
        (
            "WebSocketApi",
            "WebSocketAccessLogs",
            {"connectionId", "routeKey", "status", "integrationLatency", "requestId", "ip", "eventType"},
        ),
        (
            "PublishApi",
            "PublishApiAccessLogs",
            {"routeKey", "status", "integrationLatency", "requestId", "ip"},
        ),
    ],
)
def test_both_stages_write_json_access_logs_to_a_group_with_retention(
    cfn: dict[str, Any], api: str, log_group: str, fields: set[str]
) -> None:
    # GIVEN the stage of each API in the translated template
    settings = _stage(cfn, api)["AccessLogSettings"]
    # THEN it logs to its own log group, which has a retention set by a parameter
    assert settings["DestinationArn"] == {"Fn::GetAtt": [log_group, "Arn"]}
    group = cfn["Resources"][log_group]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "AccessLogRetentionDays"}
    # AND each line is a JSON object with the fields an abuse investigation needs
    line = json.loads(settings["Format"])
    assert fields <= set(line)
    assert line["ip"] == "$context.identity.sourceIp"
    assert all(value.startswith("$context.") for value in line.values())


def test_the_websocket_stage_logs_once_the_account_role_exists(
    source: dict[str, Any], cfn: dict[str, Any]
) -> None:
    # GIVEN the account-wide CloudWatch role API Gateway needs to write WebSocket logs
    account = cfn["Resources"]["ApiGatewayAccount"]
    role = cfn["Resources"]["ApiGatewayCloudWatchRole"]
    # THEN the stack creates it by default (ApiGatewayLoggingRole=create) and keeps both on deletion
    assert source["Parameters"]["ApiGatewayLoggingRole"]["Default"] == "create"
    assert account["Condition"] == role["Condition"] == "CreateApiGatewayLoggingRole"
    assert account["DeletionPolicy"] == role["DeletionPolicy"] == "Retain"
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}
    assert "AmazonAPIGatewayPushToCloudWatchLogs" in json.dumps(role["Properties"]["ManagedPolicyArns"])
    # AND the WebSocket log group references it, so the stage is created after the account setting
    tags = cfn["Resources"]["WebSocketAccessLogs"]["Properties"]["Tags"]
    assert _resolve(tags[0]["Value"], cfn, _parameters(source)) == {"Ref": "ApiGatewayAccount"}
    assert (
        _resolve(tags[0]["Value"], cfn, _parameters(source, ApiGatewayLoggingRole="existing")) == "existing"
    )


def test_the_table_is_retained_and_protected_in_prod(source: dict[str, Any], cfn: dict[str, Any]) -> None:
    # GIVEN the table in the translated template
    (table,) = _of_type(cfn, "AWS::DynamoDB::Table").values()
    # THEN deleting the stack or replacing the table keeps the data
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    # AND deletion protection is off by default, on when TableDeletionProtection=true
    protection = table["Properties"]["DeletionProtectionEnabled"]
    assert _resolve(protection, cfn, _parameters(source)) is False
    assert _resolve(protection, cfn, _parameters(source, TableDeletionProtection="true")) is True


def test_the_prod_environment_turns_table_deletion_protection_on() -> None:
    # GIVEN samconfig.toml
    import shlex
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    overrides = dict(
        item.split("=", 1)
        for item in shlex.split(config["prod"]["deploy"]["parameters"]["parameter_overrides"])
    )
    # THEN its prod environment deploys with the table protected
    assert overrides["TableDeletionProtection"] == "true"
