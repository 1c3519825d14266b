"""AWS_IAM on $connect: only SigV4-signed handshakes open, and the caller shows in the events' identity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from lambdacast_local.runtime_env import FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from lambdacast_local.testing import running_emulator

APP = Path(__file__).parent / "apps" / "iam" / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP


def signed_headers(url: str, key: str = FAKE_ACCESS_KEY, secret: str = FAKE_SECRET_KEY) -> dict[str, str]:
    request = AWSRequest(method="GET", url=url.replace("ws://", "http://"))
    SigV4Auth(Credentials(key, secret), "execute-api", "us-east-1").add_auth(request)
    return {name: value for name, value in request.headers.items() if name.lower() != "host"}


def test_unsigned_handshake_is_403(lambdacast):
    # WHEN a client connects without signing
    with pytest.raises(InvalidStatus) as refused:
        connect(lambdacast.ws_url)
    # THEN API Gateway refuses the handshake
    assert refused.value.response.status_code == 403


def test_handshake_signed_with_unknown_credentials_is_403(lambdacast):
    # WHEN the signature is made with credentials the emulator does not know
    with pytest.raises(InvalidStatus) as refused:
        connect(lambdacast.ws_url, additional_headers=signed_headers(lambdacast.ws_url, "AKIAOTHER", "x"))
    # THEN it is refused
    assert refused.value.response.status_code == 403


def test_signed_handshake_opens_and_events_carry_the_caller(lambdacast):
    # GIVEN a handshake signed with the local credentials
    with connect(lambdacast.ws_url, additional_headers=signed_headers(lambdacast.ws_url)) as ws:
        # WHEN a message is sent
        ws.send("who am I")
        identity = json.loads(ws.recv(timeout=15))
    # THEN the event's identity names the IAM caller
    assert identity["accessKey"] == FAKE_ACCESS_KEY
    assert identity["userArn"].startswith("arn:aws:iam::123456789012:")
    assert identity["sourceIp"] == "127.0.0.1"


def test_no_iam_auth_flag_opens_unsigned_handshakes_as_the_bypass_caller():
    # GIVEN the documented local bypass
    with running_emulator(APP, iam_auth=False) as emulator, connect(emulator.ws_url) as ws:
        # WHEN an unsigned client sends a message
        ws.send("who am I")
        identity = json.loads(ws.recv(timeout=15))
    # THEN it was let in, marked as the bypass caller
    assert identity["userArn"].endswith("local-bypass")
