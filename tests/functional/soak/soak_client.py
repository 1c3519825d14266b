"""A soak client: one WebSocket that survives what the soak throws at it, and keeps every stream in order.

It follows protocol-v1-additions.md the way an application's client must:

- every frame it sends is retried until it gets a definite answer: ``internal_error`` (not done, safe to
  resend), ``rate_limited`` (after ``retryAfterMs``), API Gateway's ``Internal server error`` frame (the
  function crashed: done or not, a resend is safe because subscribe is idempotent and a publish carries
  its ``msgId``), or a lost socket (resent once the session is back);
- one request is in flight at a time, so API Gateway's error frame (which has no ``id``) names it;
- after any reconnect it resubscribes every channel with ``since`` + ``epoch`` and, when the server did
  not replay everything (``recovered: false``), pages back through ``history``; what history no longer
  has is a gap;
- a live hole (seq k+1 arrived, k did not within the reorder window) is filled from ``history`` first;
- presence channels keep a ``PresenceView``; a skipped version refetches the list.

Everything it sees is counted: raw message frames per (channel, epoch, seq) (so raw duplicates are
counted apart from what the application is handed), retries by cause, reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import socket
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import websockets
from soak_orderer import Orderer
from soak_presence import PresenceView
from websockets.asyncio.client import ClientConnection

HISTORY_PAGE = 100
REQUEST_TIMEOUT_S = 30.0
REORDER_WINDOW_S = 1.0
PRESENCE_REFETCH_WAIT_S = 0.3


class ConnectionLost(Exception):
    """The socket went before the reply came."""


class Refused(Exception):
    """The server refused a frame for good (an error code no retry can change)."""

    def __init__(self, frame: dict[str, Any], reply: dict[str, Any]) -> None:
        super().__init__(f"{frame.get('action')} refused: {reply}")
        self.reply = reply


@dataclass
class Tally:
    """What every client saw, summed (the soak's figures)."""

    requests: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)  # by cause
    connects: int = 0
    connect_failures: Counter[str] = field(default_factory=Counter)
    drops: int = 0  # sockets closed by the server or the network, not by the soak
    frames: int = 0
    unexpected: list[dict[str, Any]] = field(default_factory=list)
    refetches: int = 0
    late_replies: int = 0  # replies that came after their request had timed out (and was resent)
    recoveries: Counter[str] = field(default_factory=Counter)  # "replayed", "refused", "nothing missed"


