"""``lambdacast local`` under load (issues 3 and 6): echo, idle connections, publish to many sockets.

Two emulator runs, each ``lambdacast local`` (the CLI) in its own process, driven over real sockets
on 127.0.0.1 through :mod:`bench.local_measure`:

* the echo test app: echo round trips at ``clients`` concurrent clients (cold workers, then warm),
  then ``idle`` idle sockets held at once (RSS of the emulator and its workers), then Ctrl-C with
  them all open (exit code, time, workers left);
* the project's own template with ``--management-latency-ms``: ``subscribers`` real sockets
  subscribe to channels of 1, 10, 100 ... subscribers, a separate publisher publishes to each
  several times; per publish, the time from sending the frame to the last subscriber receiving the
  message, and the ``$default`` invocation's duration as the emulator logged it (the Lambda duration
  the cost model bills).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from bench import local_measure as lm

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class EmulatorConfig:
    """What to run."""

    idle: int = 10_000
    echo_clients: int = 100
    echo_messages: int = 30
    fanouts: Sequence[int] = (1, 10, 100, 1_000)
    publishes: int = 5
    latency_ms: float = 10.0


@dataclass
class Fanout:
    """Publishes to a channel of ``recipients`` subscriber sockets (plus the publisher, not echoed)."""

    recipients: int
    latency_ms: list[float] = field(default_factory=list)
    """Publish frame sent -> the last subscriber socket has the message."""
    ack_ms: list[float] = field(default_factory=list)
    duration_ms: list[float] = field(default_factory=list)
    """The ``$default`` invocation's duration, from the emulator's log line."""

    @property
    def median_latency_ms(self) -> float:
        return statistics.median(self.latency_ms)

    @property
    def median_duration_ms(self) -> float:
        return statistics.median(self.duration_ms) if self.duration_ms else float("nan")


@dataclass
class EmulatorResults:
    """Everything :func:`run` measured."""

    echo: list[lm.Echo] = field(default_factory=list)
    idle: lm.Idle | None = None
    shutdown: lm.Shutdown | None = None
    fanout: list[Fanout] = field(default_factory=list)
    fanout_latency_ms: float = 0.0
    subscribe_retries: int = 0


async def _echo_and_idle(
    config: EmulatorConfig, results: EmulatorResults, progress: Callable[[str], None]
) -> None:
    with lm.running(lm.ECHO) as emulator:
        for phase in ("cold", "warm"):
            echo = await lm.echo_round(emulator.url, phase, config.echo_clients, config.echo_messages)
            results.echo.append(echo)
            progress(
                f"  echo {phase}: p50 {echo.p50_ms:.1f} ms, p99 {echo.p99_ms:.1f} ms, {echo.per_second:.0f}/s"
            )
        sockets: list[Any] = []
        try:
            results.idle = idle = await lm.hold_idle(emulator, config.idle, sockets)
            progress(
                f"  {idle.opened:,} idle sockets in {idle.seconds:.1f} s: "
                f"tree RSS {idle.rss_kb / 1024:.0f} MB "
                f"({idle.kb_per_connection:.1f} KB per connection), {idle.workers} workers"
            )
            results.shutdown = down = await asyncio.to_thread(lm.stop, emulator)
            progress(
                f"  Ctrl-C with them open: exit {down.exit_code} in {down.seconds:.1f} s, "
                f"workers left {down.workers_left}"
            )
        finally:
            await lm.close_all(sockets)


class _Subscriber:
    """A socket subscribed to some channels; counts the messages each channel delivered to it."""

    def __init__(self, ws: Any, on_message: Callable[[str], None]) -> None:
        self.ws = ws
        self._on_message = on_message
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            if frame.get("type") == "message":
                self._on_message(frame["channel"])
            else:
                await self.replies.put(frame)

    async def request(self, frame: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        await self.ws.send(json.dumps(frame))
        reply = await asyncio.wait_for(self.replies.get(), timeout)
        if reply.get("type") == "error":
            raise RuntimeError(f"{frame['action']} refused: {reply}")
        return reply


SUBSCRIBE_ATTEMPTS = 5


def _errors(emulator: lm.LocalEmulator, last: int = 30) -> str:
    """The emulator's last output lines that look like failures."""
    lines = [text for _, text in emulator.lines if "ERROR" in text or "Error" in text or "Traceback" in text]
    return "\n".join(lines[-last:])


class _Channels:
    """Counts each channel's deliveries of the current publish; an event fires at the last one."""

    def __init__(self) -> None:
        self.expected: dict[str, int] = {}
        self.got: dict[str, int] = {}
        self.done: dict[str, asyncio.Event] = {}
        self.last_at: dict[str, float] = {}

    def expect(self, channel: str, count: int) -> asyncio.Event:
        self.got[channel], self.expected[channel] = 0, count
        self.done[channel] = asyncio.Event()
        return self.done[channel]

    def on_message(self, channel: str) -> None:
        self.got[channel] = self.got.get(channel, 0) + 1
        if self.got[channel] == self.expected.get(channel):
            self.last_at[channel] = time.perf_counter()
            self.done[channel].set()


