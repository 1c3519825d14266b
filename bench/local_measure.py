"""Drive ``lambdacast local`` from outside, as a user would: echo round trips, idle connections, RSS.

Used by :mod:`bench.emulator_bench` (``make bench``) and runnable alone (the measurement behind
docs/local.md's numbers)::

    .venv/bin/python -m bench.local_measure [IDLE_CONNECTIONS] [-- extra lambdacast local flags]

It starts ``lambdacast local`` (the CLI, in its own process) on the echo test app, drives 100 echo
clients twice (cold, then warm workers), opens IDLE_CONNECTIONS idle sockets (default 10,000; needs
that many file descriptors on both sides), reports the RSS of the emulator's process tree, then sends
Ctrl-C and checks that no worker process is left. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import re
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

ROOT = Path(__file__).resolve().parent.parent
ECHO = ROOT / "tests" / "functional" / "apps" / "echo" / "template.yaml"
_INVOCATION = re.compile(r"^\d\d:\d\d:\d\d\.\d+\s+(\S+)\s+(\S+)\s+([\d.]+) ms\s+(cold|warm)")


def rss_kb(pid: int) -> int:
    """Resident set size of one process, KB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (workers and anything they started)."""
    found: set[int] = set()
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found |= {int(child) for child in (task / "children").read_text().split()}
    except OSError:
        return found
    for child in list(found):
        found |= children(child)
    return found


def tree_rss_kb(pid: int) -> int:
    """RSS of ``pid`` and all its descendants, KB (shared pages counted once per process)."""
    return rss_kb(pid) + sum(rss_kb(child) for child in children(pid))


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``wanted`` (children inherit it); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


@dataclass(frozen=True)
class Invocation:
    """One invocation line the CLI printed."""

    at: float
    """``time.monotonic()`` when the line was read."""
    label: str
    function: str
    duration_ms: float
    cold: bool


@dataclass
class LocalEmulator:
    """A running ``lambdacast local`` process and what it printed."""

    process: subprocess.Popen[str]
    url: str
    lines: list[tuple[float, str]] = field(default_factory=list)

    def banner(self, pattern: str, timeout: float = 10.0) -> str:
        """The first group of ``pattern`` in the start-up lines (e.g. the embedded AWS endpoint)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, text in list(self.lines):
                match = re.search(pattern, text)
                if match:
                    return match.group(1)
            time.sleep(0.05)
        raise RuntimeError(f"lambdacast local never printed {pattern!r}")

    def invocations(self, since: float = 0.0, label: str | None = None) -> list[Invocation]:
        """Invocation lines read after ``since`` (monotonic), optionally of one route label."""
        found: list[Invocation] = []
        for at, line in list(self.lines):
            match = _INVOCATION.match(line)
            if at >= since and match and (label is None or match.group(1) == label):
                found.append(
                    Invocation(
                        at, match.group(1), match.group(2), float(match.group(3)), match.group(4) == "cold"
                    )
                )
        return found


@dataclass(frozen=True)
class Shutdown:
    """How Ctrl-C went."""

    exit_code: int | None
    seconds: float
    workers_left: list[int]


@contextmanager
def running(
    template: Path, extra: Sequence[str] = (), launcher: Sequence[str] = ("-m", "lambdacast_local.cli")
) -> Iterator[LocalEmulator]:
    """Run ``lambdacast local`` on ``template`` (free ports, no web server) until the block ends.

    ``launcher``: the Python arguments that run the CLI (a profiling wrapper, say).
    """
    command = [sys.executable, *launcher, "local", "-t", str(template)]
    command += ["--port", "0", "--http-port", "0", "--no-web", *extra]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    try:
        url = None
        seen: list[str] = []
        while url is None:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("lambdacast local exited before listening:\n" + "".join(seen[-20:]))
            seen.append(line)
            match = re.search(r"WebSocket URL:\s+(\S+)", line)
            url = match.group(1) if match else None
        emulator = LocalEmulator(process, url)
        stream = process.stdout

        def pump() -> None:
            for text in stream:
                emulator.lines.append((time.monotonic(), text.rstrip("\n")))

        threading.Thread(target=pump, daemon=True, name="lambdacast-local-output").start()
        yield emulator
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def stop(emulator: LocalEmulator, timeout: float = 300.0, *, force_after: float | None = None) -> Shutdown:
    """Ctrl-C the emulator, wait for it, and list the workers still alive afterwards.

    ``force_after`` seconds after the first Ctrl-C, a second one makes it exit at once (its workers
    exit when their stdin closes): for runs that do not measure the shutdown.
    """
    workers = children(emulator.process.pid)
    started = time.perf_counter()
    emulator.process.send_signal(signal.SIGINT)
    try:
        if force_after is not None:
            try:
                emulator.process.wait(force_after)
            except subprocess.TimeoutExpired:
                emulator.process.send_signal(signal.SIGINT)
        code: int | None = emulator.process.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    if force_after is not None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
            time.sleep(0.1)
    left = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    return Shutdown(code, time.perf_counter() - started, left)


