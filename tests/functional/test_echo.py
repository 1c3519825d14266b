"""The simplest app (AWS::Serverless::WebSocketApi, $default echoes through the management API)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from websockets.sync.client import connect

APPS = Path(__file__).parent / "apps"


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APPS / "echo" / "template.yaml"


def test_message_is_echoed_through_management_api_built_from_event(lambdacast):
    # GIVEN a client connected to the echo app
    with connect(lambdacast.ws_url) as ws:
        # WHEN it sends a message
        ws.send("hello world")
        # THEN the handler posts it back via https://{domainName}/{stage}
        assert ws.recv(timeout=10) == "hello world"


def test_message_is_echoed_through_management_endpoint_from_template_env(lambdacast):
    # GIVEN a handler whose endpoint comes from !Sub over the API id (MANAGEMENT_ENDPOINT)
    with connect(lambdacast.ws_url) as ws:
        # WHEN the message asks it to use that env var
        ws.send("via-env")
        # THEN the post still reaches this connection locally
        assert ws.recv(timeout=10) == "via-env"


def test_handler_error_sends_internal_server_error_frame(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url) as ws:
        ws.send("whoami")
        my_id = ws.recv(timeout=10)
        # WHEN the handler raises
        ws.send("crash")
        frame = json.loads(ws.recv(timeout=10))
    # THEN API Gateway's error frame arrives, naming this connection and the failed invocation's request
    assert frame["message"] == "Internal server error"
    assert frame["connectionId"] == my_id
    crashed = [i for i in lambdacast.invocations if i.connection_id == my_id and i.status == "error"]
    assert len(frame["requestId"]) == 16
    assert len(crashed) == 1
