"""docs/benchmarks.md sections for the DynamoDB-per-publish and ``lambdacast local`` suites."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.emulator_bench import EmulatorResults

IDLE_TARGET = 10_000
MAX_WRITES = 2
SCAN_CHANNEL = 100

_OFFLINE = (
    "serverless-offline 13.9 holding idle connections, from the team's notes (not measured by this bench): "
    "5,000 idle connections held with ≈ 115 Python worker processes (≈ 44 MB each, ≈ 5.4 GB RSS in all), "
    "because it starts a worker whenever none is idle, with no cap. Its echo throughput and CPU are "
    "measured side by side below"
)


def dynamodb_section(costs: Sequence[dict[str, Any]], note: str) -> tuple[list[str], list[str]]:
    """The section's lines and the target lines."""
    lines = [
        "## DynamoDB per publish",
        "",
        f"{note}The `$default` handler (`functions/default/app.py`, the real code path: the numbering "
        "transaction with its subscription and rate-limit conditions, the subscriber Query, fan-out, "
        "the bytes charged, ack) publishes once to a channel of each size "
        f"(`echo: true`: every subscriber is a recipient) in a table of "
        f"{costs[0]['table_connections']:,} connections, against moto with template.yaml's own table. "
        "botocore hooks on the handler's DynamoDB client count the requests; read/write units follow "
        "AWS's item-size rules (`bench/ddb_units.py`), since moto reports a constant `ConsumedCapacity` "
        "(shown for reference). The management API is a recording stand-in here (the emulator suite "
        "below posts for real).",
        "",
        "| subscribers | requests (in order) | reads | writes | Query `Count` / `ScannedCount` "
        "| read units | write units | moto's ConsumedCapacity |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in costs:
        lines.append(
            f"| {c['subscribers']:,} | {', '.join(c['operations'])} | {c['reads']} | {c['writes']} "
            f"| {c['query_count']:,} / {c['query_scanned_count']:,} | {c['read_units']:g} "
            f"| {c['write_units']:g} | {c['moto_capacity']:g} |"
        )
    targets: list[str] = []
    scan = next((c for c in costs if c["subscribers"] == SCAN_CHANNEL), None)
    if scan is not None:
        ok = scan["query_scanned_count"] <= SCAN_CHANNEL + 1
        targets.append(
            f"Reads proportional to the channel, not the table: Query `ScannedCount` "
            f"{scan['query_scanned_count']:,} (`Count` {scan['query_count']:,}) for a channel of "
            f"{SCAN_CHANNEL} in a table of {scan['table_connections']:,} connections: "
            f"**{'met' if ok else 'NOT met'}**."
        )
    most = max(c["writes"] for c in costs)
    targets.append(
        f"At most {MAX_WRITES} write requests per publish (the numbering transaction, and the bytes "
        f"charged once it reached someone): **{'met' if most <= MAX_WRITES else 'NOT met'}** "
        f"(at most {most} at every size; write units in the table above)."
    )
    return [*lines, ""], targets


def emulator_section(results: EmulatorResults, note: str) -> tuple[list[str], list[str]]:
    """The section's lines and the target lines."""
    lines = (
        ["## lambdacast local (the emulator)", "", note]
        if note
        else ["## lambdacast local (the emulator)", ""]
    )
    lines += [
        "`lambdacast local` runs as a user runs it (the CLI, its own process, default `--concurrency`), "
        "driven over real WebSocket connections on 127.0.0.1 by `bench/local_measure.py` "
        "(also runnable alone: `python -m bench.local_measure`). RSS is the emulator's whole process "
        "tree (emulator + Lambda workers).",
        "",
    ]
    targets: list[str] = []
    if results.echo:
        lines += [
            "**Echo** (`tests/functional/apps/echo`: `$default` posts every frame back through boto3's "
            "`apigatewaymanagementapi`, over the emulator's TLS listener); each client sends one frame, "
            "awaits the echo, and again:",
            "",
            "| round | clients x messages | p50 | p99 | messages/s |",
            "|---|---:|---:|---:|---:|",
        ]
        for e in results.echo:
            lines.append(
                f"| {e.phase} workers | {e.clients} x {e.messages} | {e.p50_ms:.0f} ms | {e.p99_ms:.0f} ms "
                f"| {e.per_second:.0f} |"
            )
        lines.append("")
    idle, down = results.idle, results.shutdown
    if idle is not None:
        lines += [
            f"**Idle connections:** {idle.opened:,} sockets opened in {idle.seconds:.1f} s (a `$connect` "
            f"invocation each) and held at once by one emulator; its process tree went from "
            f"{idle.rss_before_kb / 1024:.0f} MB to {idle.rss_kb / 1024:.0f} MB RSS "
            f"(**{idle.kb_per_connection:.1f} KB per connection**; the emulator process alone "
            f"{idle.emulator_rss_kb / 1024:.0f} MB), {idle.workers} worker processes."
            + (
                f" Ctrl-C with all of them open: exit {down.exit_code} after {down.seconds:.1f} s "
                f"(a `$disconnect` each), worker processes left behind: {len(down.workers_left)}."
                if down is not None
                else ""
            ),
            "",
        ]
        targets.append(
            f"One `lambdacast local` holds {IDLE_TARGET:,} idle connections: "
            f"**{'met' if idle.opened >= IDLE_TARGET else 'NOT met'}** ({idle.opened:,} held, "
            f"{idle.rss_kb / 1024:.0f} MB RSS for emulator and workers)."
        )
    if results.echo:
        warm = results.echo[-1]
        targets.append(
            f"Echo round trip at {warm.clients} concurrent clients (warm): p50 {warm.p50_ms:.0f} ms, "
            f"p99 {warm.p99_ms:.0f} ms (reported; no target)."
        )
    if results.fanout:
        lines += [
            f"**Publish to many sockets** (the project's template, `--management-latency-ms "
            f"{results.fanout_latency_ms:g}`): real sockets subscribe to channels of each size, a separate "
            "publisher (subscribed, no echo) publishes; *last delivery* is from sending the publish frame "
            "to the last subscriber socket receiving the message, *`$default` duration* is the "
            "invocation's duration as the emulator logged it (what Lambda would bill; docs/cost.md). "
            "Medians; the first publish per channel warms up and is not counted. The subscriber "
            "sockets connect (`$connect`) and say `hello`; their subscriptions are written straight into "
            "the emulator's DynamoDB (the items a `subscribe` writes), since a thousand subscribe "
            "transactions against the embedded moto server take minutes.",
            "",
            "| subscribers | publish → last delivery (median) | max | `$default` duration (median) "
            "| ack (median) | publishes |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for f in results.fanout:
            ack = sorted(f.ack_ms)[len(f.ack_ms) // 2]
            lines.append(
                f"| {f.recipients:,} | {f.median_latency_ms:.0f} ms | {max(f.latency_ms):.0f} ms "
                f"| {f.median_duration_ms:.0f} ms | {ack:.0f} ms | {len(f.latency_ms)} |"
            )
        lines.append("")
        biggest = max(results.fanout, key=lambda f: f.recipients)
        targets.append(
            f"Publish → last delivery for a channel of {biggest.recipients:,} subscribers: "
            f"{biggest.median_latency_ms:.0f} ms median (reported; no target)."
        )
    lines += [f"For comparison, {_OFFLINE}.", ""]
    return lines, targets


def plot(results: EmulatorResults, out_dir: Path, machine: str) -> str | None:
    """publish_latency.png: last delivery and ``$default`` duration vs subscribers; its file name."""
    if not results.fanout:
        return None
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = sorted(results.fanout, key=lambda f: f.recipients)
    sizes = [f.recipients for f in cells]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(sizes, [f.median_latency_ms for f in cells], marker="o", label="publish → last delivery")
    ax.plot(sizes, [f.median_duration_ms for f in cells], marker="s", label="$default duration (billed)")
    ax.set(xscale="log", yscale="log", xlabel="subscriber sockets", ylabel="ms (median)")
    ax.set_title(
        f"lambdacast local: publish to real sockets, {results.fanout_latency_ms:g} ms management latency\n"
        f"{machine}",
        fontsize=9,
    )
    plain = matplotlib.ticker.FuncFormatter(lambda value, _pos: f"{value:,.0f}")
    ax.xaxis.set_major_formatter(plain)
    ax.yaxis.set_major_formatter(plain)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "publish_latency.png", dpi=110)
    plt.close(fig)
    return "publish_latency.png"
