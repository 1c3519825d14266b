"""docs/benchmarks.md sections: replies, DynamoDB round trips per publish, the emulator's CPU per message.

Each section comes with its plot and its target lines; every median and ratio is of one run's results.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MAIN_CPU_TARGET_MS = 0.35
WORKER_OVERHEAD_TARGET_MS = 0.1
OFFLINE_RATIO_TARGET = 2.5


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out_dir: Path, name: str) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=110)
    _plt().close(fig)
    return name


# -- ping -> pong, publish -> ack ----------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def replies_section(
    cells: Sequence[dict[str, Any]], note: str, out_dir: Path, figure_dir: str, machine: str
) -> tuple[list[str], list[str]]:
    """The ping/ack section (direct vs posted replies at each management latency) and its targets."""
    rounds = len(cells[0]["ping"]["round_trips_ms"]) if cells else 0
    lines = [
        "## Replies: ping → pong and publish → ack",
        "",
        f"{note}One client through `lambdacast local` on the project's template, medians of {rounds} "
        "exchanges after 5 untimed ones (`bench/reply_latency.py`). *direct*: the template as it is, "
        "the reply is the `$default` route's response; *posted*: a copy with `DIRECT_REPLIES=false` and no "
        "route response, the reply posted back through `@connections`. The publish goes to a channel with "
        "no other subscriber (no echo). *POSTs* are the emulator's own count of `@connections` calls per "
        "exchange (`GET /_lambdacast/connections`).",
        "",
        "| replies | management latency | ping → pong | POSTs per ping | publish → ack | POSTs per publish |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        lines.append(
            f"| {c['mode']} | {c['management_latency_ms']:g} ms "
            f"| {_median(c['ping']['round_trips_ms']):.1f} ms "
            f"| {c['ping']['posts_per_exchange']:g} | {_median(c['publish']['round_trips_ms']):.1f} ms "
            f"| {c['publish']['posts_per_exchange']:g} |"
        )
    lines.append("")
    targets: list[str] = []
    by = {(c["mode"], c["management_latency_ms"]): c for c in cells}
    latencies = sorted({c["management_latency_ms"] for c in cells})
    if len(latencies) >= 2 and all(("direct", lat) in by for lat in latencies):
        low, high = latencies[0], latencies[-1]
        for kind, label in (("ping", "ping → pong"), ("publish", "publish → ack")):
            grew = _median(by["direct", high][kind]["round_trips_ms"]) - _median(
                by["direct", low][kind]["round_trips_ms"]
            )
            posted = (
                _median(by["posted", high][kind]["round_trips_ms"])
                - _median(by["posted", low][kind]["round_trips_ms"])
                if ("posted", high) in by and ("posted", low) in by
                else float("nan")
            )
            ok = grew < (high - low) / 2 and by["direct", high][kind]["posts_per_exchange"] == 0
            targets.append(
                f"{label} no longer grows with the management latency: {grew:+.1f} ms from {low:g} to "
                f"{high:g} ms with direct replies ({posted:+.1f} ms when posted), "
                f"{by['direct', high][kind]['posts_per_exchange']:g} `@connections` calls each: "
                f"**{'met' if ok else 'NOT met'}**."
            )
    figure = _replies_plot(cells, out_dir, machine)
    if figure:
        lines += [f"![{figure}]({figure_dir}/{figure})", ""]
    return lines, targets


def _replies_plot(cells: Sequence[dict[str, Any]], out_dir: Path, machine: str) -> str | None:
    if not cells:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    latencies = sorted({c["management_latency_ms"] for c in cells})
    modes = list(dict.fromkeys(c["mode"] for c in cells))
    width = 0.8 / max(1, len(modes))
    for ax, (kind, title) in zip(axes, (("ping", "ping → pong"), ("publish", "publish → ack")), strict=True):
        for i, mode in enumerate(modes):
            values = [
                next(
                    (
                        _median(c[kind]["round_trips_ms"])
                        for c in cells
                        if c["mode"] == mode and c["management_latency_ms"] == lat
                    ),
                    0,
                )
                for lat in latencies
            ]
            xs = [x + (i - (len(modes) - 1) / 2) * width for x in range(len(latencies))]
            bars = ax.bar(xs, values, width, label=f"{mode} replies")
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.set_xticks(range(len(latencies)), [f"{lat:g} ms" for lat in latencies])
        ax.set(xlabel="--management-latency-ms", ylabel="ms (median)", title=title)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"lambdacast local, the project's template, one client\n{machine}", fontsize=9)
    return _save(fig, out_dir, "replies.png")


# -- DynamoDB calls per publish, before and after -------------------------------------------------------


def dynamodb_rounds_section(
    after: dict[str, Any], before: dict[str, Any] | None, out_dir: Path, figure_dir: str
) -> tuple[list[str], list[str]]:
    """Calls and sequential round trips per publish: the stored earlier run against this one."""
    lines = [
        "### Calls and sequential round trips per publish, before and after",
        "",
        "*Round trips* are the requests that waited for an earlier one's answer, plus one (from when "
        "botocore sent each request and parsed its answer). *No other subscriber*: the channel of 1 (the "
        "publisher alone; it asked for echo, so it is the one recipient); *with subscribers*: the larger "
        "channels.",
    ]
    rows: list[tuple[str, dict[str, Any], bool]] = []
    if before is not None:
        lines[-1] += (
            f" *Before*: this bench's run of {before['when']} (the code of that day: a subscription check, "
            "the counter, the history item and the subscriber Query, each sent after the previous one "
            "answered, so its round trips are its calls)."
        )
        rows += [(f"before ({before['when']})", c, True) for c in before["data"]]
    rows += [("after (this run)", c, False) for c in after["data"]]
    lines += [
        "",
        "| code | subscribers | requests, in order | calls | sequential round trips |",
        "|---|---:|---|---:|---:|",
    ]
    for label, c, sequential in rows:
        trips = len(c["operations"]) if sequential else c["round_trips"]
        lines.append(
            f"| {label} | {c['subscribers']:,} | {', '.join(c['operations'])} "
            f"| {len(c['operations'])} | {trips} |"
        )
    lines.append("")
    targets: list[str] = []
    solo = next((c for c in after["data"] if c["subscribers"] == 1), None)
    if solo is not None:
        old = next((c for c in before["data"] if c["subscribers"] == 1), None) if before else None
        was = f" (was {len(old['operations'])} calls in {len(old['operations'])} round trips)" if old else ""
        targets.append(
            f"DynamoDB per publish to a channel with no other subscriber: {len(solo['operations'])} calls in "
            f"{solo['round_trips']} sequential round trips ({', '.join(solo['operations'])}){was} (reported)."
        )
    figure = _dynamodb_plot(rows, out_dir)
    lines += [f"![{figure}]({figure_dir}/{figure})", ""]
    return lines, targets


def _dynamodb_plot(rows: Sequence[tuple[str, dict[str, Any], bool]], out_dir: Path) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sizes = sorted({c["subscribers"] for _, c, _ in rows})
    codes = list(dict.fromkeys(label for label, _, _ in rows))
    width = 0.8 / (2 * max(1, len(codes)))
    for i, code in enumerate(codes):
        mine = {c["subscribers"]: (c, seq) for label, c, seq in rows if label == code}
        calls = [len(mine[s][0]["operations"]) if s in mine else 0 for s in sizes]
        trips = [
            (len(mine[s][0]["operations"]) if mine[s][1] else mine[s][0]["round_trips"]) if s in mine else 0
            for s in sizes
        ]
        base = [x + (2 * i - len(codes) + 0.5) * width for x in range(len(sizes))]
        ax.bar(base, calls, width, label=f"{code}: calls")
        ax.bar([x + width for x in base], trips, width, label=f"{code}: sequential round trips", hatch="//")
    ax.set_xticks(range(len(sizes)), [f"{s:,}" for s in sizes])
    ax.set(xlabel="subscribers of the channel", ylabel="per publish", title="DynamoDB requests per publish")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out_dir, "dynamodb_calls.png")


# -- the emulator's CPU per message, and serverless-offline --------------------------------------------


def _warm(rounds: Sequence[dict[str, Any]], emulator: str, path: str, clients: int) -> list[dict[str, Any]]:
    return [
        r
        for r in rounds
        if r["emulator"] == emulator
        and r["path"] == path
        and r["phase"] == "warm"
        and r["clients"] == clients
    ]


def _med(rounds: Sequence[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rounds) if rounds else float("nan")


def echo_section(
    results: dict[str, Any], note: str, out_dir: Path, figure_dir: str, machine: str
) -> tuple[list[str], list[str]]:
    """The CPU split, the side-by-side table, their plots and targets."""
    rounds = results["rounds"]
    local, offline = "lambdacast local", "serverless-offline"
    lines = [
        "## lambdacast local: CPU per message, and serverless-offline side by side",
        "",
        f"{note}`bench/echo_compare.py`: the boto3 echo app of `bench/apps/echo` (its `$default` posts "
        "each frame back with boto3's `post_to_connection`; Python 3.11 in both emulators, the same "
        "`app.py`), each emulator started once and driven in turns, so both see the same minutes of the "
        "machine: a cold round each, two *settling* rounds each (shown, not counted: serverless-offline "
        "is still starting Python processes then), then warm rounds alternating. 100 clients x 20 "
        "messages (each client sends a frame and awaits its echo; fresh connections each round, so "
        "`$connect` and `$disconnect` are in it) and one client x 200. *main* is the emulator's own "
        "process (lambdacast local: the aiohttp process; serverless-offline: the Node.js process), "
        "*workers* its function processes. The *reply* rows are lambdacast local answering through a "
        "route response instead (no `@connections` call).",
        "",
    ]
    if not results["offline_ran"]:
        lines += [f"**serverless-offline: SKIPPED** ({results['offline']}).", ""]
    else:
        lines += [f"serverless-offline: {results['offline']}, installed by the bench with npm.", ""]
    lines += [
        "| emulator | path | round | clients x messages | messages/s | p50 | p99 | main CPU per message "
        "| workers CPU per message | worker processes |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rounds:
        lines.append(
            f"| {r['emulator']} | {r['path']} | {r['phase']} | {r['clients']} x {r['messages']} "
            f"| {r['per_second']:.0f} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms "
            f"| {r['main_cpu_ms']:.3f} ms | {r['workers_cpu_ms']:.3f} ms | {r['workers']} |"
        )
    lines.append("")
    overhead = results.get("worker_overhead_ms", {})
    if overhead:
        lines += [
            "Worker overhead around the handler (a no-op handler driven through the worker protocol, "
            "10,000 invocations after 500, the worker process's CPU): "
            + ", ".join(f"{runtime} {cost:.3f} ms" for runtime, cost in overhead.items())
            + " per invocation.",
            "",
        ]
    targets: list[str] = []
    warm_local = _warm(rounds, local, "echo", 100)
    if warm_local:
        main = _med(warm_local, "main_cpu_ms")
        targets.append(
            f"lambdacast local's main process ≤ {MAIN_CPU_TARGET_MS} ms of CPU per echoed message "
            f"(100 clients, warm, median of {len(warm_local)} rounds): {main:.3f} ms, "
            f"workers {_med(warm_local, 'workers_cpu_ms'):.3f} ms: "
            f"**{'met' if round(main, 3) <= MAIN_CPU_TARGET_MS else 'NOT met'}**."  # in 0.005 ms steps
        )
    if overhead:
        worst = max(overhead.values())
        targets.append(
            f"Worker overhead around the handler ≤ {WORKER_OVERHEAD_TARGET_MS} ms: at most {worst:.3f} ms: "
            f"**{'met' if round(worst, 3) <= WORKER_OVERHEAD_TARGET_MS else 'NOT met'}**."
        )
    warm_offline = _warm(rounds, offline, "echo", 100)
    if warm_local and warm_offline:
        ratio = _med(warm_local, "per_second") / _med(warm_offline, "per_second")
        single = _med(_warm(rounds, local, "echo", 1), "per_second") / _med(
            _warm(rounds, offline, "echo", 1), "per_second"
        )
        targets.append(
            f"≥ {OFFLINE_RATIO_TARGET} times serverless-offline's messages per second on the boto3 echo "
            f"(100 clients, warm, medians of the same run): {_med(warm_local, 'per_second'):.0f} against "
            f"{_med(warm_offline, 'per_second'):.0f} msg/s, **{ratio:.1f} times**: "
            f"**{'met' if ratio >= OFFLINE_RATIO_TARGET else 'NOT met'}** (one client: {single:.2f} times)."
        )
        lines += _bound(warm_local, warm_offline, overhead)
        lines += _profile(results.get("handler_profile") or {})
    elif not results["offline_ran"]:
        targets.append(f"lambdacast local vs serverless-offline: **skipped** ({results['offline']}).")
    lines += _main_profile(results.get("emulator_profile") or {})
    for figure in (_cpu_plot(rounds, out_dir, machine), _offline_plot(rounds, out_dir, machine)):
        if figure:
            lines += [f"![{figure}]({figure_dir}/{figure})", ""]
    return lines, targets


def _bound(
    warm_local: Sequence[dict[str, Any]], warm_offline: Sequence[dict[str, Any]], overhead: dict[str, float]
) -> list[str]:
    """What bounds the throughput ratio, from this run's CPU per message."""
    cores = os.cpu_count() or 2
    main, workers = _med(warm_local, "main_cpu_ms"), _med(warm_local, "workers_cpu_ms")
    clients = _med(warm_local, "clients_cpu_ms") if "clients_cpu_ms" in warm_local[0] else 0.0
    other = _med(warm_offline, "main_cpu_ms") + _med(warm_offline, "workers_cpu_ms")
    rate = _med(warm_offline, "per_second")
    budget = cores * 1000 / (OFFLINE_RATIO_TARGET * rate)
    runtime = max(overhead.values(), default=0.0)
    ceiling = cores * 1000 / (main + workers + clients)
    return [
        f"**What bounds the throughput ratio** (this run, 100 clients, warm medians): a message costs "
        f"lambdacast local {main + workers:.2f} ms of CPU (main {main:.2f} + workers {workers:.2f}, of which "
        f"the worker runtime around the handler {runtime:.3f}: the rest is the handler's own boto3 call), "
        f"serverless-offline {other:.2f} ms, and the bench's clients {clients:.2f} ms. "
        f"{OFFLINE_RATIO_TARGET} times serverless-offline's {rate:.0f} messages/s is "
        f"{OFFLINE_RATIO_TARGET * rate:.0f}: on {cores} cores with nothing else running, "
        f"{budget:.2f} ms of CPU per message for everything. The handler and the clients alone take "
        f"{workers + clients:.2f} ms, which would leave the emulator's process "
        f"{max(budget - workers - clients, 0):.2f} ms; with today's {main:.2f} ms the ceiling is "
        f"{ceiling:.0f} messages/s, {ceiling / rate:.1f} times, before any other work on the machine takes "
        "its share.",
        "",
    ]


