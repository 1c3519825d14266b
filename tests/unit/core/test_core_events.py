"""Every sample event is a faithful API Gateway WebSocket event, and every one is used by a test."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventV2Model,
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)
from core_support import EVENTS, ROOT
from pydantic import BaseModel

MODELS: dict[str, type[BaseModel]] = {
    "CONNECT": APIGatewayWebSocketConnectEventModel,
    "MESSAGE": APIGatewayWebSocketMessageEventModel,
    "DISCONNECT": APIGatewayWebSocketDisconnectEventModel,
}


def _route_events() -> list[Path]:
    # REQUEST authorizer events (top-level "type": "REQUEST") are a different event type, the
    # authorizer's input; they are validated by the authorizer's own tests, not here. HTTP API
    # events (payload "version": "2.0") are validated below.
    return sorted(
        p
        for p in EVENTS.glob("*.json")
        if json.loads(p.read_text()).get("type") != "REQUEST" and not _is_http(p)
    )


def _is_http(path: Path) -> bool:
    return bool(json.loads(path.read_text()).get("version") == "2.0")


ROUTE_EVENTS = _route_events()
HTTP_EVENTS = sorted(p for p in EVENTS.glob("*.json") if _is_http(p))


def test_there_are_route_events_for_every_route() -> None:
    # GIVEN the events/ folder
    # WHEN its route events are read
    kinds = {json.loads(p.read_text())["requestContext"]["eventType"] for p in ROUTE_EVENTS}
    # THEN connect, message and disconnect events are all present
    assert kinds == set(MODELS)


@pytest.mark.parametrize("path", ROUTE_EVENTS, ids=lambda p: p.name)
def test_event_validates_against_powertools_model(path: Path) -> None:
    # GIVEN a sample event
    event = json.loads(path.read_text())
    context = event["requestContext"]
    model = MODELS[context["eventType"]]
    # WHEN it is validated by Powertools' parser model for its event type
    parsed: Any = model.model_validate(event)
    # THEN it parses, and its fields look like an AWS capture
    assert parsed.request_context.connection_id == context["connectionId"]
    assert parsed.request_context.domain_name == f"{context['apiId']}.execute-api.eu-west-1.amazonaws.com"
    assert len(context["requestId"]) == 16
    assert context["requestId"].endswith("=")
    # AND requestTime is the CLF rendering of requestTimeEpoch, after the connection opened
    clf = datetime.strptime(context["requestTime"], "%d/%b/%Y:%H:%M:%S %z")
    assert int(clf.timestamp()) == context["requestTimeEpoch"] // 1000
    assert context["connectedAt"] <= context["requestTimeEpoch"]


@pytest.mark.parametrize("path", ROUTE_EVENTS, ids=lambda p: p.name)
def test_event_is_used_by_a_test(path: Path) -> None:
    # GIVEN the test sources (this file excluded: it reads every event generically)
    this = Path(__file__).resolve()
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py") if p.resolve() != this)
    # WHEN the event's name is looked for
    # THEN some test loads it by name
    assert f'"{path.stem}"' in sources, f"events/{path.name} is not used by any test"


#: The HTTP API's routes (template.yaml: PublishFunction and AdminFunction).
HTTP_ROUTES = {
    "POST": {"/channels/{channel}/messages"},
    "DELETE": {"/connections/{connectionId}", "/users/{sub}/connections"},
}


def test_there_are_http_api_events() -> None:
    # GIVEN the events/ folder WHEN its HTTP API events are listed THEN there are some
    assert HTTP_EVENTS


@pytest.mark.parametrize("path", HTTP_EVENTS, ids=lambda p: p.name)
def test_http_event_validates_against_powertools_model(path: Path) -> None:
    # GIVEN a sample HTTP API (payload 2.0) event
    event = json.loads(path.read_text())
    # WHEN validated by Powertools' APIGatewayProxyEventV2Model
    parsed = APIGatewayProxyEventV2Model.model_validate(event)
    # THEN it parses as an IAM-authorized request to one of the HTTP API's routes (publish or
    # admin), its method, route key, path and parameters agreeing
    method, template = parsed.routeKey.split(" ", 1)
    assert parsed.requestContext.http.method == method
    assert parsed.routeKey == parsed.requestContext.routeKey
    assert template in HTTP_ROUTES[method]
    assert parsed.requestContext.authorizer is not None
    assert parsed.requestContext.authorizer.iam is not None
    assert parsed.pathParameters is not None
    path = template
    for name, value in parsed.pathParameters.items():
        path = path.replace(f"{{{name}}}", quote(value, safe=""))
    assert parsed.rawPath == path


@pytest.mark.parametrize("path", HTTP_EVENTS, ids=lambda p: p.name)
def test_http_event_is_used_by_a_test(path: Path) -> None:
    # GIVEN the test sources WHEN the event's name is looked for THEN some test loads it by name
    this = Path(__file__).resolve()
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py") if p.resolve() != this)
    assert f'"{path.stem}"' in sources, f"events/{path.name} is not used by any test"
