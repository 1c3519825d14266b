"""The admin API (``DELETE /connections/{id}``, ``DELETE /users/{sub}/connections``) through the emulator.

Requests are SigV4-signed with the emulator's fake credentials (the IAM check of the HTTP API); the
connections are real sockets, closed by the admin function's signed ``DELETE @connections``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jwt
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from lambdacast_local.runtime_env import FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from lambdacast_local.testing import RunningEmulator

ROOT = Path(__file__).resolve().parents[2]
SECRET_PARAMETER = "/lambdacast/test/admin-secret"
SECRET = "admin-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return ROOT / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {
        "parameter_overrides": {"AuthMode": "optional", "AuthSecretParameterName": SECRET_PARAMETER},
        "ssm_parameters": {SECRET_PARAMETER: SECRET},
    }


def _token(user: str) -> str:
    now = int(time.time())
    claims = {"sub": user, "aud": "lambdacast", "iat": now, "exp": now + 600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def _admin(lambdacast: RunningEmulator, path: str, *, signed: bool = True) -> tuple[int, dict[str, Any]]:
    request = AWSRequest(method="DELETE", url=f"{lambdacast.http_url}{path}")
    if signed:
        SigV4Auth(Credentials(FAKE_ACCESS_KEY, FAKE_SECRET_KEY), "execute-api", "us-east-1").add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(prepared.url, headers=dict(prepared.headers.items()), method="DELETE")
    try:
        with urllib.request.urlopen(req, timeout=20) as reply:
            raw = reply.read()
            return reply.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _hello(ws: ClientConnection) -> dict[str, Any]:
    ws.send(json.dumps({"action": "hello", "id": "h"}))
    return dict(json.loads(ws.recv(timeout=20)))


def _closed(ws: ClientConnection) -> bool:
    try:
        ws.recv(timeout=20)
    except ConnectionClosed:
        return True
    return False


def test_an_operator_closes_one_connection(lambdacast: RunningEmulator) -> None:
    # GIVEN an open socket
    with connect(lambdacast.ws_url) as ws:
        connection_id = _hello(ws)["connectionId"]
        disconnects = len(lambdacast.invocations_of("$disconnect"))
        # WHEN an operator deletes it through the signed admin API
        status, _ = _admin(lambdacast, f"/connections/{connection_id}")
        # THEN 204, the socket is closed and $disconnect ran
        assert status == 204
        assert _closed(ws)
    assert lambdacast.wait_for(lambda emulator: len(emulator.invocations_of("$disconnect")) > disconnects)
    # AND closing it again answers 404
    assert _admin(lambdacast, f"/connections/{connection_id}")[0] == 404


def test_an_operator_closes_and_bans_a_user_without_touching_anyone_else(lambdacast: RunningEmulator) -> None:
    # GIVEN two tabs of user-42 and one of user-7
    url = lambdacast.ws_url
    with (
        connect(f"{url}?token={_token('user-42')}") as tab1,
        connect(f"{url}?token={_token('user-42')}") as tab2,
        connect(f"{url}?token={_token('user-7')}") as other,
    ):
        assert {_hello(tab1)["userId"], _hello(tab2)["userId"], _hello(other)["userId"]} == {
            "user-42",
            "user-7",
        }
        # WHEN an operator closes user-42's connections and bans it for a minute
        status, body = _admin(lambdacast, "/users/user-42/connections?ban=60")
        # THEN both tabs are closed, the other user is still served
        assert (status, body["closed"]) == (200, 2)
        assert _closed(tab1)
        assert _closed(tab2)
        assert _hello(other)["type"] == "welcome"
    # AND user-42 cannot connect again during the ban (403 at the handshake)
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{url}?token={_token('user-42')}").close()
    assert refused.value.response.status_code == 403


def test_an_unsigned_admin_request_is_refused_by_the_api(lambdacast: RunningEmulator) -> None:
    # GIVEN an open socket WHEN someone without AWS credentials asks to close it
    with connect(lambdacast.ws_url) as ws:
        connection_id = _hello(ws)["connectionId"]
        status, _ = _admin(lambdacast, f"/connections/{connection_id}", signed=False)
        # THEN the HTTP API refuses it (IAM) and the socket stays open
        assert status == 403
        assert _hello(ws)["type"] == "welcome"
