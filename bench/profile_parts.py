"""cProfile's per-function time grouped into the parts of a job, for the benchmark's "where it goes" tables.

A profile is taken with the thread's CPU clock (waiting counts for nothing); each function's own time
goes to the first part whose path or name fragment it matches. A function no part names (a builtin such
as ``str.join``, a standard-library helper) is charged to the parts of its callers, in proportion to the
time it spent for each, up the chain. The parts are then scaled to a CPU figure measured without the
profiler, whose own cost inflates every function roughly alike.
"""

from __future__ import annotations

import os
import pstats
from collections.abc import Sequence
from typing import Any

Parts = Sequence[tuple[str, Sequence[str]]]
"""(label, fragments of ``file:line:name``), first match wins."""

Entry = tuple[str, float, list[tuple[str, float]]]
"""A profiled function: ``file:line:name``, its own seconds, and (caller, seconds spent for that caller)."""

OTHER = "the rest (standard library, builtins)"


def entries(stats: pstats.Stats) -> list[Entry]:
    """The profile's functions as :data:`Entry` rows (JSON-friendly once the tuples become lists)."""
    found: list[Entry] = []
    # stats: calls, primitive calls, own time, cumulative time, {caller: (..., own time, ...)}
    for (filename, line, name), stats_row in stats.stats.items():  # type: ignore[attr-defined]
        callers = [(f"{c[0]}:{c[1]}:{c[2]}", v[2]) for c, v in stats_row[4].items()]
        found.append((f"{filename}:{line}:{name}", stats_row[2], callers))
    return found


def rows(loaded: list[Any]) -> list[Entry]:
    """:data:`Entry` rows back from JSON (lists where the tuples were)."""
    return [(str(key), float(seconds), [(str(c), float(t)) for c, t in by]) for key, seconds, by in loaded]


def _part(where: str, parts: Parts) -> str:
    where = where.replace(os.sep, "/")
    for label, fragments in parts:
        if any(fragment in where for fragment in fragments):
            return label
    return OTHER


def group(found: Sequence[Entry], cpu_ms: float, parts: Parts) -> dict[str, float]:
    """Own times per function -> ms per unit of work per part, largest first, summing to ``cpu_ms``."""
    callers = {key: by for key, _, by in found}
    shares: dict[str, dict[str, float]] = {}

    def share(key: str, seen: frozenset[str]) -> dict[str, float]:
        if key in shares:
            return shares[key]
        named = _part(key, parts)
        spent = [(caller, seconds) for caller, seconds in callers.get(key, []) if caller not in seen]
        total = sum(seconds for _, seconds in spent)
        if named != OTHER or total <= 0:
            result = {named: 1.0}
        else:
            result = {}
            for caller, seconds in spent:
                for label, portion in share(caller, seen | {key}).items():
                    result[label] = result.get(label, 0.0) + portion * seconds / total
        if not seen:
            shares[key] = result
        return result

    totals: dict[str, float] = {}
    for key, seconds, _ in found:
        for label, portion in share(key, frozenset()).items():
            totals[label] = totals.get(label, 0.0) + seconds * portion
    whole = sum(totals.values())
    if whole <= 0:
        return {}
    scaled = {label: cpu_ms * seconds / whole for label, seconds in totals.items()}
    return dict(sorted(scaled.items(), key=lambda item: -item[1]))
