"""``lambdacast local --host`` beyond loopback: ``@connections`` requires SigV4 with this run's own key.

The emulator is never bound beyond 127.0.0.1 in tests: ``management_iam_auth=True`` turns on exactly
what a non-loopback ``--host`` turns on (tests/unit/local/test_local_exposure.py checks that mapping).
The project's template runs here, so every reply the handlers post (``welcome``, messages) is signed
by lambdacast's own transport and verified by the emulator.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from websockets.sync.client import ClientConnection, connect

from lambdacast_local.runtime_env import FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from lambdacast_local.testing import RunningEmulator


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {"management_iam_auth": True}


def _hello(ws: ClientConnection) -> str:
    ws.send(json.dumps({"action": "hello", "id": "h"}))
    welcome = json.loads(ws.recv(timeout=30))
    assert welcome["type"] == "welcome"
    return str(welcome["connectionId"])


def _management(emulator: RunningEmulator, secret: str) -> Any:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=emulator.management_url,
        region_name="us-east-1",
        aws_access_key_id=FAKE_ACCESS_KEY,
        aws_secret_access_key=secret,
    )


def _unsigned(url: str, method: str, data: bytes | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, {}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}") | {"type": error.headers.get("x-amzn-ErrorType")}


def _nothing_more(ws: ClientConnection) -> bool:
    ws.send(json.dumps({"action": "ping", "id": "p"}))  # the next frame is the pong, not a forged post
    return json.loads(ws.recv(timeout=30))["type"] == "pong"


def test_an_unsigned_post_is_refused_and_delivers_nothing(lambdacast: RunningEmulator) -> None:
    # GIVEN a connected client (its welcome was posted, signed, by the project's handler)
    with connect(lambdacast.ws_url) as ws:
        connection_id = _hello(ws)
        # WHEN someone on the network posts to it without a signature (the attack)
        status, error = _unsigned(
            f"{lambdacast.management_url}/@connections/{connection_id}", "POST", b'{"type":"forged"}'
        )
        # THEN it is refused with 403 and the client receives nothing
        assert (status, error["type"]) == (403, "ForbiddenException")
        assert _nothing_more(ws)


def test_an_unsigned_delete_is_refused_and_the_connection_stays(lambdacast: RunningEmulator) -> None:
    # GIVEN a connected client
    with connect(lambdacast.ws_url) as ws:
        connection_id = _hello(ws)
        # WHEN someone tries to close it without a signature
        status, _ = _unsigned(f"{lambdacast.management_url}/@connections/{connection_id}", "DELETE")
        # THEN it is refused and the connection still answers
        assert status == 403
        assert _nothing_more(ws)


def test_a_post_signed_with_the_documented_key_is_refused(lambdacast: RunningEmulator) -> None:
    # GIVEN a connected client, and a caller signing with the key printed in docs/local.md
    with connect(lambdacast.ws_url) as ws:
        connection_id = _hello(ws)
        # WHEN it posts
        with pytest.raises(ClientError) as refused:
            _management(lambdacast, FAKE_SECRET_KEY).post_to_connection(ConnectionId=connection_id, Data=b"x")
        # THEN the signature does not verify: this run's workers have a key of their own
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert lambdacast.emulator.credentials[1] != FAKE_SECRET_KEY
        assert _nothing_more(ws)


def test_a_post_signed_with_this_runs_key_is_delivered(lambdacast: RunningEmulator) -> None:
    # GIVEN a connected client and the key the emulator printed at start
    _, secret = lambdacast.emulator.credentials
    with connect(lambdacast.ws_url) as ws:
        connection_id = _hello(ws)
        # WHEN a backend signs with it (boto3)
        _management(lambdacast, secret).post_to_connection(ConnectionId=connection_id, Data=b'{"type":"ok"}')
        # THEN the frame is delivered
        assert json.loads(ws.recv(timeout=30)) == {"type": "ok"}


def test_the_projects_fanout_still_reaches_subscribers(lambdacast: RunningEmulator) -> None:
    # GIVEN a subscriber and a publisher on one channel
    with connect(lambdacast.ws_url) as reader, connect(lambdacast.ws_url) as writer:
        for ws in (reader, writer):
            ws.send(json.dumps({"action": "subscribe", "channel": "signed-room", "id": "s"}))
            assert json.loads(ws.recv(timeout=30))["type"] == "subscribed"
        # WHEN the writer publishes (the handler posts the ack and the message, signed)
        writer.send(json.dumps({"action": "publish", "channel": "signed-room", "data": "hi", "id": "p"}))
        ack = json.loads(writer.recv(timeout=30))
        message = json.loads(reader.recv(timeout=30))
        # THEN both arrive (the writer does not hear its own message): lambdacast's signed posts verify
        assert (ack["type"], ack["delivered"]) == ("ack", 1)
        assert (message["type"], message["data"]) == ("message", "hi")
