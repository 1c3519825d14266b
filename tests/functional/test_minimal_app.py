"""An app with no $connect and no $default, whose two functions both live in modules named app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

APP = Path(__file__).parent / "apps" / "minimal" / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP


def test_connect_route_is_optional(lambdacast):
    # WHEN a client connects to an API without $connect
    with connect(lambdacast.ws_url) as ws:
        # THEN the connection serves messages and no function ran for the handshake
        ws.send(json.dumps({"action": "ping"}))
        assert json.loads(ws.recv(timeout=15)) == {"who": "ping"}
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


def test_only_the_stage_path_serves_the_api(lambdacast):
    # GIVEN the API's URL without its stage, and with another stage
    base = lambdacast.ws_url.rsplit("/", 1)[0]
    for url in (base + "/", base + "/not-the-stage"):
        # WHEN a client tries a handshake there
        with pytest.raises(InvalidStatus) as refused:
            connect(url)
        # THEN it is refused 403 Forbidden, as an execute-api host answers unknown paths
        assert refused.value.response.status_code == 403, url
