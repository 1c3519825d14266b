"""Every client error code a stack answers without special setup; each leaves the socket usable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from lambdacast_check.behaviours.channels import msg_id, subscribe
from lambdacast_check.session import Frame, Session
from lambdacast_check.suite import Probe, Skipped, behaviour, expect

#: Publishes sent at once to reach the rate limit (the default burst is 20 per connection).
FLOOD = 45
#: Most channels the too_many_channels check subscribes to (maxChannels + 1 must not exceed it).
MAX_CHANNELS_CHECKED = 200


async def refused(session: Session, frame: Any, code: str, frame_id: str | None = "e1") -> Frame:
    """Send a bad frame; expect the error ``code`` (with ``frame_id`` when the frame had a readable id)."""
    await session.send(frame)
    reply = await session.expect(type="error")
    expect(reply.get("code") == code, f"expected error {code}, got {reply}")
    expect(isinstance(reply.get("message"), str) and reply["message"], f"the error has no message: {reply}")
    if frame_id is not None:
        expect(reply.get("id") == frame_id, f"the error does not carry the frame's id {frame_id}: {reply}")
    pong = await session.request({"action": "ping"})
    expect(pong.get("type") == "pong", f"after the error, a ping got {pong}")
    return reply


def _simple(code: str, frames: Callable[[str], list[Any]], summary: str) -> None:
    """Register a check that each frame (built around a fresh channel name) is answered ``code``."""

    async def run(probe: Probe) -> str:
        sent = frames(probe.channel())
        async with probe.connect() as session:
            for frame in sent:
                await refused(session, frame, code, "e1" if isinstance(frame, dict) else None)
        return (
            f"{len(sent)} frame(s) answered {code}, with the frame's id when readable; the socket still works"
        )

    behaviour(f"error:{code}", summary)(run)


_simple(
    "invalid_json",
    lambda _: ["this is not json", '{"action": "ping", "id": "e1"', '{"action": "ping", "n": NaN}'],
    "text that is not JSON (or uses NaN) is answered invalid_json",
)
_simple(
    "invalid_frame",
    lambda channel: [
        {"action": "publish", "channel": channel, "id": "e1"},
        {"action": "subscribe", "id": "e1"},
        {"action": "history", "channel": channel, "limit": 101, "id": "e1"},
        {"action": "subscribe", "channel": channel, "since": -1, "id": "e1"},
        {"action": "publish", "channel": channel, "data": 1, "msgId": "", "id": "e1"},
        {"action": "presence", "channel": channel, "id": "e1"},
    ],
    "frames breaking the rules (publish without data, no channel, limit 101, since -1, an empty msgId, "
    "presence on a plain channel) are answered invalid_frame",
)
_simple(
    "unknown_action",
    lambda _: [{"action": "dance", "id": "e1"}],
    "an unknown action is answered unknown_action",
)
_simple(
    "invalid_channel",
    lambda channel: [
        {"action": "subscribe", "channel": f"{channel} with spaces", "id": "e1"},
        {"action": "subscribe", "channel": channel + "x" * 128, "id": "e1"},
    ],
    "a bad channel name (a space, 129 characters) is answered invalid_channel",
)


@behaviour("error:invalid_frame-shapes")
async def invalid_frame_shapes(probe: Probe) -> str:
    """An array, an id of 65 characters, a binary frame: invalid_frame."""
    async with probe.connect() as session:
        await refused(session, '["an", "array"]', "invalid_frame", None)
        await refused(session, {"action": "ping", "id": "x" * 65}, "invalid_frame", None)
        await refused(session, b'{"action":"ping"}', "invalid_frame", None)
    return "an array, a 65-character id and a binary frame answered invalid_frame; the socket still works"


@behaviour("error:not_subscribed")
async def not_subscribed(probe: Probe) -> str:
    """Publishing to a channel the connection is not subscribed to: not_subscribed."""
    async with probe.connect() as session:
        channel = probe.channel()
        await refused(
            session, {"action": "publish", "channel": channel, "data": 1, "id": "e1"}, "not_subscribed"
        )
        history = await session.request({"action": "history", "channel": channel})
    expect(history.get("messages") == [], f"the refused publish left something in the history: {history}")
    return "not_subscribed; nothing was stored"


@behaviour("error:forbidden")
async def forbidden(probe: Probe) -> str:
    """A private- channel the connection's token does not grant: forbidden."""
    channel = probe.channel("private-")
    async with probe.connect() as session:
        await session.send({"action": "subscribe", "channel": channel, "id": "e1"})
        reply = await session.expect(id="e1")
        if reply.get("type") == "subscribed":
            await session.request({"action": "unsubscribe", "channel": channel})
            raise Skipped(f"the token grants {channel}: no private- channel left to be refused")
        expect(reply.get("code") == "forbidden", f"subscribing to {channel} got {reply}")
        await refused(session, {"action": "history", "channel": channel, "id": "e1"}, "forbidden")
    return f"subscribe and history on {channel} answered forbidden"