@dataclass(frozen=True)
class Echo:
    """One round of echo clients: round-trip percentiles and throughput."""

    phase: str
    clients: int
    messages: int
    p50_ms: float
    p99_ms: float
    per_second: float


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


async def echo_round(url: str, phase: str, clients: int = 100, messages: int = 30) -> Echo:
    """``clients`` concurrent clients each send ``messages`` frames, one at a time, and await the echo."""
    rtts: list[float] = []

    async def client(k: int) -> None:
        async with websockets.connect(url, open_timeout=120) as ws:
            for i in range(messages):
                started = time.perf_counter()
                await ws.send(f"m{k}-{i}")
                reply = await asyncio.wait_for(ws.recv(), 60)
                if reply != f"m{k}-{i}":
                    raise RuntimeError(f"echo client {k} got {reply!r}, sent m{k}-{i}")
                rtts.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - started
    rtts.sort()
    return Echo(
        phase, clients, messages, statistics.median(rtts), percentile(rtts, 0.99), len(rtts) / elapsed
    )


@dataclass(frozen=True)
class Idle:
    """Idle connections held at once, and what they cost the emulator's process tree."""

    opened: int
    seconds: float
    rss_before_kb: int
    rss_kb: int
    emulator_rss_kb: int
    workers: int
    fd_limit: int

    @property
    def kb_per_connection(self) -> float:
        return (self.rss_kb - self.rss_before_kb) / max(self.opened, 1)


async def hold_idle(emulator: LocalEmulator, count: int, sockets: list[Any], gate: int = 200) -> Idle:
    """Open ``count`` idle sockets (no pings) into ``sockets``; measure the tree's RSS while all are open.

    The sockets stay open (the caller closes them with :func:`close_all`, typically after stopping the
    emulator, to time its shutdown with every socket open).
    """
    limit = raise_fd_limit(count + 1024)
    pid = emulator.process.pid
    before = tree_rss_kb(pid)
    semaphore = asyncio.Semaphore(gate)

    async def open_one() -> None:
        async with semaphore:
            sockets.append(await websockets.connect(emulator.url, ping_interval=None, open_timeout=120))

    started = time.perf_counter()
    await asyncio.gather(*(open_one() for _ in range(count)))
    elapsed = time.perf_counter() - started
    await asyncio.sleep(1.0)  # let the last $connect invocations settle
    return Idle(
        opened=len(sockets),
        seconds=elapsed,
        rss_before_kb=before,
        rss_kb=tree_rss_kb(pid),
        emulator_rss_kb=rss_kb(pid),
        workers=len(children(pid)),
        fd_limit=limit,
    )


async def close_all(sockets: list[Any]) -> None:
    """Close client sockets (quick once the emulator has closed its side)."""
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    sockets.clear()


async def measure(idle: int, extra: list[str]) -> None:
    """The stand-alone run: echo (cold, warm), idle connections, Ctrl-C with them open."""
    raise_fd_limit(idle + 1024)
    with running(ECHO, extra) as emulator:
        for phase in ("cold", "warm"):
            echo = await echo_round(emulator.url, phase)
            rate = f"{echo.per_second:.0f} msg/s"
            print(f"echo {phase}: p50 {echo.p50_ms:.1f} ms, p99 {echo.p99_ms:.1f} ms, {rate}")
        sockets: list[Any] = []
        held = await hold_idle(emulator, idle, sockets)
        print(
            f"{held.opened} idle connections in {held.seconds:.1f} s; "
            f"emulator tree RSS {held.rss_kb / 1024:.0f} MB "
            f"({held.rss_before_kb / 1024:.0f} MB before: "
            f"{held.kb_per_connection:.1f} KB per connection); "
            f"emulator process alone {held.emulator_rss_kb / 1024:.0f} MB; {held.workers} workers"
        )
        shutdown = await asyncio.to_thread(stop, emulator)
        print(
            f"Ctrl-C: exit {shutdown.exit_code} after {shutdown.seconds:.1f} s; "
            f"workers left: {shutdown.workers_left}"
        )
        await close_all(sockets)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    flags = arguments[arguments.index("--") + 1 :] if "--" in arguments else []
    count = int(arguments[0]) if arguments and arguments[0] != "--" else 10_000
    asyncio.run(measure(count, flags))
