"""``python -m bench`` (``make bench``): run the suites, print the tables, write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from bench import coldstart, fanout_bench, machine, report
from bench.document import render
from bench.targets import EmulatorTarget, Running, StubTarget, Target

ROOT = Path(__file__).resolve().parent.parent


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--suite", choices=("all", "fanout", "coldstart"), default="all")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes, few rounds")
    parser.add_argument(
        "--latency-ms", type=float, default=10.0, help="injected per-call management-API latency"
    )
    parser.add_argument("--concurrency", type=int, default=64, help="fan-out concurrency (FanoutConcurrency)")
    parser.add_argument(
        "--target",
        choices=("auto", "emulator", "stub"),
        default="auto",
        help="management API to post to: lambdacast local with simulated connections (auto: if it starts), "
        "or a bare stub server",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    return parser.parse_args(argv)


def _describe(target: str, latency_ms: float) -> str:
    if target == "emulator":
        return (
            f"`lambdacast local` (bench/emulator_target.py: its real @connections API, simulated "
            f"connections as recipients, management latency {latency_ms:g} ms, separate process)"
        )
    return f"stub (bench/stub_server.py, {latency_ms:g} ms per call, separate process)"


def _start_target(stack: ExitStack, wanted: str, config: fanout_bench.FanoutConfig) -> tuple[Running, str]:
    """Start the wanted target; ``auto`` prefers the emulator and falls back to the stub, saying why."""
    if wanted in ("auto", "emulator"):
        emulator: Target = EmulatorTarget(
            config.latency_ms, connections=max(*config.sizes, config.concurrency)
        )
        try:
            return stack.enter_context(emulator.run()), _describe("emulator", config.latency_ms)
        except Exception as exc:
            if wanted == "emulator":
                raise
            reason = f"{type(exc).__name__}: {exc}"
            print(f"lambdacast local could not serve the benchmark ({reason}); using the stub", flush=True)
            return (
                stack.enter_context(StubTarget(config.latency_ms).run()),
                _describe("stub", config.latency_ms)
                + f", because lambdacast local failed to start: {reason}",
            )
    return stack.enter_context(StubTarget(config.latency_ms).run()), _describe("stub", config.latency_ms)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.monotonic()
    config = fanout_bench.FanoutConfig(latency_ms=args.latency_ms, concurrency=args.concurrency)
    cold_runs = 9
    if args.quick:
        config = fanout_bench.FanoutConfig(
            sizes=(100, 500), runs=2, runs_largest=2, sequential_max=100,
            latency_ms=args.latency_ms, concurrency=args.concurrency,
        )  # fmt: skip
        cold_runs = 2
    context = report.Context(
        machine=machine.describe(),
        when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        target="",
        fanout=config,
        cold_runs=cold_runs,
    )
    print(f"lambdacast benchmarks on {context.machine}", flush=True)
    load_before = machine.load()
    cells: list[fanout_bench.Cell] = []
    rows: list[coldstart.Row] = []
    if args.suite in ("all", "fanout"):
        print(
            f"fan-out: {args.latency_ms:g} ms injected latency, concurrency {config.concurrency}", flush=True
        )
        with ExitStack() as stack:
            target, used = _start_target(stack, args.target, config)
            context = dataclasses.replace(context, target=used)
            print(f"target: {used}", flush=True)
            cells = fanout_bench.run(target, config, progress=lambda line: print(line, flush=True))
    if args.suite in ("all", "coldstart"):
        print(f"cold start: {cold_runs} fresh interpreters per row", flush=True)
        rows = coldstart.run(ROOT, cold_runs, progress=lambda line: print(line, flush=True))
    context = dataclasses.replace(context, load=f"{load_before} at the start, {machine.load()} at the end")
    figures = report.plots(cells, rows, args.out.parent / "benchmarks", context.machine, config)
    text = render(context, cells, rows, figures, figure_dir=f"{args.out.stem}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print()
    print(text)
    print(
        f"wrote {args.out} and {len(figures)} figures in {time.monotonic() - started:.0f} s", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
