"""API Gateway semantics through lambdacast local, on an app written with raw AWS::ApiGatewayV2 resources."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

APP = Path(__file__).parent / "apps" / "raw" / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {"concurrency": 2}


def open_ws(lambdacast: Any, query: str = "token=allow-alice", **kwargs: Any) -> ClientConnection:
    return connect(f"{lambdacast.ws_url}?{query}", **kwargs)


def request(ws: ClientConnection, payload: dict[str, Any]) -> dict[str, Any]:
    ws.send(json.dumps({"route": "echo", **payload}))
    reply: dict[str, Any] = json.loads(ws.recv(timeout=15))
    return reply


# -- route selection -----------------------------------------------------------------------------


def test_route_is_selected_from_the_body_path(lambdacast):
    # GIVEN a connection
    with open_ws(lambdacast) as ws:
        # WHEN a message names the custom route "echo" in $request.body.route
        reply = request(ws, {"n": 1})
    # THEN the echo route handled it
    assert reply["route"] == "echo"
    assert reply["event"]["requestContext"]["routeKey"] == "echo"


def test_unknown_route_goes_to_default_with_default_route_key(lambdacast):
    # GIVEN a connection
    with open_ws(lambdacast) as ws:
        # WHEN the body names a route the API does not have
        ws.send(json.dumps({"route": "nope"}))
        reply = json.loads(ws.recv(timeout=15))
    # THEN $default handled it, and its event says $default (not the unmatched value)
    assert reply["route"] == "$default"
    assert reply["event"]["requestContext"]["routeKey"] == "$default"


def test_non_json_message_goes_to_default(lambdacast):
    # GIVEN a connection
    with open_ws(lambdacast) as ws:
        # WHEN the message is not JSON
        ws.send("plain words")
        reply = json.loads(ws.recv(timeout=15))
    # THEN $default handled it with the body untouched
    assert reply["route"] == "$default"
    assert reply["event"]["body"] == "plain words"


def test_binary_frame_arrives_base64_encoded(lambdacast):
    # GIVEN a connection
    with open_ws(lambdacast) as ws:
        # WHEN the client sends a binary frame
        ws.send(b"\x00\x01\xfe\xff")
        reply = json.loads(ws.recv(timeout=15))
    # THEN the handler got it base64-encoded with isBase64Encoded true
    assert reply["event"]["isBase64Encoded"] is True
    assert base64.b64decode(reply["event"]["body"]) == b"\x00\x01\xfe\xff"
    assert reply["message"] == {"binary": "0001feff"}


# -- route responses -------------------------------------------------------------------------------


def test_route_without_route_response_sends_nothing_back(lambdacast):
    # GIVEN a connection and the "silent" route, which returns a body but has no route response
    with open_ws(lambdacast) as ws:
        before = len(lambdacast.invocations_of("silent"))
        ws.send(json.dumps({"route": "silent"}))
        assert lambdacast.wait_for(lambda e: len(e.invocations_of("silent")) > before)
        # WHEN a route with a route response is called next
        reply = request(ws, {"after": "silent"})
    # THEN the first frame the client sees is the echo route's: the silent body never arrived
    assert reply["route"] == "echo"
    assert lambdacast.invocations_of("silent")[before].ok


# -- errors ----------------------------------------------------------------------------------------


def test_handler_exception_sends_internal_server_error_frame(lambdacast):
    # GIVEN a connection
    with open_ws(lambdacast) as ws:
        # WHEN the handler raises
        ws.send(json.dumps({"route": "echo", "op": "raise"}))
        frame = json.loads(ws.recv(timeout=15))
    # THEN the client gets API Gateway's error frame
    assert frame["message"] == "Internal server error"
    assert set(frame) == {"message", "connectionId", "requestId"}


def test_handler_timeout_kills_the_worker_and_sends_internal_server_error(lambdacast):
    # GIVEN a connection (Timeout: 3 s in the template)
    with open_ws(lambdacast) as ws:
        # WHEN the handler runs past its timeout
        ws.send(json.dumps({"route": "echo", "op": "sleep", "seconds": 10}))
        frame = json.loads(ws.recv(timeout=15))
        # THEN the client gets the error frame and the invocation counts as timed out...
        assert frame["message"] == "Internal server error"
        timed_out = [inv for inv in lambdacast.invocations_of("echo") if inv.status == "timeout"]
        assert len(timed_out) == 1
        # ...and the killed worker never serves again
        pids = {request(ws, {})["pid"] for _ in range(3)}
    assert timed_out[0].worker_pid not in pids


def test_worker_that_exits_fails_the_invocation(lambdacast):
    # GIVEN a connection
    with open_ws(lambdacast) as ws:
        # WHEN the handler's process dies mid-invocation
        ws.send(json.dumps({"route": "echo", "op": "exit"}))
        frame = json.loads(ws.recv(timeout=15))
        # THEN the client gets the error frame and the next message is served normally
        assert frame["message"] == "Internal server error"
        assert request(ws, {"again": True})["message"]["again"] is True


def test_message_over_128_kib_closes_with_1009(lambdacast):
    # GIVEN a connection
    with open_ws(lambdacast, max_size=None) as ws:
        # WHEN the client sends more than 128 KiB
        ws.send("x" * (128 * 1024 + 1))
        # THEN the server closes the connection with 1009
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=15)
    assert ws.close_code == 1009
    # AND $disconnect fires with that status code
    assert lambdacast.wait_for(
        lambda e: any(_disconnect_code(inv) == 1009 for inv in e.invocations_of("$disconnect"))
    )


def _disconnect_code(invocation: Any) -> int | None:
    if not invocation.ok:
        return None
    event = json.loads(invocation.result["body"])
    code: int = event["requestContext"]["disconnectStatusCode"]
    return code


def _disconnect_event(lambdacast: Any, connection_id: str) -> dict[str, Any] | None:
    for invocation in lambdacast.invocations_of("$disconnect"):
        event: dict[str, Any] = json.loads(invocation.result["body"])
        if event["requestContext"]["connectionId"] == connection_id:
            return event
    return None


def test_client_close_fires_disconnect_with_status_code_and_reason(lambdacast):
    # GIVEN a connection whose id we know
    with open_ws(lambdacast) as ws:
        connection_id = request(ws, {})["event"]["requestContext"]["connectionId"]
        # WHEN the client closes with a code and a reason
        ws.close(code=4001, reason="bye now")
    # THEN $disconnect fires for it with that code and reason
    assert lambdacast.wait_for(lambda e: _disconnect_event(e, connection_id) is not None)
    context = _disconnect_event(lambdacast, connection_id)["requestContext"]  # type: ignore[index]
    assert context["disconnectStatusCode"] == 4001
    assert context["disconnectReason"] == "bye now"
    assert context["eventType"] == "DISCONNECT"


# -- $connect ----------------------------------------------------------------------------------------


def test_connect_non_2xx_refuses_the_handshake_with_that_status(lambdacast):
    # GIVEN $connect answering 429 for this handshake
    # WHEN the client connects
    with pytest.raises(InvalidStatus) as refused:
        open_ws(lambdacast, "token=allow-bob&status=429")
    # THEN the handshake fails with that status
    assert refused.value.response.status_code == 429


def test_subprotocol_is_not_echoed_unless_connect_returns_it(lambdacast):
    # GIVEN a client offering a subprotocol that $connect does not choose
    # WHEN it connects
    with open_ws(lambdacast, subprotocols=["chat"]) as ws:  # type: ignore[list-item]
        # THEN the server does not select it (a browser would fail this handshake, as on AWS)
        assert ws.subprotocol is None


def test_subprotocol_chosen_by_connect_response_header(lambdacast):
    # GIVEN $connect returning Sec-WebSocket-Protocol: chat
    # WHEN a client offering "chat" connects
    with open_ws(lambdacast, "token=allow-carol&protocol=chat", subprotocols=["chat"]) as ws:  # type: ignore[list-item]
        # THEN the handshake selects it
        assert ws.subprotocol == "chat"


# -- REQUEST authorizer ------------------------------------------------------------------------------


def test_missing_identity_source_is_401_without_invoking_the_authorizer(lambdacast):
    # GIVEN the authorizer's invocation count
    before = len(lambdacast.invocations_of("$connect authorizer"))
    # WHEN a client connects without the token query parameter
    with pytest.raises(InvalidStatus) as refused:
        open_ws(lambdacast, "other=1")
    # THEN the handshake is refused with 401 and the authorizer never ran
    assert refused.value.response.status_code == 401
    assert len(lambdacast.invocations_of("$connect authorizer")) == before


def test_authorizer_deny_is_403(lambdacast):
    # WHEN the authorizer returns a Deny policy
    with pytest.raises(InvalidStatus) as refused:
        open_ws(lambdacast, "token=deny")
    # THEN the handshake is refused with 403
    assert refused.value.response.status_code == 403


def test_authorizer_failure_is_500(lambdacast):
    # WHEN the authorizer raises
    with pytest.raises(InvalidStatus) as refused:
        open_ws(lambdacast, "token=crash")
    # THEN the handshake is refused with 500
    assert refused.value.response.status_code == 500


def test_authorizer_principal_and_context_reach_later_events(lambdacast):
    # GIVEN a connection allowed for alice
    with open_ws(lambdacast, "token=allow-alice") as ws:
        # WHEN a later message arrives
        reply = request(ws, {})
    # THEN its requestContext.authorizer carries principalId and the policy's context
    authorizer = reply["event"]["requestContext"]["authorizer"]
    assert authorizer["principalId"] == "alice"
    assert authorizer["role"] == "tester"
    assert authorizer["level"] == "3"  # context values arrive as strings


def test_authorizer_event_carries_method_arn_headers_query_and_request_context(lambdacast):
    # GIVEN a connection (the authorizer reports the keys of the event it saw in its context)
    with open_ws(lambdacast) as ws:
        reply = request(ws, {})
    # THEN its event had methodArn, headers, query string and requestContext
    seen = set(reply["event"]["requestContext"]["authorizer"]["seenEvent"].split(","))
    assert {"methodArn", "headers", "queryStringParameters", "requestContext", "type"} <= seen


# -- the connect event ---------------------------------------------------------------------------------


def test_connect_event_has_headers_query_and_identity(lambdacast):
    # GIVEN a client with a user agent and a query string
    with open_ws(lambdacast, "token=allow-dan&x=1&x=2", user_agent_header="spec-agent/1.0") as ws:
        connection_id = request(ws, {})["event"]["requestContext"]["connectionId"]
    # WHEN we look at the $connect event the handler received
    events = [
        json.loads(inv.result["body"])
        for inv in lambdacast.invocations_of("$connect")
        if inv.ok and "body" in inv.result
    ]
    event = next(e for e in events if e["requestContext"]["connectionId"] == connection_id)
    # THEN it carries headers, multi-value query strings and identity with the user agent
    assert event["requestContext"]["identity"]["userAgent"] == "spec-agent/1.0"
    assert event["multiValueQueryStringParameters"]["x"] == ["1", "2"]
    assert event["queryStringParameters"]["token"] == "allow-dan"
    assert "Sec-WebSocket-Key" in event["headers"]
    assert event["requestContext"]["eventType"] == "CONNECT"
    assert "messageId" not in event["requestContext"]


def test_subprotocol_returned_but_never_offered_fails_the_client_handshake(lambdacast):
    # GIVEN $connect returning Sec-WebSocket-Protocol: chat
    # WHEN a client that offered no subprotocol connects
    with pytest.raises(InvalidHandshake):
        open_ws(lambdacast, "token=allow-frank&protocol=chat")
    # THEN the client rejects the handshake, as browsers do with API Gateway


def test_events_the_running_emulator_delivers_validate_against_powertools_models(lambdacast):
    # GIVEN Powertools' parser models for the three WebSocket event types
    from aws_lambda_powertools.utilities.parser.models import (
        APIGatewayWebSocketConnectEventModel,
        APIGatewayWebSocketDisconnectEventModel,
        APIGatewayWebSocketMessageEventModel,
    )

    # WHEN a connection opens, sends a message and closes
    with open_ws(lambdacast) as ws:
        message = request(ws, {"n": 1})["event"]
    connection_id = message["requestContext"]["connectionId"]
    assert lambdacast.wait_for(lambda e: _disconnect_event(e, connection_id) is not None)
    disconnect = _disconnect_event(lambdacast, connection_id)
    connect_event = next(
        json.loads(inv.result["body"])
        for inv in lambdacast.invocations_of("$connect")
        if inv.ok and inv.connection_id == connection_id
    )
    # THEN each event its handler received validates against its model
    APIGatewayWebSocketConnectEventModel.model_validate(connect_event)
    APIGatewayWebSocketMessageEventModel.model_validate(message)
    APIGatewayWebSocketDisconnectEventModel.model_validate(disconnect)
    # AND only the MESSAGE event carries a messageId
    assert message["requestContext"]["eventType"] == "MESSAGE"
    assert message["requestContext"]["messageId"]
    assert "messageId" not in connect_event["requestContext"]
    assert disconnect is not None
    assert "messageId" not in disconnect["requestContext"]
