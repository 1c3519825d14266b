"""Keep each suite's last results in docs/benchmarks/results.json, so a partial run (``--only``) rewrites
the documents with the suites it ran and the stored results of the others (each dated)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import emulator_bench, local_measure
from bench.coldstart import Row
from bench.fanout_bench import Cell, FanoutConfig, Sample


def load(path: Path) -> dict[str, Any]:
    """The stored results (empty when there are none or they cannot be read)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def entry(when: str, machine: str, data: Any, **extra: Any) -> dict[str, Any]:
    """One suite's stored results: when and where they were measured, and the data."""
    return {"when": when, "machine": machine, "data": data, **extra}


def cells_to_json(cells: list[Cell]) -> list[dict[str, Any]]:
    return [asdict(cell) for cell in cells]


def cells_from_json(data: list[dict[str, Any]]) -> list[Cell]:
    return [Cell(c["engine"], c["recipients"], [Sample(**s) for s in c["samples"]]) for c in data]


def config_from_json(data: dict[str, Any]) -> FanoutConfig:
    return FanoutConfig(**{**data, "sizes": tuple(data["sizes"])})


def rows_to_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]


def rows_from_json(data: list[dict[str, Any]]) -> list[Row]:
    return [Row(**{**r, "heaviest": [tuple(h) for h in r["heaviest"]]}) for r in data]


def emulator_to_json(results: emulator_bench.EmulatorResults) -> dict[str, Any]:
    return asdict(results)


def emulator_from_json(data: dict[str, Any]) -> emulator_bench.EmulatorResults:
    return emulator_bench.EmulatorResults(
        echo=[local_measure.Echo(**e) for e in data["echo"]],
        idle=local_measure.Idle(**data["idle"]) if data.get("idle") else None,
        shutdown=local_measure.Shutdown(**data["shutdown"]) if data.get("shutdown") else None,
        fanout=[emulator_bench.Fanout(**f) for f in data["fanout"]],
        fanout_latency_ms=data.get("fanout_latency_ms", 0.0),
    )