def _main_profile(found: dict[str, Any]) -> list[str]:
    """The emulator's main process per echoed message, part by part."""
    if not found:
        return []
    if found.get("skipped"):
        return [f"**The main process, profiled: SKIPPED** ({found['skipped']}).", ""]
    lines = [
        f"**Where the main process's CPU goes** (`bench/emulator_profile.py`): lambdacast local under "
        f"cProfile (the thread's CPU clock) for {found['messages']:,} echoed messages after a warm-up round, "
        "100 clients, fresh connections each round; each part's share scaled to the median main-process CPU "
        f"of the warm rounds above, **{found['main_cpu_ms']:.3f} ms** per message. The event loop's "
        "compiled code (epoll, socket and pipe reads, dispatch) is the thread's CPU beyond every Python "
        "function's own time; a transport's `write` system call counts for the Python function that made it. "
        "Per message the process reads a WebSocket frame, writes the invocation to a worker's pipe and "
        "reads its reply, reads and answers the handler's `@connections` POST over TLS, and writes the "
        "frame: six system calls plus the loop's wake-ups, with `$connect`/`$disconnect` invocations "
        "(one each per client per round) on top.",
        "",
        "| part of the echo path | main-process CPU per message |",
        "|---|---:|",
    ]
    lines += [f"| {label} | {cost:.3f} ms |" for label, cost in found["parts"].items()]
    return [*lines, ""]


