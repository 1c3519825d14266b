"""The emulator's CPU per message, and ``lambdacast local`` against serverless-offline on one boto3 echo app.

Both serve ``bench/apps/echo`` (the same ``app.py``; ``offline.py`` says how serverless-offline gets it),
started once each and driven in turns over real sockets on 127.0.0.1, so that both see the machine's
load of the same minutes: a cold round each, two settling rounds each (shown, not counted: serverless-
offline is still starting processes), then warm rounds alternating between them, at 100 clients
x 20 messages (each client sends a frame and awaits its echo, on a fresh connection per round) and at
one client. ``lambdacast local`` also answers the app's ``reply`` route (a route response, no
``@connections`` call) to show what the echo's POST costs.

CPU per message is read from /proc: the emulator's main process, and its workers (every descendant
alive at the end of the round, plus what reaped ones used): for ``lambdacast local`` the aiohttp
process and its Lambda workers, for serverless-offline the Node.js process and its Python processes.

``worker_overhead`` times the worker runtimes alone: a no-op handler invoked through the worker protocol,
the worker process's CPU per invocation (what the emulator adds around a handler).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from bench import emulator_profile, handler_profile, offline
from bench import local_measure as lm

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "bench" / "apps" / "echo" / "template.yaml"
LOCAL, OFFLINE = "lambdacast local", "serverless-offline"
SETTLING_ROUNDS = 2
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Round:
    """One round of clients against one emulator."""

    emulator: str
    path: str
    """``echo``: the handler posts through boto3; ``reply``: the route response answers."""
    phase: str
    clients: int
    messages: int
    p50_ms: float
    p99_ms: float
    per_second: float
    main_cpu_ms: float
    """CPU per message of the emulator's own process."""
    workers_cpu_ms: float
    """CPU per message of its function processes."""
    workers: int
    clients_cpu_ms: float = 0.0
    """CPU per message of the bench process driving the clients (websockets, this process)."""


@dataclass
class EchoResults:
    """Everything :func:`run` measured."""

    rounds: list[Round] = field(default_factory=list)
    offline: str = ""
    """serverless-offline's version when it ran; else why it did not (one line)."""
    offline_ran: bool = False
    worker_overhead_ms: dict[str, float] = field(default_factory=dict)
    """Runtime -> worker-process CPU per invocation of a no-op handler."""
    emulator_profile: dict[str, Any] = field(default_factory=dict)
    """The main process's CPU per echoed message, part by part (``bench/emulator_profile.py``)."""
    handler_profile: dict[str, Any] = field(default_factory=dict)
    """The echo handler's boto3 call profiled alone (``bench/handler_profile.py``)."""


def _cpu(pid: int) -> tuple[float, float]:
    """(own CPU, reaped children's CPU) in seconds; zeros once the process is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK, (int(fields[13]) + int(fields[14])) / _TICK


class _Tree:
    """CPU of a process and of its descendants over an interval."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._main, self._reaped = _cpu(pid)
        self._workers = {child: _cpu(child)[0] for child in lm.children(pid)}

    def since(self) -> tuple[float, float, int]:
        """(main seconds, workers seconds, workers alive) since construction."""
        main, reaped = _cpu(self.pid)
        alive = lm.children(self.pid)
        workers = sum(_cpu(child)[0] - self._workers.get(child, 0.0) for child in alive)
        return main - self._main, workers + reaped - self._reaped, len(alive)


async def drive(url: str, clients: int, messages: int, path: str) -> tuple[float, float, float]:
    """``clients`` concurrent clients each send ``messages`` frames one at a time; (p50, p99, msg/s)."""
    rtts: list[float] = []

    async def client(k: int) -> None:
        async with websockets.connect(url, open_timeout=120, ping_interval=None) as ws:
            for i in range(messages):
                text = f"m{k}-{i}" if path == "echo" else json.dumps({"action": "reply", "n": f"m{k}-{i}"})
                started = time.perf_counter()
                await ws.send(text)
                reply = await asyncio.wait_for(ws.recv(), 60)
                if reply != text:
                    raise RuntimeError(f"client {k} got {reply!r} for {text!r}")
                rtts.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(client(k) for k in range(clients)))
    except Exception as exc:
        raise RuntimeError(f"{type(exc).__name__}: {exc} (at {url})") from exc
    elapsed = time.perf_counter() - started
    rtts.sort()
    return statistics.median(rtts), lm.percentile(rtts, 0.99), len(rtts) / elapsed


