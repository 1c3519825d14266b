"""The project's server-side publish (``POST /channels/{channel}/messages``, AWS_IAM) through the emulator.

Signed by the project's own caller helper (``lambdacast.client_publish``) with the emulator's fake
credentials, the only ones its SigV4 check knows (``lambdacast_local.runtime_env``); delivered to real
sockets.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials
from lambdacast.client_publish import PublishError, publish
from websockets.sync.client import ClientConnection, connect

from lambdacast_local.runtime_env import FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from lambdacast_local.testing import RunningEmulator

ROOT = Path(__file__).resolve().parents[2]
LOCAL_CREDENTIALS = Credentials(FAKE_ACCESS_KEY, FAKE_SECRET_KEY)
PUBLISH_ROUTE = "POST /channels/{channel}/messages"


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return ROOT / "template.yaml"


def _subscribed(lambdacast: RunningEmulator, channel: str, stack: contextlib.ExitStack) -> ClientConnection:
    ws = stack.enter_context(connect(lambdacast.ws_url))
    ws.send(json.dumps({"action": "subscribe", "channel": channel, "id": "s"}))
    reply = json.loads(ws.recv(timeout=20))
    assert reply["type"] == "subscribed", reply
    return ws


@pytest.fixture
def subscribers(lambdacast: RunningEmulator) -> Iterator[tuple[str, list[ClientConnection]]]:
    channel = f"news-{uuid.uuid4().hex[:10]}"
    with contextlib.ExitStack() as stack:
        yield channel, [_subscribed(lambdacast, channel, stack) for _ in range(3)]


def _publish_invocations(lambdacast: RunningEmulator) -> list[Any]:
    return [inv for inv in list(lambdacast.invocations) if inv.label == PUBLISH_ROUTE]


def _frames_before_pong(ws: ClientConnection) -> list[dict[str, Any]]:
    """Ping, and return every frame that arrived before the pong (posts to a socket keep their order)."""
    ws.send(json.dumps({"action": "ping", "id": "drain"}))
    frames = []
    while (frame := json.loads(ws.recv(timeout=20))).get("id") != "drain":
        frames.append(frame)
    return frames


def test_a_signed_publish_is_delivered_to_every_subscribed_socket(
    lambdacast: RunningEmulator, subscribers: tuple[str, list[ClientConnection]]
) -> None:
    # GIVEN three sockets subscribed to a channel
    channel, sockets = subscribers
    # WHEN a backend publishes there through the IAM-signed HTTP API with the project's helper
    result = publish(
        lambdacast.http_url,
        channel,
        {"text": "deploy finished"},
        region="us-east-1",
        credentials=LOCAL_CREDENTIALS,
    )
    # THEN it is numbered and delivered to all three, from no connection and no user
    assert result.channel == channel
    assert result.seq == 1
    assert result.delivered == 3
    for ws in sockets:
        message = json.loads(ws.recv(timeout=20))
        assert message["type"] == "message"
        assert message["seq"] == 1
        assert message["data"] == {"text": "deploy finished"}
        assert message["from"] == {"userId": None}
    # AND it went through the publish route's function
    assert any(inv.ok for inv in _publish_invocations(lambdacast))


def test_a_publish_with_a_bad_signature_is_refused_and_delivers_nothing(
    lambdacast: RunningEmulator, subscribers: tuple[str, list[ClientConnection]]
) -> None:
    # GIVEN subscribed sockets, and credentials whose secret is wrong
    channel, sockets = subscribers
    wrong = Credentials(FAKE_ACCESS_KEY, "not-the-secret-key")
    publish_runs = len(_publish_invocations(lambdacast))
    # WHEN a backend publishes with them
    with pytest.raises(PublishError) as refused:
        publish(lambdacast.http_url, channel, {"text": "forged"}, region="us-east-1", credentials=wrong)
    # THEN API Gateway refuses it with 403, the function never runs, and no socket receives anything
    assert refused.value.status == 403
    assert len(_publish_invocations(lambdacast)) == publish_runs
    assert all(_frames_before_pong(ws) == [] for ws in sockets)
