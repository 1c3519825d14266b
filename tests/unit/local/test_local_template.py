"""Templates: YAML short tags, the SAM transform, and the app model built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdacast_local.app_loading import load_app
from lambdacast_local.errors import TemplateError
from lambdacast_local.template import load_yaml

ROOT = Path(__file__).resolve().parents[3]
APPS = ROOT / "tests" / "functional" / "apps"


def test_short_tags_become_long_form(tmp_path):
    # GIVEN a template using !Ref, !GetAtt, !Sub and !Join
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n  X:\n    Type: T\n    Properties:\n"
        "      A: !Ref P\n      B: !GetAtt Fn.Arn\n      C: !Sub '${P}'\n      D: !Join ['', [a, !Ref P]]\n"
    )
    # WHEN it is loaded
    props = load_yaml(path)["Resources"]["X"]["Properties"]
    # THEN each short tag is the long form CloudFormation uses
    assert props == {
        "A": {"Ref": "P"},
        "B": {"Fn::GetAtt": ["Fn", "Arn"]},
        "C": {"Fn::Sub": "${P}"},
        "D": {"Fn::Join": ["", ["a", {"Ref": "P"}]]},
    }


def test_the_projects_template_loads():
    # WHEN the project's own template (WebSocketApi + LayerVersion) is read
    app = load_app(ROOT / "template.yaml")
    # THEN its routes, functions, layer and table are understood
    assert set(app.api.routes) == {"$connect", "$disconnect", "$default"}
    assert app.api.stage == "dev"
    assert app.api.route_selection_expression == "$request.body.action"
    connect = app.functions[app.api.routes["$connect"].function or ""]
    assert connect.code_dir == ROOT / "functions" / "connect"
    assert connect.layer_dirs == (ROOT / "shared",)
    assert connect.timeout_s == 10
    assert connect.environment["MANAGEMENT_ENDPOINT"].endswith(
        f"{app.api.api_id}.execute-api.us-east-1.amazonaws.com/dev"
    )
    assert [table.create_args["TableName"] for table in app.tables] == ["Table"]


def test_raw_apigatewayv2_template_gives_authorizer_and_route_responses():
    # WHEN the raw ApiGatewayV2 test app is read
    app = load_app(APPS / "raw" / "template.yaml")
    routes = app.api.routes
    # THEN $connect has the REQUEST authorizer with its identity source, and only "echo" has a route response
    authorizer = routes["$connect"].authorizer
    assert authorizer is not None
    assert authorizer.identity_sources == ("route.request.querystring.token",)
    assert authorizer.function == "AuthorizerFunction"
    assert {key for key, route in routes.items() if route.has_route_response} == {"echo"}
    assert app.api.stage == "v1"


def test_parameter_overrides_reach_the_model():
    # WHEN a condition-controlling parameter is overridden
    app = load_app(APPS / "raw" / "template.yaml", {"UseShortTimeout": "no", "Stage": "beta"})
    # THEN Fn::If and the stage follow it
    assert app.functions["HandlerFunction"].timeout_s == 30
    assert app.api.stage == "beta"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return path


def test_template_without_websocket_api_is_one_clear_error(tmp_path):
    # GIVEN a template with no WebSocket API
    path = _write(tmp_path, "Resources:\n  T:\n    Type: AWS::SNS::Topic\n")
    # THEN the error says so in one sentence
    with pytest.raises(TemplateError, match="no WebSocket API"):
        load_app(path)


def test_iam_authorization_on_a_message_route_is_refused_naming_the_route(tmp_path):
    # GIVEN the raw app with AWS_IAM on the "echo" route (API Gateway allows IAM on $connect only)
    text = (
        (APPS / "raw" / "template.yaml")
        .read_text()
        .replace("      RouteKey: echo\n", "      RouteKey: echo\n      AuthorizationType: AWS_IAM\n")
    )
    path = _write(tmp_path, text)
    (tmp_path / "src").symlink_to(APPS / "raw" / "src")
    # THEN the error names the route resource and what is unsupported
    with pytest.raises(TemplateError, match=r"EchoRoute.*AWS_IAM is unsupported on echo"):
        load_app(path)


def test_iam_authorization_on_connect_is_read(tmp_path):
    # GIVEN the raw app with AWS_IAM instead of the authorizer on $connect
    text = (
        (APPS / "raw" / "template.yaml")
        .read_text()
        .replace("AuthorizationType: CUSTOM", "AuthorizationType: AWS_IAM")
    )
    path = _write(tmp_path, text)
    (tmp_path / "src").symlink_to(APPS / "raw" / "src")
    # THEN $connect requires SigV4 and has no Lambda authorizer
    connect = load_app(path).api.routes["$connect"]
    assert connect.iam is True
    assert connect.authorizer is None


def test_inline_code_is_refused_naming_the_function(tmp_path):
    # GIVEN a function with InlineCode
    path = _write(
        tmp_path,
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n"
        "    Properties:\n      Runtime: python3.13\n      Handler: index.handler\n"
        "      InlineCode: 'x = 1'\n",
    )
    # THEN the error names it
    with pytest.raises(TemplateError, match="F: InlineCode"):
        load_app(path)


def test_sam_transform_errors_are_reported_without_traceback(tmp_path):
    # GIVEN a SAM function missing its Handler
    path = _write(
        tmp_path,
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n"
        "    Properties:\n      Runtime: python3.13\n      CodeUri: src/\n      Events: 5\n",
    )
    # THEN the translator's complaint is relayed as a TemplateError naming the resource
    with pytest.raises(TemplateError, match="F"):
        load_app(path)


def test_sam_websocket_api_auth_becomes_a_request_authorizer_on_connect(tmp_path):
    # GIVEN AWS::Serverless::WebSocketApi with Auth: CUSTOM
    path = _write(
        tmp_path,
        """Transform: AWS::Serverless-2016-10-31
