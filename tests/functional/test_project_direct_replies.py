"""Replies to the caller are the ``$default`` route's response: no ``@connections`` call carries them.

The project's template through the emulator, counting the ``@connections`` calls the emulator served
(``RunningEmulator.management_calls``) around each exchange. A reply that went through ``@connections``
would be a ``POST`` counted before the handler returned; the route response is not a call at all.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from lambdacast_local.testing import RunningEmulator

ROOT = Path(__file__).resolve().parents[2]
EXCHANGES = 5


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return ROOT / "template.yaml"


async def _request(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    """Send a frame and return the frame answering its ``id`` (others, such as messages, are skipped)."""
    await ws.send(json.dumps(frame))
    async with asyncio.timeout(20):
        while True:
            reply: dict[str, Any] = json.loads(await ws.recv())
            if reply.get("id") == frame["id"]:
                return reply


async def _client(emulator: RunningEmulator) -> ClientConnection:
    ws = await websockets.connect(emulator.ws_url)
    welcome = await _request(ws, {"action": "hello", "id": "hello"})
    assert welcome["type"] == "welcome", welcome
    return ws


def _posts(emulator: RunningEmulator) -> int:
    return emulator.management_calls()["post"]


async def test_ping_is_answered_without_any_connections_call(lambdacast: RunningEmulator) -> None:
    # GIVEN a connected client
    ws = await _client(lambdacast)
    try:
        before = _posts(lambdacast)
        # WHEN it pings several times
        pongs = [await _request(ws, {"action": "ping", "id": f"p{n}"}) for n in range(EXCHANGES)]
        # THEN every ping got its pong, and the emulator served no @connections POST meanwhile
        assert [pong["type"] for pong in pongs] == ["pong"] * EXCHANGES
        assert _posts(lambdacast) - before == 0
    finally:
        await ws.close()


async def test_publish_to_a_channel_without_other_subscribers_posts_nothing(
    lambdacast: RunningEmulator,
) -> None:
    # GIVEN a client subscribed, alone, to a channel
    ws = await _client(lambdacast)
    channel = f"direct-{uuid.uuid4().hex[:10]}"
    try:
        subscribed = await _request(ws, {"action": "subscribe", "channel": channel, "id": "s"})
        assert subscribed["type"] == "subscribed", subscribed
        before = _posts(lambdacast)
        # WHEN it publishes several messages (no echo) and waits for each ack
        acks = [
            await _request(ws, {"action": "publish", "channel": channel, "data": {"n": n}, "id": f"m{n}"})
            for n in range(EXCHANGES)
        ]
        # THEN each publish was acknowledged, with no recipient and no @connections POST at all
        assert [ack["type"] for ack in acks] == ["ack"] * EXCHANGES
        assert [ack["delivered"] for ack in acks] == [0] * EXCHANGES
        assert _posts(lambdacast) - before == 0
    finally:
        await ws.close()


async def test_a_publish_posts_to_the_other_subscriber_only_never_to_the_publisher(
    lambdacast: RunningEmulator,
) -> None:
    # GIVEN a publisher and one other subscriber on a channel
    publisher, other = await _client(lambdacast), await _client(lambdacast)
    channel = f"direct-{uuid.uuid4().hex[:10]}"
    try:
        for ws in (publisher, other):
            subscribed = await _request(ws, {"action": "subscribe", "channel": channel, "id": "s"})
            assert subscribed["type"] == "subscribed", subscribed
        before = _posts(lambdacast)
        # WHEN the publisher publishes once
        ack = await _request(publisher, {"action": "publish", "channel": channel, "data": {}, "id": "m"})
        async with asyncio.timeout(20):
            message = json.loads(await other.recv())
        # THEN the other subscriber got the message through exactly one @connections POST,
        # and the publisher's ack through none (the count would be 2 if the ack were posted)
        assert ack["type"] == "ack"
        assert ack["delivered"] == 1
        assert message["type"] == "message"
        assert message["channel"] == channel
        assert _posts(lambdacast) - before == 1
    finally:
        await publisher.close()
        await other.close()
