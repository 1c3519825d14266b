"""Where the fan-out benchmark posts to: a management API with an injected per-call latency.

Today that is :class:`StubTarget`, a minimal server process (:mod:`bench.stub_server`).
``lambdacast local --management-latency-ms N`` serves the same API, but it only accepts posts to
connections it really holds; once it can hold simulated recipients, add an ``EmulatorTarget``
with the same shape (a context manager yielding the endpoint and a stats probe) and select it
with ``python -m bench --target emulator``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Running:
    """A live target: where to post, and how to ask what it accepted."""

    endpoint: str
    stats_url: str

    def accepted(self) -> int:
        """Posts the target has answered 200 so far."""
        with urllib.request.urlopen(self.stats_url, timeout=10) as resp:
            return int(json.load(resp)["posts"])


class Target(Protocol):
    """Starts a management API and yields it while the benchmark runs."""

    name: str

    def run(self) -> AbstractContextManager[Running]:
        """Start the target; stop it on exit."""
        ...


@dataclass(frozen=True)
class StubTarget:
    """:mod:`bench.stub_server` in a separate process, so its CPU is not measured."""

    latency_ms: float
    name: str = "stub"

    @contextmanager
    def run(self) -> Iterator[Running]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.stub_server", "--latency-ms", str(self.latency_ms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if not line.startswith("PORT "):
                raise RuntimeError(f"stub server did not start (said {line!r})")
            port = int(line.split()[1])
            yield Running(f"http://127.0.0.1:{port}/bench", f"http://127.0.0.1:{port}/_stats")
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
