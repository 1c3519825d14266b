"""``python -m bench`` (``make bench``): run the suites, print the tables, write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import coldstart, fanout_bench, machine, report
from bench.document import render
from bench.targets import StubTarget

ROOT = Path(__file__).resolve().parent.parent


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--suite", choices=("all", "fanout", "coldstart"), default="all")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes, few rounds")
    parser.add_argument(
        "--latency-ms", type=float, default=10.0, help="injected per-call management-API latency"
    )
    parser.add_argument("--concurrency", type=int, default=64, help="fan-out concurrency (FanoutConcurrency)")
    parser.add_argument("--target", choices=("stub",), default="stub", help="management API to post to")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    return parser.parse_args(argv)


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
        target=f"{args.target} (bench/stub_server.py, {args.latency_ms:g} ms per call, separate process)",
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
        with StubTarget(args.latency_ms).run() as target:
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
