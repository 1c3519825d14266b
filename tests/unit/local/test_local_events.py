"""Event builders: AWS's id format and shapes that Powertools' parser models accept."""

from __future__ import annotations

import re

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)

from lambdacast_local import events

ID_FORMAT = re.compile(r"^[A-Za-z0-9]{15}=$")


@pytest.fixture
def stage() -> events.Stage:
    return events.Stage(api_id="abcdef1234", stage="dev", domain_name="127.0.0.1:4443")


@pytest.fixture
def conn() -> events.Connection:
    return events.Connection(
        connection_id=events.new_id(),
        connected_at=1_700_000_000_123,
        source_ip="127.0.0.1",
        user_agent="pytest",
        headers=[
            ("Host", "127.0.0.1:3001"),
            ("Sec-WebSocket-Key", "k=="),
            ("X-Multi", "a"),
            ("X-Multi", "b"),
        ],
        query=[("token", "t"), ("x", "1"), ("x", "2")],
    )


def test_ids_are_16_base64_characters_like_api_gateways():
    # WHEN many ids are generated
    ids = [events.new_id() for _ in range(500)]
    # THEN each looks like BFHPhfCWIAMCKlQ= and they do not repeat
    assert all(ID_FORMAT.match(value) for value in ids)
    assert len(set(ids)) == len(ids)


def test_request_time_is_common_log_format():
    # WHEN a millisecond timestamp is formatted
    # THEN it reads like API Gateway's requestTime
    assert events.clf_time(1_549_749_682_000) == "09/Feb/2019:22:01:22 +0000"


def test_connect_event_validates_and_carries_headers_query_and_user_agent(stage, conn):
    # WHEN the $connect event is built
    event = events.connect_event(stage, conn)
    # THEN Powertools' model accepts it
    model = APIGatewayWebSocketConnectEventModel.model_validate(event)
    assert model.request_context.route_key == "$connect"
    # AND it has single and multi-value headers and query strings, and the user agent
    assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"]
    assert event["headers"]["X-Multi"] == "b"
    assert event["multiValueQueryStringParameters"]["x"] == ["1", "2"]
    assert event["requestContext"]["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "pytest"}
    assert event["requestContext"]["connectedAt"] == conn.connected_at
    assert "messageId" not in event["requestContext"]


def test_connect_event_without_query_string_has_no_query_keys(stage, conn):
    # GIVEN a handshake without a query string
    conn.query = []
    # WHEN the event is built
    event = events.connect_event(stage, conn)
    # THEN the query keys are absent, as on AWS
    assert "queryStringParameters" not in event
    assert "multiValueQueryStringParameters" not in event


def test_message_event_validates_and_has_a_message_id(stage, conn):
    # WHEN a text message event is built
    event = events.message_event(stage, conn, "send", '{"action":"send"}')
    # THEN Powertools accepts it, with a messageId and the route key
    model = APIGatewayWebSocketMessageEventModel.model_validate(event)
    assert model.request_context.route_key == "send"
    assert ID_FORMAT.match(event["requestContext"]["messageId"])
    assert event["isBase64Encoded"] is False
    assert "userAgent" not in event["requestContext"]["identity"]


@pytest.mark.parametrize("build", ["connect", "message", "disconnect"])
def test_extended_request_id_is_the_request_id_as_in_aws_captures(stage, conn, build):
    # GIVEN AWS's captured events (events/*.json), where extendedRequestId repeats requestId
    # WHEN an event of each kind is built
    if build == "connect":
        event = events.connect_event(stage, conn)
    elif build == "message":
        event = events.message_event(stage, conn, "$default", "hi")
    else:
        event = events.disconnect_event(stage, conn, 1000, "")
    # THEN both fields carry one id, and the next event gets another
    context = event["requestContext"]
    assert ID_FORMAT.match(context["requestId"])
    assert context["extendedRequestId"] == context["requestId"]
    later = events.message_event(stage, conn, "$default", "hi")["requestContext"]
    assert later["requestId"] != context["requestId"]


def test_binary_message_is_base64_with_flag(stage, conn):
    # WHEN a binary frame's event is built
    event = events.message_event(stage, conn, "$default", b"\x00\xff")
    # THEN the body is base64 and flagged
    APIGatewayWebSocketMessageEventModel.model_validate(event)
    assert event["body"] == "AP8="
    assert event["isBase64Encoded"] is True


def test_disconnect_event_validates_with_status_code_and_reason(stage, conn):
    # WHEN the $disconnect event is built
    event = events.disconnect_event(stage, conn, 1001, "Going away")
    # THEN Powertools accepts it, with the status and reason
    model = APIGatewayWebSocketDisconnectEventModel.model_validate(event)
    assert model.request_context.disconnect_status_code == 1001
    assert model.request_context.disconnect_reason == "Going away"


def test_authorizer_context_appears_in_every_later_event(stage, conn):
    # GIVEN a connection with an authorizer context
    conn.authorizer = {"principalId": "u1", "role": "admin"}
    # WHEN later events are built
    built = [
        events.message_event(stage, conn, "$default", "x"),
        events.disconnect_event(stage, conn, 1000, ""),
    ]
    # THEN each carries it in requestContext.authorizer
    assert all(event["requestContext"]["authorizer"] == conn.authorizer for event in built)


def test_authorizer_event_has_method_arn_headers_query_and_request_context(stage, conn):
    # WHEN the REQUEST authorizer event is built
    event = events.authorizer_event(stage, conn)
    # THEN it has what a REQUEST authorizer reads
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/dev/$connect"
    assert event["queryStringParameters"]["token"] == "t"
    assert event["headers"]["Sec-WebSocket-Key"] == "k=="
    assert event["requestContext"]["routeKey"] == "$connect"
    assert event["requestContext"]["eventType"] == "CONNECT"
