"""Fan-out through the emulator: many real sockets, each message delivered exactly once."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

APP = Path(__file__).parent / "apps" / "echo" / "template.yaml"
CLIENTS = 250


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {"management_latency_ms": 5}


async def test_posts_to_250_sockets_arrive_exactly_once(lambdacast):
    # GIVEN 250 connected clients who told us their ids
    sockets = [await websockets.connect(lambdacast.ws_url) for _ in range(CLIENTS)]
    try:
        ids = []
        for ws in sockets:
            await ws.send("whoami")
            ids.append(await ws.recv())
        # WHEN a backend posts three numbered messages to every one of them, concurrently
        async with aiohttp.ClientSession() as http:

            async def post(connection_id: str, n: int) -> int:
                url = f"{lambdacast.management_url}/@connections/{connection_id}"
                async with http.post(url, data=f"msg-{n}".encode()) as response:
                    return response.status

            statuses = await asyncio.gather(*(post(cid, n) for n in range(3) for cid in ids))
        received = [sorted([await ws.recv(), await ws.recv(), await ws.recv()]) for ws in sockets]
        # THEN every post was accepted and every socket got each message once
        assert set(statuses) == {200}
        assert all(messages == ["msg-0", "msg-1", "msg-2"] for messages in received)
        # AND nothing more is pending on any socket: a round trip through the handler (posted after every
        # earlier post to that socket was accepted) is the very next frame each one receives
        for ws in sockets:
            await ws.send("whoami")
        assert [await ws.recv() for ws in sockets] == ids
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))


def test_management_latency_flag_delays_each_call(lambdacast):
    # GIVEN --management-latency-ms 5 (the same as --faults connections:latency=5)
    assert str(lambdacast.faults.spec) == "connections:latency=5"
    before = lambdacast.faults.count("connections", "latency")
    # WHEN one call is made to an unknown id
    status = 0
    try:
        urllib.request.urlopen(
            urllib.request.Request(
                f"{lambdacast.management_url}/@connections/AAAAAAAAAAAAAAA=", method="GET"
            ),
            timeout=15,
        )
    except urllib.error.HTTPError as error:
        status = error.code
    # THEN it is answered (410) after going through the injected delay exactly once
    assert status == 410
    assert lambdacast.faults.count("connections", "latency") == before + 1


async def test_simulated_connections_receive_posts_exactly_once_at_scale(lambdacast):
    # GIVEN 10,000 simulated connections (no sockets)
    ids = lambdacast.simulated_connections(10_000)
    # WHEN a backend posts one message to each, 200 at a time
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as http:

        async def post(connection_id: str) -> int:
            url = f"{lambdacast.management_url}/@connections/{connection_id}"
            async with http.post(url, data=f"to-{connection_id}".encode()) as response:
                return response.status

        statuses = await asyncio.gather(*(post(cid) for cid in ids))
    # THEN every post was accepted and each connection holds exactly its own message
    assert set(statuses) == {200}
    assert all(lambdacast.frames(cid) == [f"to-{cid}"] for cid in ids)


def test_deleting_a_simulated_connection_fires_disconnect_and_then_410(lambdacast):
    # GIVEN a simulated connection
    (connection_id,) = lambdacast.simulated_connections(1)
    base = f"{lambdacast.management_url}/@connections/{connection_id}"
    # WHEN it is deleted
    with urllib.request.urlopen(urllib.request.Request(base, method="DELETE"), timeout=15) as response:
        assert response.status == 204
    # THEN $disconnect fires for it and later posts are 410
    assert lambdacast.wait_for(
        lambda e: any(inv.connection_id == connection_id for inv in e.invocations_of("$disconnect"))
    )
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(urllib.request.Request(base, data=b"x", method="POST"), timeout=15)
    assert gone.value.code == 410
