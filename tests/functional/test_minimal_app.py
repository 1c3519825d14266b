"""An app with no $connect and no $default, whose two functions both live in modules named app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from websockets.sync.client import connect

APP = Path(__file__).parent / "apps" / "minimal" / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP


def test_connect_route_is_optional(lambdacast):
    # WHEN a client connects to an API without $connect
    with connect(lambdacast.ws_url) as ws:
        # THEN the handshake succeeds and no function ran for it
        assert ws.protocol.state.name == "OPEN"
    assert lambdacast.invocations_of("$connect") == []


def test_functions_with_the_same_module_name_do_not_collide(lambdacast):
    # GIVEN ping/app.py and pong/app.py
    with connect(lambdacast.ws_url) as ws:
        # WHEN each route is called
        ws.send(json.dumps({"action": "ping"}))
        first = json.loads(ws.recv(timeout=15))
        ws.send(json.dumps({"action": "pong"}))
        second = json.loads(ws.recv(timeout=15))
    # THEN each ran its own module
    assert first == {"who": "ping"}
    assert second == {"who": "pong"}


def test_message_matching_no_route_gets_the_forbidden_error_frame(lambdacast):
    # GIVEN an API without $default
    with connect(lambdacast.ws_url) as ws:
        # WHEN a message matches no route
        ws.send(json.dumps({"action": "nothing"}))
        frame = json.loads(ws.recv(timeout=15))
    # THEN API Gateway's error frame arrives
    assert frame["message"] == "Forbidden"
    assert set(frame) == {"message", "connectionId", "requestId"}


def test_stage_path_and_root_path_both_serve_the_api(lambdacast):
    # WHEN a client connects at / instead of /{stage}
    root = lambdacast.ws_url.rsplit("/", 1)[0] + "/"
    with connect(root) as ws:
        ws.send(json.dumps({"action": "ping"}))
        # THEN it is the same API
        assert json.loads(ws.recv(timeout=15)) == {"who": "ping"}
