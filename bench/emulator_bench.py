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
import functools
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


def seed_subscriptions(endpoint: str, members: dict[str, list[str]]) -> None:
    """Subscribe connections to channels by writing the store's items into the emulator's DynamoDB.

    The same items and ``subs`` counter a ``subscribe`` frame writes (docs/architecture.md), batched:
    a thousand subscribe transactions would time the embedded moto server (moto 5.x deep-copies the
    whole table for every item of a ``TransactWriteItems``), not the publish this suite measures.
    """
    import boto3

    from bench.dynamodb_cost import subscription_items

    client: Any = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
    )  # fmt: skip
    (table,) = client.list_tables()["TableNames"]
    ttl = int(time.time()) + 7200
    items = [
        item
        for channel, ids in members.items()
        for cid in ids
        for item in subscription_items(channel, cid, ttl)
    ]
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        if client.batch_write_item(RequestItems={table: chunk}).get("UnprocessedItems"):
            raise RuntimeError("the emulator's DynamoDB left items unprocessed")
    counts: dict[str, int] = {}
    for ids in members.values():
        for cid in ids:
            counts[cid] = counts.get(cid, 0) + 1
    for cid, count in counts.items():
        client.update_item(
            TableName=table,
            Key={"pk": {"S": f"CONN#{cid}"}, "sk": {"S": "META"}},
            UpdateExpression="ADD subs :n",
            ExpressionAttributeValues={":n": {"N": str(count)}},
        )


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
        frame = {"action": "publish", "channel": channel, "data": {"n": run}, "id": "p"}
        try:
            ack = await publisher.request(frame, timeout=120)
            acked = time.perf_counter()
            await asyncio.wait_for(done.wait(), 120)
        except TimeoutError as exc:
            got = channels.got.get(channel, 0)
            tail = "\n".join(text for _, text in emulator.lines[-10:])
            raise RuntimeError(
                f"publish to {size}: {got} delivered after 120 s; emulator said:\n{tail}"
            ) from exc
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
        gate = asyncio.Semaphore(50)

        async def subscriber() -> tuple[_Subscriber, str]:
            async with gate:
                ws = await websockets.connect(emulator.url, ping_interval=None, open_timeout=120)
                sub = _Subscriber(ws, channels.on_message)
                welcome = await sub.request({"action": "hello", "id": "h"})
                return sub, str(welcome["connectionId"])

        started = time.perf_counter()
        opened = await asyncio.gather(*(subscriber() for _ in range(max(config.fanouts))))
        subs = [sub for sub, _ in opened]
        members = {f"bench-{size}": [cid for _, cid in opened[:size]] for size in config.fanouts}
        endpoint = emulator.banner(r"embedded AWS:\s+(\S+)")
        await asyncio.to_thread(seed_subscriptions, endpoint, members)
        progress(
            f"  {len(subs):,} subscriber sockets connected (hello) and subscribed (items seeded) in "
            f"{time.perf_counter() - started:.1f} s"
        )
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
            # Not measured here (the idle run above times a shutdown): a thousand $disconnect
            # invocations against the embedded moto server would take minutes, so force the exit.
            await asyncio.to_thread(functools.partial(lm.stop, emulator, force_after=3.0))
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