async def _round(  # noqa: PLR0917 - what a round is: who, which path, which phase, how many
    emulator: lm.LocalEmulator, name: str, path: str, phase: str, clients: int, messages: int
) -> Round:
    tree = _Tree(emulator.process.pid)
    driving = time.process_time()
    try:
        p50, p99, rate = await drive(emulator.url, clients, messages, path)
    except RuntimeError as exc:
        tail = "\n".join(text for _, text in emulator.lines[-15:])
        raise RuntimeError(f"{name}, {path} {phase} {clients} x {messages}: {exc}; it said:\n{tail}") from exc
    await asyncio.sleep(0.5)  # the last $disconnect invocations of the round
    main, workers, alive = tree.since()
    count = clients * messages
    return Round(
        name,
        path,
        phase,
        clients,
        messages,
        p50,
        p99,
        rate,
        main * 1000 / count,
        workers * 1000 / count,
        alive,
        clients_cpu_ms=(time.process_time() - driving) * 1000 / count,
    )


async def _compare(
    results: EchoResults, local: lm.LocalEmulator, other: lm.LocalEmulator | None, warm: int, report: Any
) -> None:
    contenders = [(LOCAL, local)] + ([(OFFLINE, other)] if other is not None else [])
    for name, emulator in contenders:
        report(await _round(emulator, name, "echo", "cold", 100, 20))
    # serverless-offline keeps starting Python processes for a while after the cold round (one per
    # concurrent invocation, no cap); rounds until it stops are shown, not counted as warm.
    for _ in range(SETTLING_ROUNDS):
        for name, emulator in contenders:
            report(await _round(emulator, name, "echo", "settling", 100, 20))
    for _ in range(warm):
        for name, emulator in contenders:
            report(await _round(emulator, name, "echo", "warm", 100, 20))
    for _ in range(warm):
        for name, emulator in contenders:
            report(await _round(emulator, name, "echo", "warm", 1, 200))
    for _ in range(warm):
        report(await _round(local, LOCAL, "reply", "warm", 100, 20))
        report(await _round(local, LOCAL, "reply", "warm", 1, 200))


def run(warm: int = 3, progress: Callable[[str], None] = print) -> EchoResults:
    """The side-by-side rounds (serverless-offline skipped, saying why, when npm cannot install it)."""
    results = EchoResults()
    installed = offline.install()
    if isinstance(installed, str):
        results.offline = installed
        progress(f"  serverless-offline comparison SKIPPED: {installed}")
    else:
        results.offline, results.offline_ran = offline.version(installed), True
        progress(f"  {results.offline} from {installed}")

    def report(one: Round) -> None:
        results.rounds.append(one)
        progress(
            f"  {one.emulator:<18} {one.path:<5} {one.phase} {one.clients:>3} x {one.messages}: "
            f"{one.per_second:6.0f} msg/s, p50 {one.p50_ms:6.1f} ms, p99 {one.p99_ms:6.1f} ms; CPU per "
            f"message: main {one.main_cpu_ms:.3f} ms, workers {one.workers_cpu_ms:.3f} ms ({one.workers})"
        )

    async def both() -> None:
        with lm.running(APP) as local:
            if isinstance(installed, str):
                await _compare(results, local, None, warm, report)
                return
            with offline.running(installed) as other:
                await _compare(results, local, other, warm, report)

    asyncio.run(both())
    results.worker_overhead_ms = worker_overhead()
    for runtime, cost in results.worker_overhead_ms.items():
        progress(f"  worker overhead around a no-op handler, {runtime}: {cost:.4f} ms CPU per invocation")
    main_cpu = [
        r.main_cpu_ms
        for r in results.rounds
        if (r.emulator, r.path, r.phase, r.clients) == (LOCAL, "echo", "warm", 100)
    ]
    if main_cpu:
        results.emulator_profile = emulator_profile.run(APP, drive, statistics.median(main_cpu))
        progress(
            f"  lambdacast local's main process, profiled: {results.emulator_profile.get('skipped', '')}"
        )
        for label, cost in results.emulator_profile.get("parts", {}).items():
            progress(f"    {cost:.3f} ms {label}")
    profiled = handler_profile.run()
    results.handler_profile = dataclasses.asdict(profiled)
    if profiled.skipped:
        progress(f"  the handler's boto3 call: profile SKIPPED: {profiled.skipped}")
    else:
        progress(f"  the handler's boto3 call alone: {profiled.cpu_ms_per_call:.3f} ms CPU, of which")
        for label, cost in profiled.phases.items():
            progress(f"    {cost:.3f} ms {label}")
    return results


