"""Fan-out engines side by side: wall time and deliveries per CPU-second of the publishing process.

Each (engine, recipients) cell runs several times; engines take turns within each round so that
drift on a shared machine hits them alike, and every ratio compares cells of the same run of
``make bench``. CPU is ``time.process_time()`` of this process (all its threads); the management
API runs in another process, so its CPU is not counted. Every run checks with the server that
it accepted as many posts as the engine claims.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench import engines
from bench.targets import Running


@dataclass(frozen=True)
class Sample:
    """One timed run."""

    wall_s: float
    cpu_s: float
    delivered: int


@dataclass
class Cell:
    """All runs of one engine at one size."""

    engine: str
    recipients: int
    samples: list[Sample] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return statistics.median(s.wall_s for s in self.samples)

    @property
    def cpu_s(self) -> float:
        return statistics.median(s.cpu_s for s in self.samples)

    @property
    def per_cpu_second(self) -> float:
        return statistics.median(s.delivered / s.cpu_s for s in self.samples if s.cpu_s > 0)

    @property
    def cpu_ms_per_post(self) -> float:
        return 1000 * self.cpu_s / self.recipients


@dataclass(frozen=True)
class FanoutConfig:
    """What to run."""

    sizes: Sequence[int] = (100, 1_000, 10_000)
    runs: int = 5
    runs_largest: int = 3
    concurrency: int = 64
    sequential_max: int = 1_000
    latency_ms: float = 10.0


def _measure(engine: engines.Engine, ids: list[str], target: Running) -> Sample:
    before = target.accepted()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    delivered = engine.post(ids)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    accepted = target.accepted() - before
    if delivered != len(ids) or accepted != len(ids):
        raise RuntimeError(f"{engine.name}: {len(ids)} sent, {delivered} delivered, {accepted} accepted")
    return Sample(wall, cpu, delivered)


def build_engines(
    endpoint: str, config: FanoutConfig, progress: Callable[[str], None]
) -> list[engines.Engine]:
    built = [
        engines.boto3_sequential(endpoint, config.sequential_max),
        engines.boto3_threads(endpoint, config.concurrency),
        engines.fastpost(endpoint, config.concurrency, botocore_signing=True),
        engines.fastpost(endpoint, config.concurrency),
    ]
    # The core's own Broadcaster paths; the core is young, so a change there skips them loudly.
    for factory in (engines.core_fast,):
        try:
            built.append(factory(endpoint, config.concurrency))
        except Exception as exc:
            progress(f"  SKIPPED {factory.__name__}: {type(exc).__name__}: {exc}")
    return built


def run(target: Running, config: FanoutConfig, progress: Callable[[str], None] = print) -> list[Cell]:
    """Run every engine at every size; return one cell per (engine, size) that ran."""
    built = build_engines(target.endpoint, config, progress)
    cells: dict[tuple[str, int], Cell] = {}
    try:
        for engine in built:
            _measure(engine, target.ids(config.concurrency), target)  # warm-up: clients, pools, sessions
        largest = max(config.sizes)
        for size in config.sizes:
            ids = target.ids(size)
            rounds = config.runs_largest if size == largest else config.runs
            for round_no in range(rounds):
                order = built[round_no % len(built) :] + built[: round_no % len(built)]
                for engine in order:
                    if engine.max_recipients is not None and size > engine.max_recipients:
                        continue
                    sample = _measure(engine, ids, target)
                    cells.setdefault((engine.name, size), Cell(engine.name, size)).samples.append(sample)
                    progress(
                        f"  {engine.name:<40} {size:>6} recipients  round {round_no + 1}/{rounds}: "
                        f"{sample.wall_s:7.3f} s wall, {sample.cpu_s:6.3f} s CPU"
                    )
    finally:
        for engine in built:
            engine.close()
    return [cells[key] for key in sorted(cells, key=lambda k: (k[1], [e.name for e in built].index(k[0])))]
