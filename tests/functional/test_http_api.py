"""HTTP APIs from the template: routes, payload format 2.0, AWS_IAM verified with SigV4."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from websockets.sync.client import connect

from lambdacast_local.runtime_env import FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from lambdacast_local.testing import running_emulator

APP = Path(__file__).parent / "apps" / "http" / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {"http_port": 0}


def send(url: str, method: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


def signed(
    url: str, body: bytes, key: str = FAKE_ACCESS_KEY, secret: str = FAKE_SECRET_KEY
) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "text/plain"})
    SigV4Auth(Credentials(key, secret), "execute-api", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def whoami(ws: Any) -> str:
    ws.send("who")
    return str(ws.recv(timeout=15))


def test_signed_request_to_iam_route_runs_the_function(lambdacast):
    # GIVEN a connected WebSocket client
    with connect(lambdacast.ws_url) as ws:
        connection_id = whoami(ws)
        # WHEN a backend POSTs a SigV4-signed request to the AWS_IAM route
        url = f"{lambdacast.http_url}/v1/connections/{connection_id}/messages"
        status, body, _ = send(url, "POST", b"from the backend", signed(url, b"from the backend"))
        # THEN the function ran with the caller's identity and its push reached the socket
        assert status == 200
        assert json.loads(body)["caller"].startswith("arn:aws:iam::123456789012:")
        assert ws.recv(timeout=15) == "from the backend"


def test_unsigned_request_to_iam_route_is_403(lambdacast):
    # WHEN the request carries no signature
    url = f"{lambdacast.http_url}/v1/connections/AAAAAAAAAAAAAAA=/messages"
    status, body, _ = send(url, "POST", b"x", {})
    # THEN API Gateway's 403, and no function ran
    assert status == 403
    assert "Authorization" in json.loads(body)["message"]


def test_tampered_body_fails_the_signature(lambdacast):
    # GIVEN a request signed for one body
    url = f"{lambdacast.http_url}/v1/connections/AAAAAAAAAAAAAAA=/messages"
    headers = signed(url, b"original")
    # WHEN another body is sent with that signature
    status, body, _ = send(url, "POST", b"tampered", headers)
    # THEN it is refused
    assert status == 403
    assert "signature" in json.loads(body)["message"]


def test_unknown_access_key_is_403(lambdacast):
    # WHEN the request is signed with credentials the emulator does not know
    url = f"{lambdacast.http_url}/v1/connections/AAAAAAAAAAAAAAA=/messages"
    status, body, _ = send(url, "POST", b"x", signed(url, b"x", key="AKIAOTHER", secret="other"))
    # THEN it is refused like an invalid token
    assert status == 403
    assert "AKIAOTHER" in json.loads(body)["message"]


def test_open_route_gets_a_payload_v2_event_with_path_parameters(lambdacast):
    # WHEN a greedy-path route is called with a query string
    url = f"{lambdacast.http_url}/v1/inspect/a/b?x=1&x=2"
    status, body, headers = send(url, "PUT", b'{"k": 1}', {"Content-Type": "application/json"})
    event = json.loads(body)
    # THEN the function's statusCode and headers come back, and its event is a valid 2.0 payload
    assert status == 201
    assert headers["x-route"] == "ANY /inspect/{proxy+}"
    model = APIGatewayProxyEventV2Model.model_validate(event)
    assert model.pathParameters == {"proxy": "a/b"}
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["requestContext"]["http"]["method"] == "PUT"
    assert event["body"] == '{"k": 1}'


def test_unknown_path_is_404(lambdacast):
    # WHEN no route matches
    status, _, _ = send(f"{lambdacast.http_url}/v1/nowhere", "GET", b"", {})
    # THEN 404
    assert status == 404


def test_no_iam_auth_flag_lets_unsigned_requests_through():
    # GIVEN the documented local bypass
    with running_emulator(APP, http_port=0, iam_auth=False) as emulator, connect(emulator.ws_url) as ws:
        connection_id = whoami(ws)
        url = f"{emulator.http_url}/v1/connections/{connection_id}/messages"
        # WHEN an unsigned request hits the AWS_IAM route
        status, body, _ = send(url, "POST", b"bypassed", {})
        # THEN it runs, marked as the bypass caller
        assert status == 200
        assert json.loads(body)["caller"].endswith("local-bypass")
        assert ws.recv(timeout=15) == "bypassed"


@pytest.mark.skipif(
    shutil.which("curl") is None, reason="SKIPPED: curl is not installed, cannot test --aws-sigv4"
)
def test_curl_aws_sigv4_with_the_local_credentials_is_accepted(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url) as ws:
        connection_id = whoami(ws)
        url = f"{lambdacast.http_url}/v1/connections/{connection_id}/messages"
        # WHEN the documented curl command signs the request (the path contains '=')
        result = subprocess.run(
            [
                "curl",
                "-s",
                "-w",
                "\n%{http_code}",
                "--aws-sigv4",
                "aws:amz:us-east-1:execute-api",
                "--user",
                f"{FAKE_ACCESS_KEY}:{FAKE_SECRET_KEY}",
                "-X",
                "POST",
                "--data",
                "via curl",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        # THEN the signature verifies and the message is delivered
        assert result.stdout.rsplit("\n", 1)[-1] == "200"
        assert ws.recv(timeout=15) == "via curl"
