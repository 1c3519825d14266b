"""The authorizer events in events/ have the shape API Gateway sends to a WebSocket REQUEST authorizer."""

from __future__ import annotations

from typing import Literal

import pytest
from auth_helpers import EVENTS, load_event
from aws_lambda_powertools.utilities.parser.models import APIGatewayWebSocketConnectEventRequestContext
from pydantic import BaseModel, ConfigDict, Field

AUTHORIZER_EVENTS = sorted(p.stem for p in EVENTS.glob("authorizer-*.json"))
METHOD_ARN = r"^arn:aws:execute-api:[a-z0-9-]+:\d{12}:[a-z0-9]+/[A-Za-z0-9_-]+/\$connect$"


class WebSocketAuthorizerRequestEvent(BaseModel):
    """AWS's documented REQUEST authorizer input for a WebSocket $connect."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["REQUEST"]
    method_arn: str = Field(alias="methodArn", pattern=METHOD_ARN)
    headers: dict[str, str]
    multi_value_headers: dict[str, list[str]] = Field(alias="multiValueHeaders")
    query_string_parameters: dict[str, str] | None = Field(alias="queryStringParameters")
    multi_value_query_string_parameters: dict[str, list[str]] | None = Field(
        alias="multiValueQueryStringParameters"
    )
    stage_variables: dict[str, str] | None = Field(alias="stageVariables")
    request_context: APIGatewayWebSocketConnectEventRequestContext = Field(alias="requestContext")


def test_there_are_authorizer_events_with_and_without_tokens() -> None:
    # GIVEN the events folder
    # WHEN the authorizer events are listed
    # THEN the token matrix's fixtures are all there
    assert {
        "authorizer-token",
        "authorizer-no-token",
        "authorizer-bad-token",
        "authorizer-forged-token",
        "authorizer-expired-token",
        "authorizer-alg-none",
    } <= set(AUTHORIZER_EVENTS)


@pytest.mark.parametrize("name", AUTHORIZER_EVENTS)
def test_authorizer_event_matches_the_websocket_request_authorizer_shape(name: str) -> None:
    # GIVEN an authorizer event from events/
    event = load_event(name)
    # WHEN it is validated against the WebSocket REQUEST authorizer model
    parsed = WebSocketAuthorizerRequestEvent.model_validate(event)
    # THEN it is a $connect whose methodArn names the same API and stage as its request context
    ctx = parsed.request_context
    assert parsed.method_arn.endswith(f":{ctx.api_id}/{ctx.stage}/$connect")
    assert parsed.multi_value_headers == {k: [v] for k, v in parsed.headers.items()}


@pytest.mark.parametrize("name", AUTHORIZER_EVENTS)
def test_query_string_views_agree(name: str) -> None:
    # GIVEN an authorizer event from events/
    event = load_event(name)
    # WHEN its single- and multi-value query strings are compared
    single = event["queryStringParameters"]
    multi = event["multiValueQueryStringParameters"]
    # THEN they carry the same parameters, as API Gateway sends them
    assert (single is None) == (multi is None)
    if single is not None:
        assert {k: v[-1] for k, v in multi.items()} == single
