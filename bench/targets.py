"""Where the fan-out benchmark posts to: a management API with an injected per-call latency.

* :class:`StubTarget` (default): :mod:`bench.stub_server`, a bare HTTP responder in its own process.
* :class:`EmulatorTarget` (``--target emulator``): ``lambdacast local`` itself, in its own process
  (:mod:`bench.emulator_target`), with ``management_latency_ms`` and simulated connections as
  recipients; every post goes through its real ``@connections`` API.

Both run outside the measured process, so only the publisher's CPU is counted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Running:
    """A live target: where to post, whom to post to, and how many posts it has accepted."""

    endpoint: str
    accepted: Callable[[], int]
    ids: Callable[[int], list[str]]


class Target(Protocol):
    """Starts a management API and yields it while the benchmark runs."""

    def run(self) -> AbstractContextManager[Running]:
        """Start the target; stop it on exit."""
        ...


def _synthetic_ids(count: int) -> list[str]:
    return [f"Bq{i:06d}cNfIAMc=" for i in range(count)]


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(frozen=True)
class StubTarget:
    """:mod:`bench.stub_server` in a separate process; any connection id is accepted."""

    latency_ms: float
    name: str = "stub"

    @contextmanager
    def run(self) -> Iterator[Running]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.stub_server", "--latency-ms", str(self.latency_ms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if not line.startswith("PORT "):
                raise RuntimeError(f"stub server did not start (said {line!r})")
            base = f"http://127.0.0.1:{int(line.split()[1])}"

            def accepted() -> int:
                with urllib.request.urlopen(f"{base}/_stats", timeout=10) as resp:
                    return int(json.load(resp)["posts"])

            yield Running(f"{base}/bench", accepted, _synthetic_ids)
        finally:
            _stop(proc)


@dataclass(frozen=True)
class EmulatorTarget:
    """``lambdacast local`` in a separate process, holding ``connections`` simulated recipients."""

    latency_ms: float
    connections: int
    template: Path = ROOT / "template.yaml"
    name: str = "emulator"

    @contextmanager
    def run(self) -> Iterator[Running]:
        log = tempfile.NamedTemporaryFile("w", prefix="bench-emulator-", suffix=".log", delete=False)  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "bench.emulator_target",
                "--latency-ms", str(self.latency_ms),
                "--connections", str(self.connections),
                "--template", str(self.template),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=ROOT,
        )  # fmt: skip
        try:
            assert proc.stdin is not None
            assert proc.stdout is not None
            hello = json.loads(proc.stdout.readline() or '{"error": "emulator exited"}')
            if "error" in hello:
                raise RuntimeError(f"lambdacast local did not start: {hello['error']} (log: {log.name})")
            ids: list[str] = hello["ids"]
            stdin, stdout = proc.stdin, proc.stdout

            def accepted() -> int:
                return _ask(stdin, stdout)

            def first(count: int) -> list[str]:
                if count > len(ids):
                    raise ValueError(f"the emulator holds {len(ids)} simulated connections, {count} asked")
                return ids[:count]

            yield Running(hello["endpoint"], accepted, first)
        finally:
            _stop(proc)
            log.close()
        Path(log.name).unlink(missing_ok=True)  # kept only when something went wrong


def _ask(stdin: IO[str], stdout: IO[str]) -> int:
    stdin.write("stats\n")
    stdin.flush()
    return int(json.loads(stdout.readline())["frames"])