def _worker_cpu_per_invocation(argv: list[str], cwd: Path, invocations: int) -> float:
    """Drive one worker over its pipes; its CPU per invocation after a warm-up, ms."""
    from lambdacast_local.events import Connection, Stage, message_event, now_ms

    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=cwd)
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        ready = json.loads(process.stdout.readline())
        if ready.get("type") != "ready":
            raise RuntimeError(f"worker {argv[0]} did not start: {ready}")
        event = message_event(
            Stage("bench00api", "bench", "127.0.0.1:443"),
            Connection("BFHPhfCWIAMCKlQ=", now_ms(), "127.0.0.1"),
            "$default",
            json.dumps({"action": "publish", "channel": "room", "data": {"text": "hello"}}),
        )
        line = (
            json.dumps({"request_id": "0" * 36, "deadline_ms": now_ms() + 600_000, "event": event}) + "\n"
        ).encode()

        def invoke(count: int) -> None:
            for _ in range(count):
                process.stdin.write(line)  # type: ignore[union-attr]
                process.stdin.flush()  # type: ignore[union-attr]
                if not json.loads(process.stdout.readline()).get("ok"):  # type: ignore[union-attr]
                    raise RuntimeError(f"worker {argv[0]} failed an invocation")

        invoke(500)
        before = _cpu(process.pid)[0]
        invoke(invocations)
        return (_cpu(process.pid)[0] - before) * 1000 / invocations
    finally:
        process.stdin.close()
        process.wait(10)


def worker_overhead(invocations: int = 10_000) -> dict[str, float]:
    """Worker CPU per invocation of a handler that does nothing: Python 3.13 and Node.js workers."""
    from lambdacast_local.runtimes.interpreters import find_python
    from lambdacast_local.runtimes.launch import NODE_WORKER, PYTHON_WORKER

    found: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="lambdacast-bench-worker-") as where:
        code = Path(where)
        (code / "noop.py").write_text("def handler(event, context):\n    return {'statusCode': 200}\n")
        (code / "noop.mjs").write_text("export const handler = async () => ({ statusCode: 200 });\n")
        config = {
            "code_dir": where, "function_name": "noop", "function_arn": "arn:aws:lambda:::function:noop",
            "memory_mb": 128, "log_stream_name": "bench", "hosts": {},
        }  # fmt: skip
        python = find_python("3.13")
        if python is not None:
            settings = json.dumps({**config, "handler": "noop.handler", "paths": [where]})
            argv = [str(python.path), "-I", "-S", str(PYTHON_WORKER), settings]
            found[f"Python {python.version}"] = _worker_cpu_per_invocation(argv, code, invocations)
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
        if node.returncode == 0:
            settings = json.dumps({**config, "handler": "noop.handler", "esm_paths": []})
            argv = ["node", str(NODE_WORKER), settings]
            found[f"Node.js {node.stdout.strip()}"] = _worker_cpu_per_invocation(argv, code, invocations)
    return found


if __name__ == "__main__":
    run(warm=int(sys.argv[1]) if len(sys.argv) > 1 else 3)