async def _one_channel(
    emulator: lm.LocalEmulator, publisher: _Subscriber, channels: _Channels, size: int, runs: int
) -> Fanout:
    """Publish ``runs`` + 1 times to the channel of ``size`` subscribers (the first warms up)."""
    channel = f"bench-{size}"
    await publisher.request({"action": "subscribe", "channel": channel, "id": "p-sub"})
    cell = Fanout(size)
    for run in range(runs + 1):
        done = channels.expect(channel, size)
        await asyncio.sleep(0.3)  # a quiet log window for this publish alone
        since, sent = time.monotonic(), time.perf_counter()
        ack = await publisher.request(
            {"action": "publish", "channel": channel, "data": {"n": run}, "id": "p"}
        )
        acked = time.perf_counter()
        await asyncio.wait_for(done.wait(), 120)
        if ack.get("delivered") != size:
            raise RuntimeError(f"publish to {size} subscribers acknowledged {ack}")
        await asyncio.sleep(0.3)  # the invocation line follows the reply
        lines = emulator.invocations(since, "$default")
        if run == 0:
            continue
        cell.latency_ms.append((channels.last_at[channel] - sent) * 1000)
        cell.ack_ms.append((acked - sent) * 1000)
        if len(lines) == 1:
            cell.duration_ms.append(lines[0].duration_ms)
    return cell


async def _publish_fanout(
    config: EmulatorConfig, results: EmulatorResults, progress: Callable[[str], None]
) -> None:
    extra = ["--management-latency-ms", f"{config.latency_ms:g}"]
    channels = _Channels()
    with lm.running(ROOT / "template.yaml", extra) as emulator:
        gate = asyncio.Semaphore(20)
        retried: list[str] = []

        async def subscribe(sub: _Subscriber, channel: str) -> None:
            for attempt in range(SUBSCRIBE_ATTEMPTS):
                try:
                    await sub.request({"action": "subscribe", "channel": channel, "id": "s"})
                except RuntimeError as exc:  # internal_error: the client retries, as a real one would
                    retried.append(str(exc))
                    if len(retried) == 1:
                        progress(
                            f"  a subscribe failed ({exc}); retrying. "
                            f"The emulator said:\n{_errors(emulator, 8)}"
                        )
                    if attempt == SUBSCRIBE_ATTEMPTS - 1:
                        raise RuntimeError(f"{exc}; emulator said:\n{_errors(emulator)}") from exc
                    await asyncio.sleep(0.5 * 2**attempt)
                else:
                    return

        async def subscriber(index: int) -> _Subscriber:
            async with gate:
                ws = await websockets.connect(emulator.url, ping_interval=None, open_timeout=120)
                sub = _Subscriber(ws, channels.on_message)
                for size in (s for s in config.fanouts if index < s):
                    await subscribe(sub, f"bench-{size}")
                return sub

        started = time.perf_counter()
        subs = list(await asyncio.gather(*(subscriber(i) for i in range(max(config.fanouts)))))
        progress(
            f"  {len(subs):,} subscriber sockets subscribed in {time.perf_counter() - started:.1f} s"
            + (f"; {len(retried)} subscribes retried after an error (first: {retried[0]})" if retried else "")
        )
        results.subscribe_retries = len(retried)
        publisher = _Subscriber(
            await websockets.connect(emulator.url, ping_interval=None), channels.on_message
        )
        subs.append(publisher)
        try:
            for size in config.fanouts:
                cell = await _one_channel(emulator, publisher, channels, size, config.publishes)
                results.fanout.append(cell)
                progress(
                    f"  publish to {size:>5,} sockets: last delivery {cell.median_latency_ms:7.1f} ms, "
                    f"$default {cell.median_duration_ms:7.1f} ms (median of {len(cell.latency_ms)})"
                )
        finally:
            await asyncio.to_thread(lm.stop, emulator)
            for sub in subs:
                sub.task.cancel()
            await lm.close_all([s.ws for s in subs])
    results.fanout_latency_ms = config.latency_ms


def run(config: EmulatorConfig, progress: Callable[[str], None] = print) -> EmulatorResults:
    """Run both emulator measurements; return what they found."""
    results = EmulatorResults()
    lm.raise_fd_limit(config.idle + 2048)

    async def both() -> None:
        await _echo_and_idle(config, results, progress)
        await _publish_fanout(config, results, progress)

    asyncio.run(both())
    return results