def _profile(found: dict[str, Any]) -> list[str]:
    """The handler's boto3 call, phase by phase (what no emulator can take off the worker's CPU)."""
    if not found:
        return []
    if found.get("skipped"):
        return [f"**The handler's boto3 call, profiled: SKIPPED** ({found['skipped']}).", ""]
    lines = [
        f"**Where the workers' CPU goes** (`bench/handler_profile.py`): the echo handler's "
        f"`post_to_connection` alone, Python {found['python']}, botocore {found['botocore']} without "
        "`awscrt` (as Lambda's runtime and the emulator's workers have it), over TLS with keep-alive to a "
        f"bare server in another process: **{found['cpu_ms_per_call']:.3f} ms** of the calling thread's CPU "
        "per call. cProfile's own time per function, timed with the thread's CPU clock, grouped by what "
        "the function does (a builtin or standard-library helper counts for its caller) and scaled to that "
        "figure. It is the user's code and the same under both emulators; an emulator could only avoid it "
        "by not running the handler's HTTP client, which would stop exercising the code Lambda runs.",
        "",
        "| part of the call | CPU per call |",
        "|---|---:|",
    ]
    lines += [f"| {label} | {cost:.3f} ms |" for label, cost in found["phases"].items()]
    return [*lines, ""]


def _cpu_plot(rounds: Sequence[dict[str, Any]], out_dir: Path, machine: str) -> str | None:
    groups = [
        (emulator, path, clients)
        for emulator in ("lambdacast local", "serverless-offline")
        for path in ("echo", "reply")
        for clients in (100, 1)
        if _warm(rounds, emulator, path, clients)
    ]
    if not groups:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    short = {"lambdacast local": "lambdacast\nlocal", "serverless-offline": "serverless-\noffline"}
    labels = [f"{short[e]}\n{p}\n{c} client{'s' if c > 1 else ''}" for e, p, c in groups]
    colors = ["tab:blue" if e == "lambdacast local" else "tab:orange" for e, _, _ in groups]
    for ax, key, title in zip(
        axes, ("main_cpu_ms", "workers_cpu_ms"), ("main process", "function workers"), strict=True
    ):
        values = [_med(_warm(rounds, *g), key) for g in groups]
        bars = ax.bar(range(len(groups)), values, color=colors)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(range(len(groups)), labels, fontsize=7)
        ax.set(ylabel="CPU ms per message (median of warm rounds)", title=title)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].axhline(MAIN_CPU_TARGET_MS, color="gray", linestyle=":", label=f"target {MAIN_CPU_TARGET_MS} ms")
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"CPU per message: the emulator's own process and its function workers\n{machine}", fontsize=9
    )
    return _save(fig, out_dir, "emulator_cpu.png")


def _offline_plot(rounds: Sequence[dict[str, Any]], out_dir: Path, machine: str) -> str | None:
    if not _warm(rounds, "serverless-offline", "echo", 100):
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    emulators = ("lambdacast local", "serverless-offline")
    for ax, clients in zip(axes, (100, 1), strict=True):
        rates = [_med(_warm(rounds, e, "echo", clients), "per_second") for e in emulators]
        p99 = [_med(_warm(rounds, e, "echo", clients), "p99_ms") for e in emulators]
        bars = ax.bar(emulators, rates, color=["tab:blue", "tab:orange"])
        ax.set_ylim(0, max(rates) * 1.25)
        ax.bar_label(
            bars,
            labels=[f"{r:.0f} msg/s\np99 {p:.0f} ms" for r, p in zip(rates, p99, strict=True)],
            fontsize=8,
        )
        ax.set(
            ylabel="messages/s (median of warm rounds)",
            title=f"boto3 echo, {clients} client{'s' if clients > 1 else ''}",
        )
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"lambdacast local vs serverless-offline, same app, same run\n{machine}", fontsize=9)
    return _save(fig, out_dir, "offline_echo.png")