class SoakClient:
    """One connection of the soak (reconnecting as needed) and the streams it follows."""

    def __init__(self, name: str, url: str, tally: Tally, *, token: str | None = None, echo: bool = False):
        self.name = name
        self.url = f"{url}?token={token}" if token else url
        self.tally = tally
        self.echo = echo
        self.streams: dict[str, Orderer] = {}
        self.presence: dict[str, PresenceView] = {}
        self.wanted: set[str] = set()
        self.raw: Counter[tuple[str, str, int]] = Counter()
        # channel -> (first, last) seqs each recovery replayed: frames held beyond a hole come again in it
        self.replays: dict[str, list[tuple[int, int]]] = {}
        self._settled: set[str] = set()  # channels (re)subscribed on the current socket
        self._generation = 0  # sockets opened so far: a setup request never crosses to a new socket
        self.history_fills = 0  # live holes that needed a history request
        self.connection_id: str | None = None
        self.drops = 0
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._pending: tuple[str, asyncio.Future[dict[str, Any]]] | None = None
        self._ready = asyncio.Event()
        self._want_online = asyncio.Event()
        self._want_online.set()
        self._closed = asyncio.Event()
        self._stopping = False
        self._deliberate = False
        self._supervisor: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._fillers: dict[str, asyncio.Task[None]] = {}
        self._refetchers: dict[str, asyncio.Task[None]] = {}
        self._random = random.Random(name)

    # -- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (retrying) and wait until the session is ready."""
        self._supervisor = asyncio.create_task(self._supervise(), name=f"soak {self.name}")
        await self.ready()

    async def ready(self) -> None:
        """Wait until connected with every wanted channel settled."""
        waiter = asyncio.create_task(self._ready.wait())
        assert self._supervisor is not None
        done, _ = await asyncio.wait({waiter, self._supervisor}, return_when=asyncio.FIRST_COMPLETED)
        if self._supervisor in done:
            waiter.cancel()
            self._supervisor.result()  # raises what stopped it
            raise RuntimeError(f"{self.name}: the session ended")

    async def go_offline(self, *, abort: bool) -> None:
        """Drop the socket and stay offline: a clean close, or a TCP reset (a laptop lid closing)."""
        self._want_online.clear()
        self._deliberate = True
        ws = self._ws
        if ws is not None:
            if abort:
                raw: socket.socket | None = ws.transport.get_extra_info("socket")
                if raw is not None:
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                ws.transport.abort()
            else:
                await ws.close()
        await self._closed.wait()

    async def come_back(self) -> None:
        """Reconnect and recover every stream."""
        self._want_online.set()
        await self.ready()

    async def stop(self) -> None:
        """Close for good."""
        self._stopping = True
        self._deliberate = True
        self._want_online.set()
        for task in [*self._fillers.values(), *self._refetchers.values()]:
            task.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._supervisor

    @property
    def online(self) -> bool:
        return self._ready.is_set()

    async def _supervise(self) -> None:
        while not self._stopping:
            await self._want_online.wait()
            if self._stopping:
                return
            await self._connect()
            try:
                while todo := sorted(self.wanted - self._settled):  # channels added meanwhile included
                    for channel in todo:
                        await self._settle(channel)
            except ConnectionLost:
                continue
            self._ready.set()
            for channel in self.streams:
                self._watch_holes(channel)
            await self._closed.wait()
            self._ready.clear()

    async def _connect(self) -> None:
        delay = 0.1
        while True:
            try:
                ws = await websockets.connect(self.url, open_timeout=30, max_size=None, ping_interval=None)
            except Exception as exc:  # a crashed $connect or authorizer refuses the handshake (500)
                self.tally.connect_failures[type(exc).__name__] += 1
                await asyncio.sleep(delay * (0.5 + self._random.random()))
                delay = min(delay * 2, 2.0)
                continue
            self.tally.connects += 1
            self._ws = ws
            self._generation += 1
            self._settled = set()
            self._closed.clear()
            self._deliberate = False
            self._reader = asyncio.create_task(self._read(ws), name=f"soak reader {self.name}")
            return

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for text in ws:
                self._on_frame(json.loads(text))
        except websockets.ConnectionClosed:
            pass
        finally:
            if not self._deliberate and not self._stopping:
                self.drops += 1
                self.tally.drops += 1
            self._ws = None
            self._ready.clear()
            if self._pending is not None and not self._pending[1].done():
                self._pending[1].set_exception(ConnectionLost())
            self._closed.set()

    # -- requests ----------------------------------------------------------------------------------

    async def request(self, frame: dict[str, Any], *, setup: bool = False) -> dict[str, Any]:
        """Send ``frame`` until it gets a definite answer; return it (raise ``Refused`` for a final error).

        ``setup``: part of (re)subscribing on the current socket; a lost socket raises ``ConnectionLost``
        instead of waiting for the next session (which subscribes again itself).
        """
        generation = self._generation
        action = str(frame["action"])
        self.tally.requests[action] += 1
        while True:
            if not setup:
                await self.ready()
            try:
                reply = await self._exchange(dict(frame), generation if setup else None)
            except ConnectionLost:
                self.tally.retries["connection lost"] += 1
                if setup:
                    raise
                continue
            except TimeoutError:
                self.tally.retries["no reply (timeout)"] += 1
                continue
            if "type" not in reply:  # API Gateway's frame for a failed integration (a crashed function)
                self.tally.retries["function crashed"] += 1
                await asyncio.sleep(0.05)
                continue
            if reply["type"] != "error":
                return reply
            code = reply.get("code")
            if code == "rate_limited":
                self.tally.retries["rate_limited"] += 1
                await asyncio.sleep(int(reply.get("retryAfterMs", 100)) / 1000)
                continue
            if code == "internal_error":
                self.tally.retries["internal_error"] += 1
                await asyncio.sleep(0.05 + 0.1 * self._random.random())
                continue
            raise Refused(frame, reply)

    async def _exchange(self, frame: dict[str, Any], generation: int | None) -> dict[str, Any]:
        async with self._lock:
            ws = self._ws
            if ws is None or generation not in (None, self._generation):
                raise ConnectionLost()
            frame["id"] = f"{self.name}.{next(self._ids)}"
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending = (frame["id"], future)
            try:
                await ws.send(json.dumps(frame))
            except websockets.ConnectionClosed:
                raise ConnectionLost() from None
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    return await future
            finally:
                self._pending = None

    # -- frames ------------------------------------------------------------------------------------

    def _on_frame(self, frame: dict[str, Any]) -> None:
        self.tally.frames += 1
        kind = frame.get("type")
        pending = self._pending
        crashed = kind is None and frame.get("message") == "Internal server error"  # API Gateway's, no id
        if pending is not None and not pending[1].done() and (frame.get("id") == pending[0] or crashed):
            pending[1].set_result(frame)
            return
        if isinstance(frame.get("id"), str) and frame["id"].startswith(f"{self.name}."):
            self.tally.late_replies += 1  # its request timed out and was sent again
        elif kind == "message":
            self._on_message(frame)
        elif kind in ("member_joined", "member_left"):
            view = self.presence.get(str(frame["channel"]))
            if view is not None and view.apply(frame):
                self._refetch_soon(str(frame["channel"]))
        else:
            self.tally.unexpected.append({"client": self.name, "frame": frame})

    def _on_message(self, frame: dict[str, Any]) -> None:
        channel = str(frame["channel"])
        self.raw[(channel, str(frame["epoch"]), int(frame["seq"]))] += 1
        stream = self.streams.get(channel)
        if stream is None:
            self.tally.unexpected.append({"client": self.name, "frame": frame, "why": "not subscribed"})
            return
        stream.push(frame, "live")
        self._watch_holes(channel)

    # -- channels ----------------------------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        """Follow ``channel`` (from now on, through every reconnect)."""
        self.wanted.add(channel)
        while True:
            await self.ready()
            if channel in self._settled:
                return  # the session subscribed it (a reconnect happened meanwhile)
            try:
                await self._settle(channel)
                return
            except ConnectionLost:
                continue

    async def unsubscribe(self, channel: str) -> None:
        """Stop following ``channel`` (its stream and presence view are forgotten)."""
        self.wanted.discard(channel)
        await self.request({"action": "unsubscribe", "channel": channel})
        self.streams.pop(channel, None)
        self.presence.pop(channel, None)

    async def _settle(self, channel: str) -> None:
        """Subscribe (or resubscribe with since + epoch), then fetch from history what was not replayed."""
        generation = self._generation
        await self._resubscribe(channel)
        if generation != self._generation:
            raise ConnectionLost()  # done on a socket that has gone since: the new one subscribes again
        self._settled.add(channel)

    async def _resubscribe(self, channel: str) -> None:
        stream = self.streams.setdefault(channel, Orderer())
        frame: dict[str, Any] = {"action": "subscribe", "channel": channel}
        resubscribe = stream.last is not None
        if resubscribe:
            frame["since"] = stream.last
            frame["epoch"] = stream.epoch
        reply = await self.request(frame, setup=True)
        stream.subscribed(reply, resubscribe=resubscribe)
        if resubscribe:
            seq = int(reply["seq"])
            assert stream.last is not None
            if reply.get("recovered") is True:
                self.tally.recoveries["replayed"] += 1
                self.replays.setdefault(channel, []).append((int(frame["since"]) + 1, seq))
            elif seq > stream.last:
                self.tally.recoveries["refused: paged through history"] += 1
                await self._backfill(channel, stream.last, seq, setup=True)
            else:
                self.tally.recoveries["nothing to recover"] += 1
        if channel.startswith("presence-"):
            view = self.presence.setdefault(channel, PresenceView())
            view.snapshot(await self.request({"action": "presence", "channel": channel}, setup=True))

    async def _backfill(self, channel: str, after: int, upto: int, *, setup: bool = False) -> None:
        """Page back through ``history`` for seqs ``after + 1``..``upto``; what it lacks becomes a gap."""
        stream = self.streams[channel]
        found: list[dict[str, Any]] = []
        before = upto + 1
        while before > after + 1:
            limit = min(HISTORY_PAGE, before - after - 1)
            reply = await self.request(
                {"action": "history", "channel": channel, "limit": limit, "before": before}, setup=setup
            )
            page = [m for m in reply["messages"] if after < int(m["seq"]) < before]
            if not page:
                break
            found = page + found
            before = int(reply["before"]) if reply.get("more") else min(int(m["seq"]) for m in page)
            if len(page) < limit and not reply.get("more"):
                break  # a short page: history has nothing older (expired)
        for message in sorted(found, key=lambda m: int(m["seq"])):
            stream.push(message, "history")
        stream.give_up(upto)

    def _watch_holes(self, channel: str) -> None:
        stream = self.streams.get(channel)
        if stream is None or stream.hole is None or channel in self._fillers or not self.online:
            return
        self._fillers[channel] = asyncio.create_task(self._fill_hole(channel))

    async def _fill_hole(self, channel: str) -> None:
        try:
            await asyncio.sleep(REORDER_WINDOW_S)
            stream = self.streams.get(channel)
            if stream is None or stream.hole is None or not self.online:
                return
            first, last = stream.hole
            last = min(last, first + HISTORY_PAGE - 1)
            self.history_fills += 1
            reply = await self.request(
                {"action": "history", "channel": channel, "limit": last - first + 1, "before": last + 1}
            )
            stream = self.streams.get(channel)
            if stream is None:
                return
            for message in reply["messages"]:
                if (
                    first <= int(message["seq"]) <= last
                    and message.get("epoch", reply.get("epoch")) == stream.epoch
                ):
                    stream.push(message, "history")
            if stream.last is not None and stream.last < last:
                stream.give_up(last)
        except (ConnectionLost, asyncio.CancelledError):
            return
        finally:
            self._fillers.pop(channel, None)
        self._watch_holes(channel)

    def _refetch_soon(self, channel: str) -> None:
        if channel not in self._refetchers:
            self._refetchers[channel] = asyncio.create_task(self._refetch(channel))

    async def _refetch(self, channel: str) -> None:
        try:
            await asyncio.sleep(PRESENCE_REFETCH_WAIT_S)
            view = self.presence.get(channel)
            if view is None:
                return
            self.tally.refetches += 1
            view.snapshot(await self.request({"action": "presence", "channel": channel}))
        except asyncio.CancelledError:
            return
        finally:
            self._refetchers.pop(channel, None)

    async def tail(self, channel: str) -> None:
        """After quiescence: learn the channel's last seq and fill any hole at the end of the stream.

        A hole at the tail has no later frame to reveal it; a real client finds it with the next
        message or reconnect. ``subscribe`` on a followed channel answers the current seq, replays
        nothing and changes nothing.
        """
        reply = await self.request({"action": "subscribe", "channel": channel})
        stream = self.streams[channel]
        assert stream.last is not None
        if int(reply["seq"]) > stream.last:
            await asyncio.sleep(REORDER_WINDOW_S)
            if int(reply["seq"]) > stream.last:
                self.history_fills += 1
                await self._backfill(channel, stream.last, int(reply["seq"]))

    async def publish(self, channel: str, data: Any, msg_id: str) -> dict[str, Any]:
        """Publish with ``msg_id`` until acked; return the ack."""
        return await self.request(
            {"action": "publish", "channel": channel, "data": data, "msgId": msg_id, "echo": self.echo}
        )
