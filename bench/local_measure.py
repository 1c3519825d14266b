"""Not a test: the measurement behind docs/local.md's numbers (echo round trips, idle connections, RSS).

Run: ``.venv/bin/python tests/functional/measure_local.py [IDLE_CONNECTIONS] [-- extra flags]``.
It starts ``lambdacast local`` on the echo test app, drives 100 echo clients twice (cold, then warm workers),
opens IDLE_CONNECTIONS idle sockets (default 10,000; needs that many file descriptors), reports RSS, then
sends Ctrl-C and checks that no worker process is left.
"""

from __future__ import annotations

import asyncio
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import websockets

ECHO = Path(__file__).parent / "apps" / "echo" / "template.yaml"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(child) for child in (task / "children").read_text().split()}
    return found


async def echo_round(url: str, clients: int = 100, messages: int = 30) -> tuple[list[float], float]:
    rtts: list[float] = []

    async def client(k: int) -> None:
        async with websockets.connect(url) as ws:
            for i in range(messages):
                started = time.perf_counter()
                await ws.send(f"m{k}-{i}")
                assert await ws.recv() == f"m{k}-{i}"
                rtts.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    return sorted(rtts), time.perf_counter() - started


async def measure(idle: int, extra: list[str]) -> None:
    command = [
        sys.executable,
        "-m",
        "lambdacast_local.cli",
        "local",
        "-t",
        str(ECHO),
        "--port",
        "0",
        "--no-web",
    ]
    process = subprocess.Popen(
        [*command, *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    url = None
    while url is None:
        match = re.search(r"WebSocket URL:\s+(\S+)", process.stdout.readline())
        url = match.group(1) if match else None
    threading.Thread(target=lambda: [None for _ in process.stdout or []], daemon=True).start()
    baseline = rss_kb(process.pid)
    for phase in ("cold", "warm"):
        rtts, elapsed = await echo_round(url)
        p99 = rtts[int(len(rtts) * 0.99)]
        p50, rate = statistics.median(rtts), len(rtts) / elapsed
        print(f"echo {phase}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, {rate:.0f} msg/s")
    gate = asyncio.Semaphore(200)
    sockets = []

    async def open_one() -> None:
        async with gate:
            sockets.append(await websockets.connect(url, ping_interval=None, open_timeout=120))

    started = time.perf_counter()
    await asyncio.gather(*(open_one() for _ in range(idle)))
    workers = children(process.pid)
    rss = rss_kb(process.pid)
    print(
        f"{len(sockets)} idle connections in {time.perf_counter() - started:.1f} s; "
        f"emulator RSS {rss / 1024:.0f} MB "
        f"({(rss - baseline) / max(len(sockets), 1):.1f} KB per connection); {len(workers)} workers, "
        f"{sum(rss_kb(pid) for pid in workers) / 1024:.0f} MB"
    )
    started = time.perf_counter()
    process.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(process.wait, 300)
    left = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    print(f"Ctrl-C: exit {code} after {time.perf_counter() - started:.1f} s; workers left: {left}")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    extra = arguments[arguments.index("--") + 1 :] if "--" in arguments else []
    count = int(arguments[0]) if arguments and arguments[0] != "--" else 10_000
    asyncio.run(measure(count, extra))
