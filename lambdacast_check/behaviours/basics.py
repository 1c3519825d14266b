"""Connection-level behaviours: hello, ping, the subprotocol, API Gateway's 32 KB frame limit."""

from __future__ import annotations

import websockets

from lambdacast_check.session import Session
from lambdacast_check.suite import Failed, Probe, behaviour, expect

SUBPROTOCOL = "lambdacast.v1"
FRAME_LIMIT = 32 * 1024


@behaviour("hello")
async def hello(probe: Probe) -> str:
    """Hello is answered with welcome: connection id, user, protocol 1, limits."""
    async with probe.connect() as session:
        welcome = await session.request({"action": "hello", "id": "h1"})
    expect(welcome.get("type") == "welcome", f"expected a welcome frame, got {welcome}")
    expect(welcome.get("id") == "h1", f"welcome does not echo the id: {welcome}")
    expect(
        isinstance(welcome.get("connectionId"), str) and welcome["connectionId"],
        f"no connectionId: {welcome}",
    )
    expect("userId" in welcome, f"no userId (null for anonymous): {welcome}")
    expect(welcome.get("protocol") == 1, f"protocol is {welcome.get('protocol')!r}, not 1")
    limits = welcome.get("limits") or {}
    expect(
        isinstance(limits.get("maxDataBytes"), int) and isinstance(limits.get("maxChannels"), int),
        f"limits lack maxDataBytes/maxChannels: {welcome}",
    )
    return f"connectionId {welcome['connectionId']}, userId {welcome['userId']!r}, limits {limits}"


@behaviour("ping")
async def ping(probe: Probe) -> str:
    """Ping is answered with pong and the server's time."""
    async with probe.connect() as session:
        pong = await session.request({"action": "ping", "id": "k1"})
    expect(pong.get("type") == "pong" and pong.get("id") == "k1", f"expected pong with id k1, got {pong}")
    expect(isinstance(pong.get("ts"), int), f"pong has no integer ts: {pong}")
    return f"pong ts {pong['ts']}"


@behaviour("subprotocol")
async def subprotocol(probe: Probe) -> str:
    """Lambdacast.v1 is echoed; a handshake offering only other subprotocols is refused."""
    session = await Session.open(
        probe.url, token=probe.token, timeout=probe.timeout, subprotocols=[SUBPROTOCOL]
    )
    try:
        chosen = session.subprotocol
        pong = await session.request({"action": "ping"})
    finally:
        await session.close()
    expect(chosen == SUBPROTOCOL, f"offered {SUBPROTOCOL}, the server chose {chosen!r}")
    expect(pong.get("type") == "pong", f"a ping over {SUBPROTOCOL} got {pong}")
    try:
        other = await Session.open(probe.url, token=probe.token, timeout=probe.timeout, subprotocols=["mqtt"])
    except websockets.InvalidStatus as refused:
        status = refused.response.status_code
        expect(400 <= status < 500, f"offering only mqtt was refused with HTTP {status}, not a 4xx")
        return f"{SUBPROTOCOL} echoed; offering only mqtt refused with HTTP {status}"
    except websockets.InvalidHandshake as refused:
        return f"{SUBPROTOCOL} echoed; offering only mqtt refused ({refused})"
    accepted = other.subprotocol
    await other.close()
    raise Failed(f"a handshake offering only mqtt was accepted (subprotocol {accepted!r}); expected a 4xx")


@behaviour("frame-limit")
async def frame_limit(probe: Probe) -> str:
    """A frame just under 32 KB is served; one over 32 KB closes the socket with 1009."""
    async with probe.connect() as session:
        near = _padded_ping("near", FRAME_LIMIT - 512)
        await session.send(near)
        pong = await session.expect(id="near")
        expect(pong.get("type") == "pong", f"a {len(near)}-byte ping got {pong}")
        await session.send(_padded_ping("over", FRAME_LIMIT + 1024))
        code, reason = await session.closed()
    expect(
        code == 1009, f"a {FRAME_LIMIT + 1024}-byte frame closed the socket with {code} {reason!r}, not 1009"
    )
    return f"{FRAME_LIMIT - 512} bytes answered; {FRAME_LIMIT + 1024} bytes closed with 1009 {reason!r}"


def _padded_ping(frame_id: str, size: int) -> str:
    """A ping of exactly ``size`` bytes (an unknown field pads it; servers ignore unknown fields)."""
    head = f'{{"action":"ping","id":"{frame_id}","pad":"'
    return head + "x" * (size - len(head) - 2) + '"}'
