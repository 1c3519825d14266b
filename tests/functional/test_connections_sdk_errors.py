"""Every @connections error reaches boto3 and the AWS SDK for JavaScript v3 as its modeled exception class.

A handler tells the errors apart by class (``except client.exceptions.GoneException``,
``err instanceof GoneException`` / ``err.name === "GoneException"``), so the class each SDK builds from
the emulator's answer is what matters, not only the status code. ``@connections`` requires SigV4 here
(``management_iam_auth``, with this run's secret), so ForbiddenException can be provoked with a wrong one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from websockets.sync.client import connect

from lambdacast_local.runtimes.node import NodeRuntime
from lambdacast_local.testing import RunningEmulator

APP = Path(__file__).parent / "apps" / "echo" / "template.yaml"
TOO_LARGE = 128 * 1024 + 1

# One call per case: (operation, connection id: "live" or "unknown", data size, signed with this run's
# secret, faults spec).
CASES = {
    "GoneException": ("post", "unknown", 1, True, ""),
    "PayloadTooLargeException": ("post", "live", TOO_LARGE, True, ""),
    "LimitExceededException": ("post", "live", 1, True, "connections:429=1"),
    "ForbiddenException": ("post", "live", 1, False, ""),
    "GoneException on GetConnection": ("get", "unknown", 0, True, ""),
    "GoneException on DeleteConnection": ("delete", "unknown", 0, True, ""),
}

NODE_SCRIPT = r"""
const sdk = require("@aws-sdk/client-apigatewaymanagementapi");
const [endpoint, secret, operation, connectionId, size] = process.argv.slice(1);
const client = new sdk.ApiGatewayManagementApiClient({
  endpoint, region: "us-east-1", maxAttempts: 1,
  credentials: { accessKeyId: process.env.KEY_ID, secretAccessKey: secret },
});
const commands = {
  post: () => new sdk.PostToConnectionCommand({
    ConnectionId: connectionId, Data: Buffer.alloc(Number(size), 120),
  }),
  get: () => new sdk.GetConnectionCommand({ ConnectionId: connectionId }),
  delete: () => new sdk.DeleteConnectionCommand({ ConnectionId: connectionId }),
};
client.send(commands[operation]()).then(
  () => console.log(JSON.stringify({ name: null })),
  (err) => console.log(JSON.stringify({
    name: err.name,
    modeled: typeof sdk[err.name] === "function" && err instanceof sdk[err.name],
    status: err.$metadata && err.$metadata.httpStatusCode,
  })),
);
"""


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {"management_iam_auth": True}


@pytest.fixture(scope="module")
def live_id(lambdacast: RunningEmulator) -> Any:
    with connect(lambdacast.ws_url) as ws:
        ws.send("whoami")
        yield ws.recv(timeout=15)


def _credentials(lambdacast: RunningEmulator, case: tuple[Any, ...]) -> tuple[str, str]:
    key_id, secret = lambdacast.emulator.credentials
    return key_id, secret if case[3] else "not-the-secret"


def _call_boto3(lambdacast: RunningEmulator, case: tuple[Any, ...], connection_id: str) -> Exception | None:
    operation, size = case[0], case[2]
    key_id, secret = _credentials(lambdacast, case)
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=lambdacast.management_url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=boto3.session.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    try:
        if operation == "post":
            client.post_to_connection(ConnectionId=connection_id, Data=b"x" * size)
        elif operation == "get":
            client.get_connection(ConnectionId=connection_id)
        else:
            client.delete_connection(ConnectionId=connection_id)
    except Exception as error:  # the class is what the test inspects
        return error
    return None


def _call_sdk_v3(lambdacast: RunningEmulator, case: tuple[Any, ...], connection_id: str) -> dict[str, Any]:
    operation, size = case[0], case[2]
    key_id, secret = _credentials(lambdacast, case)
    modules = NodeRuntime._sdk_entry() / "node_modules"  # the copy `make prepare` installs for handlers
    node = shutil.which("node")
    assert node is not None, "node is not on PATH (the Node.js test apps need it too)"
    assert modules.is_dir(), f"the AWS SDK v3 copy is missing at {modules}: run `make prepare` first"
    done = subprocess.run(
        [node, "-e", NODE_SCRIPT, lambdacast.management_url, secret, operation, connection_id, str(size)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"NODE_PATH": str(modules), "KEY_ID": key_id, "PATH": str(Path(node).parent)},
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _prepare(lambdacast: RunningEmulator, case: tuple[Any, ...], live_id: str) -> str:
    lambdacast.faults.configure(case[4], 1)
    return live_id if case[1] == "live" else "AAAAAAAAAAAAAAA="


@pytest.mark.parametrize("case_name", list(CASES))
def test_boto3_raises_the_modeled_exception_class(lambdacast, live_id, case_name):
    # GIVEN a call that @connections refuses (unknown id, too large, throttled, badly signed)
    case = CASES[case_name]
    expected = case_name.split()[0]
    connection_id = _prepare(lambdacast, case, live_id)
    # WHEN boto3 makes it
    try:
        error = _call_boto3(lambdacast, case, connection_id)
    finally:
        lambdacast.faults.configure("")
    # THEN it raises the service model's exception class of that name
    client = boto3.client("apigatewaymanagementapi", region_name="us-east-1")
    assert isinstance(error, getattr(client.exceptions, expected)), repr(error)


@pytest.mark.parametrize("case_name", list(CASES))
def test_the_aws_sdk_v3_for_javascript_throws_the_modeled_exception_class(lambdacast, live_id, case_name):
    # GIVEN the same refused call
    case = CASES[case_name]
    expected = case_name.split()[0]
    connection_id = _prepare(lambdacast, case, live_id)
    # WHEN the SDK v3 client Lambda's Node.js runtimes bundle makes it
    try:
        result = _call_sdk_v3(lambdacast, case, connection_id)
    finally:
        lambdacast.faults.configure("")
    # THEN it throws an instance of the modeled exception class, with the status AWS documents for it
    statuses = {"GoneException": 410, "PayloadTooLargeException": 413, "LimitExceededException": 429}
    assert result == {"name": expected, "modeled": True, "status": statuses.get(expected, 403)}
