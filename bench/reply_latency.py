"""``ping`` -> ``pong`` and ``publish`` -> ``ack`` through ``lambdacast local`` on the project's template.

One client on 127.0.0.1 sends a frame, waits for its answer, and again: ``rounds`` timed exchanges
after ``warmup`` untimed ones, for each management latency (``--management-latency-ms``, what every
``@connections`` call waits) and each way of replying:

* **direct** (the template as it is): the reply is the ``$default`` route's response;
* **posted** (``DIRECT_REPLIES=false`` and no route response, written to a temporary copy of the
  template): the handler posts the reply to the caller through ``@connections``.

The publish goes to a channel the client alone is subscribed to (``echo`` off: no recipient), with the
rate limits raised so that the exchanges measure the path, not the token bucket. The emulator's own
count of ``@connections`` calls (``GET /_lambdacast/connections``) before and after each phase gives
the calls per exchange.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
import yaml

from bench import local_measure as lm
from lambdacast_local.template import load_yaml

ROOT = Path(__file__).resolve().parent.parent
MODES = ("direct", "posted")
UNLIMITED = ["PublishRatePerSecond=10000", "PublishBurst=10000"]


@dataclass
class Exchanges:
    """One phase: the round-trip times and the ``@connections`` POSTs per exchange."""

    round_trips_ms: list[float] = field(default_factory=list)
    posts_per_exchange: float = 0.0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.round_trips_ms)


@dataclass
class ReplyLatency:
    """``ping`` and ``publish`` with one way of replying at one management latency."""

    mode: str
    management_latency_ms: float
    ping: Exchanges = field(default_factory=Exchanges)
    publish: Exchanges = field(default_factory=Exchanges)


def posted_template(folder: Path) -> Path:
    """A copy of template.yaml that replies through ``@connections``: no route response, DIRECT_REPLIES=false.

    Code and layer folders become absolute paths, so the copy runs from ``folder``.
    """
    document = load_yaml(ROOT / "template.yaml")
    resources = document["Resources"]
    for resource in resources.values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = str((ROOT / props[key]).resolve())
    del resources["DefaultRouteResponse"]
    resources["WebSocketApi"]["Properties"]["Routes"]["$default"].pop("RouteResponseSelectionExpression")
    variables = document["Globals"]["Function"]["Environment"]["Variables"]
    variables["DIRECT_REPLIES"] = "false"
    path = folder / "template.posted.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _posts(base: str) -> int:
    with urllib.request.urlopen(f"{base}/_lambdacast/connections", timeout=10) as response:
        calls: dict[str, int] = json.load(response)["calls"]
    return calls["post"]


async def _exchange(ws: Any, frame: dict[str, Any], expected: str) -> float:
    started = time.perf_counter()
    await ws.send(json.dumps(frame))
    while True:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if reply.get("id") == frame["id"]:
            break
    elapsed = (time.perf_counter() - started) * 1000
    if reply.get("type") != expected:
        raise RuntimeError(f"{frame['action']} answered {reply}, not {expected}")
    return elapsed


async def _phase(  # noqa: PLR0917 - one call site, every argument distinct
    ws: Any, base: str, make: Callable[[int], dict[str, Any]], expected: str, warmup: int, rounds: int
) -> Exchanges:
    for n in range(warmup):
        await _exchange(ws, make(-1 - n), expected)
    phase = Exchanges()
    before = await asyncio.to_thread(_posts, base)
    for n in range(rounds):
        phase.round_trips_ms.append(await _exchange(ws, make(n), expected))
    phase.posts_per_exchange = (await asyncio.to_thread(_posts, base) - before) / rounds
    return phase


async def _measure(template: Path, cell: ReplyLatency, warmup: int, rounds: int) -> None:
    extra = [
        "--management-latency-ms",
        f"{cell.management_latency_ms:g}",
        "--parameter-overrides",
        *UNLIMITED,
    ]
    with lm.running(template, extra) as emulator:
        base = emulator.url.replace("ws://", "http://").rsplit("/", 1)[0]
        async with websockets.connect(emulator.url, ping_interval=None) as ws:
            await _exchange(ws, {"action": "hello", "id": "hello"}, "welcome")
            cell.ping = await _phase(
                ws, base, lambda n: {"action": "ping", "id": f"ping{n}"}, "pong", warmup, rounds
            )
            channel = f"bench-solo-{cell.mode}"
            await _exchange(ws, {"action": "subscribe", "channel": channel, "id": "sub"}, "subscribed")

            def publish(n: int) -> dict[str, Any]:
                return {"action": "publish", "channel": channel, "data": {"n": n}, "id": f"pub{n}"}

            cell.publish = await _phase(ws, base, publish, "ack", warmup, rounds)


def run(
    latencies: tuple[float, ...] = (0.0, 10.0),
    warmup: int = 5,
    rounds: int = 40,
    progress: Callable[[str], None] = print,
) -> list[ReplyLatency]:
    """Every mode at every management latency; one emulator per cell."""
    cells: list[ReplyLatency] = []
    with tempfile.TemporaryDirectory(prefix="lambdacast-bench-") as folder:
        templates = {"direct": ROOT / "template.yaml", "posted": posted_template(Path(folder))}
        for mode in MODES:
            for latency in latencies:
                cell = ReplyLatency(mode, latency)
                asyncio.run(_measure(templates[mode], cell, warmup, rounds))
                cells.append(cell)
                progress(
                    f"  {mode:<6} replies, {latency:g} ms management latency: ping->pong "
                    f"{cell.ping.median_ms:.1f} ms ({cell.ping.posts_per_exchange:g} POST each), "
                    f"publish->ack {cell.publish.median_ms:.1f} ms "
                    f"({cell.publish.posts_per_exchange:g} POST each), medians of {rounds}"
                )
    return cells
