"""The ``lambdacast`` command's pure parts: generate-event, argument errors, the invocation line."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)

from lambdacast_local.cli import format_invocation, main
from lambdacast_local.lambda_pool import Invocation


@pytest.mark.parametrize(
    ("kind", "model"),
    [
        ("connect", APIGatewayWebSocketConnectEventModel),
        ("message", APIGatewayWebSocketMessageEventModel),
        ("disconnect", APIGatewayWebSocketDisconnectEventModel),
    ],
)
def test_generate_event_prints_a_valid_event(kind, model, capsys):
    # WHEN a sample event is generated
    assert main(["generate-event", kind]) == 0
    # THEN it is JSON that Powertools' model accepts
    model.model_validate(json.loads(capsys.readouterr().out))


def test_generate_message_event_uses_body_and_route(capsys):
    # WHEN a body and a route are given
    main(["generate-event", "message", "--body", '{"action":"publish"}', "--route", "publish"])
    event = json.loads(capsys.readouterr().out)
    # THEN the event carries them
    assert event["body"] == '{"action":"publish"}'
    assert event["requestContext"]["routeKey"] == "publish"


def test_generate_authorizer_event_has_method_arn(capsys):
    # WHEN an authorizer event is generated
    main(["generate-event", "authorizer"])
    event = json.loads(capsys.readouterr().out)
    # THEN it is a REQUEST authorizer event for $connect
    assert event["type"] == "REQUEST"
    assert event["methodArn"].endswith("/$connect")


def test_bad_parameter_override_is_one_line_and_status_2(capsys):
    # WHEN an override is malformed
    status = main(["local", "--template", "template.yaml", "--parameter-overrides", "oops", "--no-web"])
    # THEN one clear line on stderr, exit status 2, nothing started
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lambdacast: ")
    assert "oops" in err
    assert len(err.splitlines()) == 1


def test_invocation_line_shows_route_function_duration_temperature_and_status():
    # GIVEN a cold, failed invocation
    invocation = Invocation(
        function="EchoFunction",
        request_id="r",
        status="error",
        error={"errorType": "KeyError", "errorMessage": "'x'"},
        duration_ms=12.34,
        cold=True,
        init_ms=210.0,
        label="$default",
    )
    # WHEN it is formatted without color
    line = format_invocation(invocation, color=False)
    # THEN every field is on the one line
    assert "$default" in line
    assert "EchoFunction" in line
    assert "12.3 ms" in line
    assert "cold 210 ms init" in line
    assert "ERROR KeyError: 'x'" in line
    assert "\033[" not in line


def _refusal(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    status = main(["local", "--template", "template.yaml", "--no-web", "--port", "0", *extra])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("lambdacast: ")
    return err


def test_bad_faults_entry_is_one_line_naming_it_and_status_2(capsys):
    # WHEN --faults has an entry with an unknown kind
    err = _refusal(capsys, "--faults", "dynamodb:throttle=0.1,connections:503=0.1")
    # THEN the line names that entry and the kinds to choose from
    assert "'connections:503=0.1'" in err
    assert "429, 500, 410 or latency" in err


def test_dynamodb_faults_with_an_external_dynamodb_are_refused(capsys):
    # WHEN DynamoDB faults are asked for while DynamoDB is elsewhere
    err = _refusal(
        capsys, "--dynamodb-endpoint", "http://127.0.0.1:8000", "--faults", "dynamodb:throttle=0.1"
    )
    # THEN the user is told why they cannot apply, in one line
    assert "DynamoDB faults need the embedded DynamoDB" in err
    assert "http://127.0.0.1:8000" in err


def test_management_latency_contradicting_faults_latency_is_refused(capsys):
    # WHEN the old flag and the spec give two latencies
    err = _refusal(capsys, "--management-latency-ms", "5", "--faults", "connections:latency=7")
    # THEN the user is told to give one
    assert "contradicts connections:latency=7" in err
