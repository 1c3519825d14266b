"""Turn benchmark results into markdown tables, target verdicts and PNG plots."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.coldstart import Row
from bench.fanout_bench import Cell, FanoutConfig

CPU_TARGET = 3.0
WALL_TARGET = 30.0
COLD_TARGET = 1.3


@dataclass(frozen=True)
class Context:
    """Where and how the benchmarks ran."""

    machine: str
    when: str
    target: str
    fanout: FanoutConfig
    cold_runs: int
    load: str = ""


def _engine(cells: Sequence[Cell], prefix: str, size: int) -> Cell | None:
    for cell in cells:
        if cell.recipients == size and cell.engine.startswith(prefix) and "AWSRequest" not in cell.engine:
            return cell
    return None


def fanout_table(cells: Sequence[Cell]) -> str:
    lines = [
        "| engine | recipients | wall (median) | CPU (median) | CPU per post "
        "| deliveries per CPU-second | runs |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        lines.append(
            f"| {c.engine} | {c.recipients:,} | {c.wall_s:.3f} s | {c.cpu_s:.3f} s | "
            f"{c.cpu_ms_per_post:.3f} ms | {c.per_cpu_second:,.0f} | {len(c.samples)} |"
        )
    return "\n".join(lines)


def fanout_verdicts(cells: Sequence[Cell]) -> tuple[str, list[str]]:
    """A ratio table per size and the target lines."""
    sizes = sorted({c.recipients for c in cells})
    lines = [
        "| recipients | fastpost vs boto3 threads: deliveries per CPU-second | "
        "fastpost vs boto3 threads: wall | fastpost vs boto3 sequential: wall | "
        "core DirectBroadcaster vs boto3 threads: deliveries per CPU-second |",
        "|---:|---:|---:|---:|---:|",
    ]
    cpu_ratios: dict[int, float] = {}
    wall_vs_seq: dict[int, float] = {}
    for size in sizes:
        fast, threads, seq = (
            _engine(cells, p, size) for p in ("fastpost", "boto3 threads", "boto3 sequential")
        )
        if fast is None:
            continue
        cpu = fast.per_cpu_second / threads.per_cpu_second if threads else math.nan
        wall_threads = threads.wall_s / fast.wall_s if threads else math.nan
        wall_seq = seq.wall_s / fast.wall_s if seq else math.nan
        cpu_ratios[size], wall_vs_seq[size] = cpu, wall_seq
        seq_text = f"{wall_seq:.1f}x" if seq else "not run (too slow at this size)"
        core_fast, core_threads = (
            _engine(cells, p, size) for p in ("core DirectBroadcaster", "boto3 threads")
        )
        core_text = (
            f"{core_fast.per_cpu_second / core_threads.per_cpu_second:.2f}x"
            if core_fast and core_threads
            else "not run"
        )
        lines.append(f"| {size:,} | {cpu:.2f}x | {wall_threads:.2f}x | {seq_text} | {core_text} |")
    targets: list[str] = []
    if cpu_ratios:
        worst = min(cpu_ratios.values())
        verdict = "met" if worst >= CPU_TARGET else "NOT met"
        targets.append(
            f"Deliveries per CPU-second >= {CPU_TARGET:g}x the boto3 thread pool: **{verdict}** "
            f"(lowest ratio over all sizes {worst:.2f}x)."
        )
    if 1_000 in wall_vs_seq and not math.isnan(wall_vs_seq[1_000]):
        ratio = wall_vs_seq[1_000]
        verdict = "met" if ratio >= WALL_TARGET else "NOT met"
        targets.append(
            f"Wall time for 1,000 recipients >= {WALL_TARGET:g}x faster than a sequential boto3 loop: "
            f"**{verdict}** ({ratio:.1f}x)."
        )
    return "\n".join(lines), targets


def coldstart_table(rows: Sequence[Row]) -> tuple[str, list[str]]:
    baseline = rows[0].median_ms if rows else math.nan
    lines = [
        "| import | median | vs `import boto3` | target <= 1.3x "
        "| then `import boto3` (paid later by a first call that needs it) "
        "| where the time goes (self ms per package) |",
        "|---|---:|---:|:---:|---:|---|",
    ]
    targets: list[str] = []
    for row in rows:
        if row.error:
            lines.append(f"| {row.name} | failed | | | | `{row.error}` |")
            continue
        ratio = row.median_ms / baseline
        is_handler = row.name.startswith("functions/")
        verdict = ("yes" if ratio <= COLD_TARGET else "**no**") if is_handler else ""
        where = ", ".join(f"{name} {ms:.0f}" for name, ms in row.heaviest)
        deferred = f"{row.deferred_ms:.0f} ms" if is_handler else ""
        lines.append(
            f"| {row.name} | {row.median_ms:.0f} ms | {ratio:.2f}x | {verdict} | {deferred} | {where} |"
        )
    handlers = [r for r in rows if r.name.startswith("functions/") and not r.error]
    if handlers:
        over = [r.name for r in handlers if r.median_ms / baseline > COLD_TARGET]
        verdict = "met" if not over else f"NOT met by {', '.join(over)}"
        targets.append(f"Every handler imports in <= {COLD_TARGET:g}x `import boto3`: **{verdict}**.")
    return "\n".join(lines), targets


def plots(
    cells: Sequence[Cell], rows: Sequence[Row], out_dir: Path, machine: str, config: FanoutConfig
) -> list[str]:
    """Write the PNGs; return their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    engines = list(dict.fromkeys(c.engine for c in cells))
    if cells:
        fig, ax = plt.subplots(figsize=(8, 5))
        for engine in engines:
            mine = sorted((c for c in cells if c.engine == engine), key=lambda c: c.recipients)
            ax.plot([c.recipients for c in mine], [c.wall_s for c in mine], marker="o", label=engine)
        sizes = sorted({c.recipients for c in cells})
        floor = [math.ceil(n / config.concurrency) * config.latency_ms / 1000 for n in sizes]
        ax.plot(
            sizes,
            floor,
            color="gray",
            linestyle=":",
            label=f"latency floor at concurrency {config.concurrency}",
        )
        ax.set(xscale="log", yscale="log", xlabel="recipients", ylabel="wall time, s (median)")
        ax.set_title(f"Fan-out wall time\n{machine}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "fanout_wall.png", dpi=110)
        plt.close(fig)
        written.append("fanout_wall.png")

        sizes = sorted({c.recipients for c in cells})
        fig, ax = plt.subplots(figsize=(8, 5))
        width = 0.8 / max(1, len(engines))
        for i, engine in enumerate(engines):
            values = [
                next((c.per_cpu_second for c in cells if c.engine == engine and c.recipients == s), 0)
                for s in sizes
            ]
            ax.bar([x + i * width for x in range(len(sizes))], values, width, label=engine)
        ax.set_xticks(
            [x + width * (len(engines) - 1) / 2 for x in range(len(sizes))], [f"{s:,}" for s in sizes]
        )
        ax.set(xlabel="recipients", ylabel="deliveries per CPU-second of the publisher (median)")
        ax.set_title(f"Fan-out CPU efficiency\n{machine}", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "fanout_cpu.png", dpi=110)
        plt.close(fig)
        written.append("fanout_cpu.png")
    good = [r for r in rows if not r.error]
    if good:
        fig, ax = plt.subplots(figsize=(8, 0.6 * len(good) + 1.5))
        ax.barh([r.name for r in good], [r.median_ms for r in good], color="tab:blue")
        ax.axvline(
            good[0].median_ms * COLD_TARGET, color="tab:red", linestyle="--", label="1.3 x import boto3"
        )
        ax.invert_yaxis()
        ax.set(xlabel="import time in a fresh interpreter, ms (median)")
        ax.set_title(f"Cold start: handler import vs import boto3\n{machine}", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "coldstart.png", dpi=110)
        plt.close(fig)
        written.append("coldstart.png")
    return written
