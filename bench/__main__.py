"""``python -m bench`` (``make bench``): run the suites; write docs/benchmarks.md, its plots and docs/cost.md.

``--only dynamodb,emulator`` (any of ``SUITES``) runs a subset; the other
suites' last results come from docs/benchmarks/results.json, dated in the documents; ``--only ''``
runs nothing and rewrites the documents from the stored results (after a change of prices, say).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    coldstart,
    cost_doc,
    echo_compare,
    emulator_bench,
    fanout_bench,
    latency_report,
    machine,
    reply_latency,
    report,
    results,
)
from bench import cost_model as cm
from bench.document import render
from bench.emulator_report import dynamodb_section, emulator_section
from bench.emulator_report import plot as emulator_plot
from bench.targets import EmulatorTarget, Running, StubTarget, Target

ROOT = Path(__file__).resolve().parent.parent
SUITES = ("fanout", "coldstart", "dynamodb", "emulator", "replies", "echo")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only", default=",".join(SUITES), help=f"comma-separated suites to run, of {', '.join(SUITES)}"
    )
    parser.add_argument("--suite", choices=("all", *SUITES), default="all", help="one suite (older spelling)")
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
    parser.add_argument("--cost-out", type=Path, default=ROOT / "docs" / "cost.md")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    if args.suite != "all":
        chosen = [args.suite]
    unknown = sorted(set(chosen) - set(SUITES))
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    args.suites = chosen
    return args


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


def _dynamodb(sizes: list[int], connections: int) -> list[dict[str, Any]]:
    """Run :mod:`bench.dynamodb_cost` in a child process (clean environment, moto kept out of here)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.dynamodb_cost", ",".join(map(str, sizes)), str(connections)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.dynamodb_cost failed:\n{done.stderr[-3000:]}")
    costs: list[dict[str, Any]] = json.loads(done.stdout)
    return costs


