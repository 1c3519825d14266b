"""Node.js chat apps, unmodified, end to end: CommonJS and ES modules, the SDK v3, DynamoDB, @connections.

Both apps build their ``@connections`` endpoint as ``https://{apiId}.execute-api.{region}.amazonaws.com``
from the event (as AWS's chat sample does), so a message arrives only if that hostname reached the
emulator; no environment variable carries it.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import pytest
from websockets.sync.client import ClientConnection, connect

from lambdacast_local.runtime_env import FAKE_ACCESS_KEY, FAKE_SECRET_KEY

APPS = Path(__file__).parent / "apps"
TABLES = {"node-chat-cjs": "ConnectionsTable", "node-chat-esm": "chat_connections"}


@pytest.fixture(scope="module", params=sorted(TABLES))
def lambdacast_template(request: pytest.FixtureRequest) -> Path:
    return APPS / request.param / "template.yaml"


def table_of(lambdacast: Any) -> str:
    return TABLES[lambdacast.emulator.options.template.parent.name]


def connection_ids(lambdacast: Any) -> set[str]:
    client = boto3.client(
        "dynamodb",
        endpoint_url=lambdacast.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id=FAKE_ACCESS_KEY,
        aws_secret_access_key=FAKE_SECRET_KEY,
    )
    items = client.scan(TableName=table_of(lambdacast))["Items"]
    return {item["connectionId"]["S"] for item in items}


def send(ws: ClientConnection, text: str) -> None:
    ws.send(json.dumps({"action": "sendmessage", "data": text}))


def test_a_message_reaches_every_connected_client(lambdacast):
    with ExitStack() as stack:
        # GIVEN three clients connected (each recorded by $connect in the DynamoDB table)
        clients = [stack.enter_context(connect(lambdacast.ws_url, open_timeout=30)) for _ in range(3)]
        # WHEN the first one sends a message
        send(clients[0], "hello everyone")
        # THEN every client, the sender included, receives it once, from the same sender
        frames = [json.loads(ws.recv(timeout=30)) for ws in clients]
    assert [frame["data"] for frame in frames] == ["hello everyone"] * 3
    assert len({frame["from"] for frame in frames}) == 1
    # AND every invocation behind it succeeded
    assert all(inv.ok for inv in lambdacast.invocations_of("sendmessage"))


def test_disconnect_removes_the_connection_from_the_table(lambdacast):
    # GIVEN two connected clients, the second one's id learnt from its own message
    with connect(lambdacast.ws_url, open_timeout=30) as stays:
        with connect(lambdacast.ws_url, open_timeout=30) as leaves:
            send(leaves, "bye")
            departed = json.loads(leaves.recv(timeout=30))["from"]
            assert json.loads(stays.recv(timeout=30)) == {"from": departed, "data": "bye"}
            assert departed in connection_ids(lambdacast)
        # WHEN the second one closes
        assert lambdacast.wait_for(lambda emu: departed not in connection_ids(emu), timeout=30)
        # THEN its row is gone ($disconnect deleted it), and the other still gets what it sends itself
        send(stays, "still here")
        frame = json.loads(stays.recv(timeout=30))
    assert frame["data"] == "still here"
    assert frame["from"] != departed
    gone = [inv for inv in lambdacast.invocations_of("$disconnect") if inv.connection_id == departed]
    assert len(gone) == 1
    assert gone[0].ok


def test_node_workers_start_cold_once_then_stay_warm(lambdacast):
    # GIVEN the connections opened so far in this module
    connects = lambdacast.invocations_of("$connect")
    # THEN the first $connect was a cold start (its init time logged) and later ones reused a warm worker
    assert connects[0].cold
    assert connects[0].init_ms > 0
    assert any(not inv.cold for inv in connects)
    assert all(inv.ok for inv in connects)
