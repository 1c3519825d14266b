"""API Gateway quotas and wire details the emulator keeps: frame size, close codes, compression, timeouts."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

APP = Path(__file__).parent / "apps" / "echo" / "template.yaml"
FRAME_QUOTA = 32 * 1024


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    # The integration timeout is API Gateway's 29 s; shortened so a test can wait for it (still long enough
    # for a cold start on a loaded machine, and shorter than the echo handler's 10 s "sleep").
    return {"integration_timeout_s": 6.0}


def whoami(ws: ClientConnection) -> str:
    ws.send("whoami")
    reply = ws.recv(timeout=15)
    assert isinstance(reply, str)
    return reply


def disconnect_of(lambdacast: Any, connection_id: str) -> dict[str, Any] | None:
    for invocation in lambdacast.invocations_of("$disconnect"):
        context: dict[str, Any] = json.loads(invocation.result["body"])
        if invocation.ok and context["connectionId"] == connection_id:
            return context
    return None


def test_a_single_frame_over_32_kb_closes_the_connection_with_1009(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url, max_size=None) as ws:
        connection_id = whoami(ws)
        # WHEN it sends one text frame of 33 KB (under the 128 KiB message limit)
        ws.send("x" * (33 * 1024))
        # THEN the server closes the connection with 1009 and the message reaches no handler
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=15)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    # AND $disconnect fires with 1009
    assert lambdacast.wait_for(lambda e: disconnect_of(e, connection_id) is not None)
    context = disconnect_of(lambdacast, connection_id)
    assert context is not None
    assert context["disconnectStatusCode"] == 1009
    echoed = [i for i in lambdacast.invocations_of("$default") if i.connection_id == connection_id]
    assert len(echoed) == 1  # only the whoami


def test_a_frame_of_exactly_32_kb_is_delivered(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url, max_size=None) as ws:
        # WHEN it sends one frame of exactly 32 KB
        payload = "e" * FRAME_QUOTA
        ws.send(payload)
        # THEN the handler echoes it back
        assert ws.recv(timeout=15) == payload


def test_a_60_kb_message_in_20_kb_frames_is_delivered(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url, max_size=None) as ws:
        # WHEN it sends a 60 KB message fragmented into three 20 KB frames
        parts = ["a" * 20_000, "b" * 20_000, "c" * 20_000]
        ws.send(iter(parts))
        # THEN the whole message reaches the handler, which echoes it back
        assert ws.recv(timeout=15) == "".join(parts)


def test_a_close_frame_without_status_code_is_reported_as_1005(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url) as ws:
        connection_id = whoami(ws)
        # WHEN it closes with a close frame that carries no status code
        ws.close(code=None)  # type: ignore[arg-type]  # websockets then sends an empty close frame
    # THEN $disconnect reports AWS's 1005 and its reason
    assert lambdacast.wait_for(lambda e: disconnect_of(e, connection_id) is not None)
    context = disconnect_of(lambdacast, connection_id)
    assert context is not None
    assert context["disconnectStatusCode"] == 1005
    assert context["disconnectReason"] == "Client-side close frame status not set"


def test_permessage_deflate_is_not_negotiated(lambdacast):
    # GIVEN a client that offers permessage-deflate (the websockets client does by default)
    with connect(lambdacast.ws_url, compression="deflate") as ws:
        offered = ws.request.headers.get("Sec-WebSocket-Extensions") if ws.request else None
        # WHEN the handshake completes
        accepted = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
        # THEN no extension was accepted, and messages still flow
        assert offered is not None
        assert "permessage-deflate" in offered
        assert accepted is None
        ws.send("plain")
        assert ws.recv(timeout=15) == "plain"


def test_an_integration_slower_than_the_timeout_gets_the_timed_out_error_frame(lambdacast):
    # GIVEN a connected client and an integration timeout of 6 s (API Gateway's is 29 s)
    with connect(lambdacast.ws_url) as ws:
        connection_id = whoami(ws)
        # WHEN its message runs a handler for 10 s (the function's Timeout is 10 s: Lambda would let it run)
        ws.send("sleep")
        frame = json.loads(ws.recv(timeout=15))
    # THEN the client receives API Gateway's timeout error frame for this connection
    assert frame["message"] == "Endpoint request timed out"
    assert frame["connectionId"] == connection_id
    assert len(frame["requestId"]) == 16


def test_get_and_delete_on_connections_without_the_stage_prefix(lambdacast):
    # GIVEN a connected client and the @connections URL without the stage
    with connect(lambdacast.ws_url) as ws:
        connection_id = whoami(ws)
        base = lambdacast.management_url.rsplit("/", 1)[0]
        url = f"{base}/@connections/{connection_id}"
        # WHEN a backend GETs then DELETEs it there
        with urllib.request.urlopen(url, timeout=15) as response:
            info = json.loads(response.read())
        delete = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(delete, timeout=15) as response:
            deleted = response.status
        # THEN GET described this connection, DELETE closed it with 1000
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=15)
    assert info["identity"]["sourceIp"] == "127.0.0.1"
    assert "connectedAt" in info
    assert deleted == 204
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000
    # AND a second GET there is 410 Gone
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(url, timeout=15)
    assert gone.value.code == 410


@pytest.mark.parametrize(("query", "status"), [("crash=1", 500), ("refuse=403", 403)])
def test_a_refused_connect_fails_the_handshake_and_fires_no_disconnect(lambdacast, query, status):
    # GIVEN a $connect handler that raises (crash) or answers 403 (refuse)
    before = {i.connection_id for i in lambdacast.invocations_of("$connect")}
    # WHEN a client tries to connect
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{lambdacast.ws_url}?{query}&id={status}")
    # THEN the handshake is refused with that status
    assert refused.value.response.status_code == status
    connects = [i for i in lambdacast.invocations_of("$connect") if i.connection_id not in before]
    assert len(connects) == 1
    refused_id = connects[0].connection_id
    # AND no $disconnect fires for it (a connection that never opened): checked after a later
    # connection's $disconnect, which API Gateway would have delivered after the refused one's
    with connect(lambdacast.ws_url) as ws:
        later = whoami(ws)
    assert lambdacast.wait_for(lambda e: disconnect_of(e, later) is not None)
    assert disconnect_of(lambdacast, refused_id) is None


def test_a_connect_slower_than_the_integration_timeout_is_refused_with_504(lambdacast, tmp_path):
    # GIVEN a $connect handler that blocks until the test creates a file, and an integration timeout of 6 s
    release = tmp_path / "release"
    try:
        # WHEN a client connects
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{lambdacast.ws_url}?wait_for={release}", open_timeout=20)
    finally:
        release.touch()  # let the handler (which Lambda would let run on) return
    # THEN API Gateway stops waiting and refuses the handshake with 504
    assert refused.value.response.status_code == 504
    assert json.loads(refused.value.response.body)["message"] == "Endpoint request timed out"