Resources:
  Ws:
    Type: AWS::Serverless::WebSocketApi
    Properties:
      RouteSelectionExpression: $request.body.action
      StageName: dev
      Auth:
        AuthType: CUSTOM
        AuthArn: !GetAtt AuthFn.Arn
        IdentitySource: [route.request.querystring.token]
      Routes:
        $connect:
          FunctionArn: !GetAtt F.Arn
  F:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python3.13, CodeUri: ., Handler: app.h}
  AuthFn:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python3.13, CodeUri: ., Handler: app.auth}
""",
    )
    # WHEN it is read
    authorizer = load_app(path).api.routes["$connect"].authorizer
    # THEN $connect is guarded by the authorizer function with its identity source
    assert authorizer is not None
    assert authorizer.function == "AuthFn"
    assert authorizer.identity_sources == ("route.request.querystring.token",)


def test_an_integrations_timeout_in_millis_reaches_its_route(tmp_path):
    # GIVEN the raw app whose $disconnect integration says TimeoutInMillis: 5000
    text = (
        (APPS / "raw" / "template.yaml")
        .read_text()
        .replace(
            "  DisconnectIntegration:\n    Type: AWS::ApiGatewayV2::Integration\n    Properties:\n",
            "  DisconnectIntegration:\n    Type: AWS::ApiGatewayV2::Integration\n    Properties:\n"
            "      TimeoutInMillis: 5000\n",
        )
    )
    path = _write(tmp_path, text)
    (tmp_path / "src").symlink_to(APPS / "raw" / "src")
    # WHEN it is loaded
    routes = load_app(path).api.routes
    # THEN that route caps its integration at 5 s; the others keep API Gateway's 29 s (None)
    assert routes["$disconnect"].timeout_ms == 5000
    assert routes["$default"].timeout_ms is None


def test_the_wrapped_route_selection_expression_loads(tmp_path):
    # GIVEN the raw app with the ${request.body.route} spelling AWS's own examples use
    text = (
        (APPS / "raw" / "template.yaml")
        .read_text()
        .replace(
            "RouteSelectionExpression: $request.body.route", "RouteSelectionExpression: ${request.body.route}"
        )
    )
    path = _write(tmp_path, text)
    (tmp_path / "src").symlink_to(APPS / "raw" / "src")
    # WHEN it is loaded
    # THEN the API keeps it (it used to be refused as unsupported)
    assert load_app(path).api.route_selection_expression == "${request.body.route}"


def test_a_route_selection_expression_outside_the_body_is_refused_naming_the_api(tmp_path):
    # GIVEN the raw app selecting routes on a header
    text = (
        (APPS / "raw" / "template.yaml")
        .read_text()
        .replace(
            "RouteSelectionExpression: $request.body.route", "RouteSelectionExpression: $request.header.x"
        )
    )
    path = _write(tmp_path, text)
    (tmp_path / "src").symlink_to(APPS / "raw" / "src")
    # THEN the error names the API resource and the expression
    with pytest.raises(
        TemplateError, match=r"Api: RouteSelectionExpression \$request.header.x is not supported"
    ):
        load_app(path)
