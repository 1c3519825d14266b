"""Where the emulator's main process spends its CPU per echoed message, part by part.

``lambdacast local`` runs the echo app under a profiling wrapper: cProfile with the thread's CPU clock
(the event loop runs on the main thread; waiting counts for nothing), switched on by ``SIGUSR1`` after a
warm-up round and off by ``SIGUSR2``, which also writes the per-function times. They are grouped into
the parts of the echo path (:mod:`bench.profile_parts`) and scaled to the main process's CPU per message
measured without the profiler. uvloop's transports are compiled code the profiler does not see: the
system call of a ``write`` counts for the Python function that made it (a worker pipe's for the Lambda
pool, a socket's for the WebSocket or ``@connections`` part), and the event loop's own work (``epoll``,
reads, dispatching callbacks), which runs outside every Python function, is the main thread's CPU
clock over the profiled rounds minus the functions' own time: "event loop". The profiler's own cost
falls on the Python functions, so the event loop's share is, if anything, understated.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import local_measure as lm
from bench.profile_parts import Parts, group, rows

_WRAPPER = r"""
import cProfile, json, os, pstats, runpy, signal, sys, time
from bench.profile_parts import entries

out = sys.argv.pop(1)
profile = cProfile.Profile(time.thread_time)
cpu = []  # the main thread's CPU clock at start and stop (signal handlers run on the main thread)

def start(*_):
    cpu.append(time.thread_time())
    profile.enable()

def stop(*_):
    profile.disable()
    cpu.append(time.thread_time())
    with open(out + ".part", "w") as written:
        json.dump({"cpu_s": cpu[-1] - cpu[0], "entries": entries(pstats.Stats(profile))}, written)
    os.replace(out + ".part", out)

signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, stop)
sys.argv[0] = "lambdacast"
runpy.run_module("lambdacast_local.cli", run_name="__main__")
"""

PARTS: Parts = (
    ("WebSocket frames in and out (aiohttp, frame limits)", ("aiohttp/", "lambdacast_local/frames.py")),
    (
        "@connections API (HTTP parsing, TLS, the POST's answer)",
        ("lambdacast_local/management", "httptools", "_ssl.", "/ssl.py", "sslproto"),
    ),
    (
        "Lambda workers (pool, pipe protocol, JSON)",
        ("lambdacast_local/lambda_pool", "lambdacast_local/runtimes/", "jsoncodec", "orjson"),
    ),
    (
        "API Gateway (events, ids, routing, integration)",
        (
            "lambdacast_local/events",
            "lambdacast_local/gateway",
            "lambdacast_local/routing",
            "lambdacast_local/integration",
            "lambdacast_local/server",
            "/uuid.py",
            "/base64.py",
        ),
    ),
    ("invocation log", ("lambdacast_local/cli",)),
    ("event loop (uvloop, asyncio: epoll, reads, dispatch)", ("asyncio/", "uvloop", "selectors.py")),
)

UNSEEN = "uvloop:0:<the event loop's compiled code, outside every Python function>"

Drive = Callable[[str, int, int, str], Awaitable[Any]]
"""``drive(url, clients, messages, path)``: one round of echo clients (``bench.echo_compare.drive``)."""


def run(template: Path, drive: Drive, main_cpu_ms: float, rounds: int = 2) -> dict[str, Any]:
    """Profile ``rounds`` rounds of 100 clients x 20 echoes after a warm-up, scaled to ``main_cpu_ms``."""
    with tempfile.TemporaryDirectory(prefix="lambdacast-bench-profile-") as where:
        out = Path(where) / "profile.json"
        with lm.running(template, launcher=("-c", _WRAPPER, str(out))) as emulator:
            pid = emulator.process.pid

            async def rounds_of_echo() -> None:
                await drive(emulator.url, 100, 20, "echo")  # warm-up, not profiled
                os.kill(pid, signal.SIGUSR1)
                for _ in range(rounds):
                    await drive(emulator.url, 100, 20, "echo")
                await asyncio.sleep(0.5)  # the round's last $disconnect invocations
                os.kill(pid, signal.SIGUSR2)

            asyncio.run(rounds_of_echo())
            waited = time.monotonic()
            while not out.exists():
                if time.monotonic() - waited > 60:
                    return {"skipped": "the profiled emulator wrote no profile within 60 s"}
                time.sleep(0.1)
            written = json.loads(out.read_text())
    found = rows(written["entries"])
    # The time no Python function was running (the event loop's compiled code, its system calls) is
    # what the main thread's CPU clock saw beyond the profiled functions' own time.
    unseen = written["cpu_s"] - sum(seconds for _, seconds, _ in found)
    found.append((UNSEEN, max(unseen, 0.0), []))
    return {
        "messages": rounds * 100 * 20,
        "main_cpu_ms": main_cpu_ms,
        "parts": group(found, main_cpu_ms, PARTS),
    }