def _note(stored: dict[str, Any], suite: str, ran: list[str]) -> str:
    """A dated note for a suite whose results are older than the newest stored ones."""
    newest = max(str(entry["when"]) for entry in stored.values())
    if suite in ran or suite not in stored or stored[suite]["when"] == newest:
        return ""
    return f"*(Results of an earlier run, {stored[suite]['when']}, on {stored[suite]['machine']}.)* "


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one linear script of suites
    args = _parse(argv)
    started = time.monotonic()
    config = fanout_bench.FanoutConfig(latency_ms=args.latency_ms, concurrency=args.concurrency)
    emulator_config = emulator_bench.EmulatorConfig(latency_ms=args.latency_ms)
    ddb_sizes, ddb_connections = [1, 10, 100, 1_000], 10_000
    cold_runs = 9
    reply_rounds, echo_warm = 40, 3
    if args.quick:
        config = fanout_bench.FanoutConfig(
            sizes=(100, 500), runs=2, runs_largest=2, sequential_max=100,
            latency_ms=args.latency_ms, concurrency=args.concurrency,
        )  # fmt: skip
        emulator_config = emulator_bench.EmulatorConfig(
            idle=500, fanouts=(1, 10, 100), publishes=2, latency_ms=args.latency_ms
        )
        ddb_sizes, ddb_connections = [1, 10, 100], 1_000
        cold_runs = 2
        reply_rounds, echo_warm = 10, 1
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    here = machine.describe()
    store_path = args.out.parent / "benchmarks" / "results.json"
    stored = results.load(store_path)
    print(f"lambdacast benchmarks on {here}; suites: {', '.join(args.suites)}", flush=True)
    load_before = machine.load()
    progress = lambda line: print(line, flush=True)  # noqa: E731
    if "fanout" in args.suites:
        print(
            f"fan-out: {args.latency_ms:g} ms injected latency, concurrency {config.concurrency}", flush=True
        )
        with ExitStack() as stack:
            target, used = _start_target(stack, args.target, config)
            print(f"target: {used}", flush=True)
            cells = fanout_bench.run(target, config, progress=progress)
        stored["fanout"] = results.entry(
            when, here, results.cells_to_json(cells), target=used, config=dataclasses.asdict(config)
        )
        results.save(store_path, stored)  # after each suite: a later failure keeps what was measured
    if "coldstart" in args.suites:
        print(f"cold start: {cold_runs} fresh interpreters per row", flush=True)
        rows = coldstart.run(ROOT, cold_runs, progress=progress)
        stored["coldstart"] = results.entry(when, here, results.rows_to_json(rows), runs=cold_runs)
        results.save(store_path, stored)
    if "dynamodb" in args.suites:
        print(f"DynamoDB per publish: channels of {ddb_sizes} in {ddb_connections:,} connections", flush=True)
        stored["dynamodb"] = results.entry(when, here, _dynamodb(ddb_sizes, ddb_connections))
        results.save(store_path, stored)
    if "emulator" in args.suites:
        print("lambdacast local: echo, idle connections, publish to many sockets", flush=True)
        emulated = emulator_bench.run(emulator_config, progress=progress)
        stored["emulator"] = results.entry(when, here, results.emulator_to_json(emulated))
        results.save(store_path, stored)
    if "replies" in args.suites:
        print("replies: ping -> pong and publish -> ack, direct and posted, 0 and 10 ms", flush=True)
        replies = reply_latency.run(rounds=reply_rounds, progress=progress)
        stored["replies"] = results.entry(when, here, [dataclasses.asdict(c) for c in replies])
        results.save(store_path, stored)
    if "echo" in args.suites:
        print("echo: CPU per message; lambdacast local and serverless-offline side by side", flush=True)
        echoed = echo_compare.run(warm=echo_warm, progress=progress)
        stored["echo"] = results.entry(when, here, dataclasses.asdict(echoed))
    results.save(store_path, stored)

    fan = stored.get("fanout")
    cells = results.cells_from_json(fan["data"]) if fan else []
    config = results.config_from_json(fan["config"]) if fan else config
    cold = stored.get("coldstart")
    rows = results.rows_from_json(cold["data"]) if cold else []
    context = report.Context(
        machine=here,
        when=when,
        target=fan["target"] if fan else "",
        fanout=config,
        cold_runs=int(cold["runs"]) if cold else cold_runs,
        load=f"{load_before} at the start, {machine.load()} at the end",
    )
    sections: list[str] = []
    targets: list[str] = []
    figure_out = args.out.parent / "benchmarks"
    if "replies" in stored:
        lines, found = latency_report.replies_section(
            stored["replies"]["data"], _note(stored, "replies", args.suites), figure_out,
            args.out.stem, stored["replies"]["machine"],
        )  # fmt: skip
        sections += lines
        targets += found
    if "dynamodb" in stored:
        lines, found = dynamodb_section(stored["dynamodb"]["data"], _note(stored, "dynamodb", args.suites))
        sections += lines
        targets += found
        if "round_trips" in stored["dynamodb"]["data"][0]:
            lines, found = latency_report.dynamodb_rounds_section(
                stored["dynamodb"], stored.get("dynamodb_before"), figure_out, args.out.stem
            )
            sections += lines
            targets += found
    emulated_results = (
        results.emulator_from_json(stored["emulator"]["data"]) if "emulator" in stored else None
    )
    if emulated_results is not None:
        lines, found = emulator_section(emulated_results, _note(stored, "emulator", args.suites))
        figure = emulator_plot(
            emulated_results, args.out.parent / "benchmarks", stored["emulator"]["machine"]
        )
        if figure:
            lines += [f"![{figure}]({args.out.stem}/{figure})", ""]
        sections += lines
        targets += found
    if "echo" in stored:
        lines, found = latency_report.echo_section(
            stored["echo"]["data"], _note(stored, "echo", args.suites), figure_out,
            args.out.stem, stored["echo"]["machine"],
        )  # fmt: skip
        sections += lines
        targets += found
    figures = report.plots(cells, rows, args.out.parent / "benchmarks", here, config)
    notes = {suite: _note(stored, suite, args.suites) for suite in ("fanout", "coldstart")}
    text = render(
        context, cells, rows, figures, figure_dir=f"{args.out.stem}",
        sections=sections, more_targets=targets, notes=notes,
    )  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print()
    print(text)
    if "dynamodb" in stored and emulated_results is not None:
        _write_cost(
            args.cost_out, when=when, here=here, stored=stored, cells=cells, emulated=emulated_results
        )
    else:
        print(
            "docs/cost.md not rewritten: it needs the dynamodb and emulator suites' results", file=sys.stderr
        )
    print(
        f"wrote {args.out} and {len(figures)} figures in {time.monotonic() - started:.0f} s", file=sys.stderr
    )
    return 0


def _write_cost(
    path: Path,
    *,
    when: str,
    here: str,
    stored: dict[str, Any],
    cells: list[fanout_bench.Cell],
    emulated: emulator_bench.EmulatorResults,
) -> None:
    shipped = [c for c in cells if c.engine.startswith("core DirectBroadcaster")]  # what the handlers use
    cpu = max(shipped, key=lambda c: c.recipients).cpu_ms_per_post if shipped else None
    durations = {f.recipients: f.median_duration_ms for f in emulated.fanout if f.duration_ms}
    memory = cost_doc.template_memory_mb()
    inputs = cm.inputs_from(stored["dynamodb"]["data"], durations, cpu)
    rows = [cm.cost_row(i, memory_mb=memory) for i in inputs]
    sources: dict[str, str] = {
        suite: f"({stored[suite]['when']})" for suite in ("dynamodb", "emulator", "fanout") if suite in stored
    }
    threaded = [c for c in cells if c.engine.startswith("boto3 threads")]
    extra = {
        "cpu_ms_per_post": cpu,
        "boto3_cpu_ms_per_post": (
            max(threaded, key=lambda c: c.recipients).cpu_ms_per_post if threaded else None
        ),
        "latency_ms": emulated.fanout_latency_ms,
    }
    text = cost_doc.render(when=when, machine=here, rows=rows, memory_mb=memory, sources=sources, extra=extra)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
