"""The project's protocol end to end: real sockets, the project's template, its real handlers, the emulator.

AuthMode ``optional`` with the emulator's dev token minter: anonymous sockets and signed-in users (for
``forbidden`` and presence) on one emulator.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from lambdacast_local.testing import RunningEmulator

ROOT = Path(__file__).resolve().parents[2]
SECRET_PARAMETER = "/lambdacast/functional/protocol-secret"
FAN_OUT_SOCKETS = 200
FAN_OUT_MESSAGES = 5


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return ROOT / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {
        "parameter_overrides": {"AuthMode": "optional", "AuthSecretParameterName": SECRET_PARAMETER},
        "dev_token_parameter": SECRET_PARAMETER,
    }


def _channel(prefix: str = "") -> str:
    return f"{prefix}proto-{uuid.uuid4().hex[:10]}"


async def _send(ws: ClientConnection, frame: Any) -> None:
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))


async def _next(ws: ClientConnection, **match: Any) -> dict[str, Any]:
    """The next frame whose fields equal ``match`` (frames before it are skipped)."""
    async with asyncio.timeout(20):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if all(frame.get(k) == v for k, v in match.items()):
                return frame


async def _request(ws: ClientConnection, frame: Any, request_id: str) -> dict[str, Any]:
    await _send(ws, frame)
    return await _next(ws, id=request_id)


async def _mint(emulator: RunningEmulator, name: str) -> dict[str, Any]:
    base = emulator.ws_url.replace("ws://", "http://").rsplit("/", 1)[0]
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/_lambdacast/dev-token", json={"name": name}) as response,
    ):
        assert response.status == 200
        minted: dict[str, Any] = await response.json()
        return minted


async def _subscribe(ws: ClientConnection, channel: str) -> dict[str, Any]:
    reply = await _request(ws, {"action": "subscribe", "channel": channel, "id": "sub"}, "sub")
    assert reply["type"] == "subscribed", reply
    return reply


async def test_hello_is_answered_with_welcome(lambdacast: RunningEmulator) -> None:
    # GIVEN an anonymous socket
    async with websockets.connect(lambdacast.ws_url) as ws:
        # WHEN it says hello
        welcome = await _request(ws, {"action": "hello", "id": "h1"}, "h1")
    # THEN welcome carries its connection id, no user, the protocol version and the limits
    assert welcome["type"] == "welcome"
    assert len(welcome["connectionId"]) == 16
    assert welcome["userId"] is None
    assert welcome["protocol"] == 1
    assert welcome["limits"] == {"maxDataBytes": 30720, "maxChannels": 100}


async def test_subscribe_publish_ack_and_delivery(lambdacast: RunningEmulator) -> None:
    # GIVEN two sockets subscribed to a fresh channel
    channel = _channel()
    async with websockets.connect(lambdacast.ws_url) as alice, websockets.connect(lambdacast.ws_url) as bob:
        assert (await _subscribe(alice, channel))["seq"] == 0
        await _subscribe(bob, channel)
        # WHEN alice publishes with echo
        frame = {"action": "publish", "channel": channel, "data": {"t": 1}, "echo": True, "id": "p1"}
        await _send(alice, frame)
        # THEN both receive the message with seq 1 and alice its ack, counting both deliveries
        own = await _next(alice, type="message")
        ack = await _next(alice, id="p1")
        other = await _next(bob, type="message")
    assert own["seq"] == other["seq"] == 1
    assert other["data"] == {"t": 1}
    assert other["channel"] == channel
    assert ack == {
        "type": "ack",
        "id": "p1",
        "channel": channel,
        "seq": 1,
        "epoch": other["epoch"],
        "delivered": 2,
    }


async def test_unsubscribe_stops_delivery_and_publishing(lambdacast: RunningEmulator) -> None:
    # GIVEN a socket subscribed to a channel
    channel = _channel()
    async with websockets.connect(lambdacast.ws_url) as ws:
        await _subscribe(ws, channel)
        # WHEN it unsubscribes
        left = await _request(ws, {"action": "unsubscribe", "channel": channel, "id": "u1"}, "u1")
        # THEN unsubscribed, and a publish there is refused with not_subscribed
        refused = await _request(ws, {"action": "publish", "channel": channel, "data": 1, "id": "p2"}, "p2")
    assert left == {"type": "unsubscribed", "id": "u1", "channel": channel}
    assert refused["type"] == "error"
    assert refused["code"] == "not_subscribed"


async def test_ping_is_answered_with_pong(lambdacast: RunningEmulator) -> None:
    async with websockets.connect(lambdacast.ws_url) as ws:
        # WHEN a socket pings
        before = int(time.time() * 1000)
        pong = await _request(ws, {"action": "ping", "id": "k1"}, "k1")
    # THEN pong carries the id and the server's time
    assert pong["type"] == "pong"
    assert pong["ts"] >= before - 60_000


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("this is not json", "invalid_json"),
        ('{"action": "ping", "id": "e1"', "invalid_json"),
        ('["an", "array"]', "invalid_frame"),
        ({"action": "publish", "channel": "x", "id": "e1"}, "invalid_frame"),
        ({"action": "dance", "id": "e1"}, "unknown_action"),
        ({"action": "subscribe", "channel": "no spaces", "id": "e1"}, "invalid_channel"),
        ({"action": "publish", "channel": "nobody-here", "data": 1, "id": "e1"}, "not_subscribed"),
        ({"action": "subscribe", "channel": "private-secret", "id": "e1"}, "forbidden"),
        ({"action": "publish", "channel": "big", "data": "x" * 31_000, "id": "e1"}, "too_large"),
    ],
)
async def test_every_client_error_code_is_reachable(
    lambdacast: RunningEmulator, frame: Any, code: str
) -> None:
    # GIVEN an anonymous socket
    async with websockets.connect(lambdacast.ws_url) as ws:
        # WHEN it sends the bad frame
        await _send(ws, frame)
        reply = await _next(ws, type="error")
        # AND the socket still works afterwards
        pong = await _request(ws, {"action": "ping", "id": "after"}, "after")
    # THEN the error names that code, with the frame's id when it had a readable one
    assert reply["code"] == code
    assert isinstance(reply["message"], str)
    assert reply["message"]
    if isinstance(frame, dict):
        assert reply["id"] == "e1"
    assert pong["type"] == "pong"


async def test_fan_out_to_200_real_sockets_delivers_each_message_exactly_once(
    lambdacast: RunningEmulator,
) -> None:
    # GIVEN 200 real sockets subscribed to one channel through the protocol
    channel = _channel()
    sockets = [await websockets.connect(lambdacast.ws_url) for _ in range(FAN_OUT_SOCKETS)]
    try:
        await asyncio.gather(*(_subscribe(ws, channel) for ws in sockets))
        # WHEN one of them publishes N messages
        publisher = sockets[0]
        started = time.perf_counter()
        acks = []
        for n in range(FAN_OUT_MESSAGES):
            frame = {"action": "publish", "channel": channel, "data": n, "id": f"p{n}"}
            acks.append(await _request(publisher, frame, f"p{n}"))

        async def collect(ws: ClientConnection, expected: int) -> list[int]:
            return [(await _next(ws, type="message"))["seq"] for _ in range(expected)]

        others = sockets[1:]
        received = await asyncio.gather(*(collect(ws, FAN_OUT_MESSAGES) for ws in others))
        elapsed = time.perf_counter() - started
        # AND nothing more is pending on any socket (a duplicate would be queued by now: checked after a
        # round trip on each socket, which is answered after every earlier post to it)
        extras = await asyncio.gather(*(_frames_before_pong(ws) for ws in others))
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))
    # THEN every other socket received each message exactly once, in seq order, and each ack counted them all
    print(f"\nfan-out: {FAN_OUT_MESSAGES} messages to {FAN_OUT_SOCKETS - 1} sockets in {elapsed:.2f} s")
    assert all(seqs == list(range(1, FAN_OUT_MESSAGES + 1)) for seqs in received)
    assert [ack["delivered"] for ack in acks] == [FAN_OUT_SOCKETS - 1] * FAN_OUT_MESSAGES
    assert not any(extras)


async def _frames_before_pong(ws: ClientConnection) -> list[dict[str, Any]]:
    """Ping, and return every frame that arrives before the pong."""
    await _send(ws, {"action": "ping", "id": "drain"})
    frames = []
    async with asyncio.timeout(20):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("id") == "drain":
                return frames
            frames.append(frame)


async def test_an_abrupt_disconnect_announces_member_left(lambdacast: RunningEmulator) -> None:
    # GIVEN two signed-in users in a presence channel
    channel = _channel("presence-")
    ada, bob = await _mint(lambdacast, "Ada"), await _mint(lambdacast, "Bob")
    async with websockets.connect(f"{lambdacast.ws_url}?token={bob['token']}") as watcher:
        await _subscribe(watcher, channel)
        leaver = await websockets.connect(f"{lambdacast.ws_url}?token={ada['token']}")
        leaver_id = (await _request(leaver, {"action": "hello", "id": "h"}, "h"))["connectionId"]
        await _subscribe(leaver, channel)
        joined = await _next(watcher, type="member_joined")
        assert joined["member"]["userId"] == ada["userId"]
        # WHEN ada's TCP connection drops without a close frame (a reset, as when a laptop lid closes)
        raw: socket.socket = leaver.transport.get_extra_info("socket")
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        leaver.transport.abort()
        # THEN the other member is told ada left
        left = await _next(watcher, type="member_left")
    assert left["channel"] == channel
    assert left["member"]["userId"] == ada["userId"]
    # AND it was ada's $disconnect that ran, successfully
    assert lambdacast.wait_for(
        lambda e: any(inv.ok and inv.connection_id == leaver_id for inv in e.invocations_of("$disconnect"))
    )