@behaviour("error:too_large")
async def too_large(probe: Probe) -> str:
    """Data over maxDataBytes is answered too_large."""
    welcome = await probe.welcome()
    limit = int(welcome["limits"]["maxDataBytes"])
    channel = probe.channel()
    frame = {"action": "publish", "channel": channel, "data": "x" * (limit - 1), "id": "e1"}
    if len(json.dumps(frame)) > 32 * 1024:
        raise Skipped(f"maxDataBytes {limit}: a frame over it would pass API Gateway's 32 KB frame limit")
    async with probe.connect() as session:
        await subscribe(session, channel)
        await refused(session, frame, "too_large")  # a JSON string of limit - 1 characters is limit + 1 bytes
        history = await session.request({"action": "history", "channel": channel})
    expect(history.get("messages") == [], f"the refused publish left something in the history: {history}")
    return f"{limit + 1} bytes of data refused (maxDataBytes {limit}); nothing was stored"


@behaviour("error:rate_limited")
async def rate_limited(probe: Probe) -> str:
    """Publishing faster than the connection's limit: rate_limited with retryAfterMs."""
    channel = probe.channel()
    async with probe.connect() as session:
        await subscribe(session, channel)
        ids = [f"r{n}" for n in range(FLOOD)]
        for frame_id in ids:  # all at once, before any reply
            await session.send(
                {"action": "publish", "channel": channel, "data": frame_id, "id": frame_id, "msgId": msg_id()}
            )
        replies = [await session.expect(id=frame_id) for frame_id in ids]
    limited = [r for r in replies if r.get("code") == "rate_limited"]
    acks = sorted(r["seq"] for r in replies if r.get("type") == "ack")
    others = [r for r in replies if r.get("type") != "ack" and r.get("code") != "rate_limited"]
    expect(not others, f"{len(others)} publishes got neither ack nor rate_limited, e.g. {others[:1]}")
    expect(bool(limited), f"{FLOOD} publishes at once were all acked (no rate limit)")
    expect(
        all(isinstance(r.get("retryAfterMs"), int) and r["retryAfterMs"] >= 0 for r in limited),
        f"rate_limited without an integer retryAfterMs: {limited[0]}",
    )
    expect(
        acks == list(range(acks[0], acks[0] + len(acks))) if acks else True,
        f"refused publishes consumed seqs: the acks are {acks}",
    )
    return (
        f"{FLOOD} at once: {len(acks)} acked (consecutive seqs), {len(limited)} rate_limited (retryAfterMs)"
    )


@behaviour("error:too_many_channels")
async def too_many_channels(probe: Probe) -> str:
    """Subscribing to one channel more than maxChannels: too_many_channels."""
    welcome = await probe.welcome()
    limit = int(welcome["limits"]["maxChannels"])
    if limit + 1 > MAX_CHANNELS_CHECKED:
        raise Skipped(
            f"maxChannels is {limit}: more subscriptions than this check makes ({MAX_CHANNELS_CHECKED})"
        )
    base = probe.channel()
    async with probe.connect() as session:
        for n in range(limit):
            reply = await _subscribe_paced(session, f"{base}-{n}")
            expect(reply.get("type") == "subscribed", f"subscription {n + 1} of {limit} got {reply}")
        refused_reply = await _subscribe_paced(session, f"{base}-{limit}")
        again = await _subscribe_paced(session, f"{base}-0")
    expect(refused_reply.get("code") == "too_many_channels", f"subscription {limit + 1} got {refused_reply}")
    expect(again.get("type") == "subscribed", f"re-subscribing to a held channel at the limit got {again}")
    return f"{limit} subscriptions held, the next refused; a held one may still be re-subscribed"


async def _subscribe_paced(session: Session, channel: str) -> Frame:
    """Subscribe, waiting out the action rate limit (a flood of subscribes is limited too)."""
    while True:
        reply = await session.request({"action": "subscribe", "channel": channel})
        if reply.get("code") != "rate_limited":
            return reply
        await asyncio.sleep(int(reply.get("retryAfterMs", 100)) / 1000)
