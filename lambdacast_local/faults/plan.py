"""Which call gets which fault: one seeded random stream per target, and the counts (no I/O).

Each call to a target takes exactly one draw ``u`` in [0, 1) from that target's stream, whatever the
outcome; the target's rates are consecutive slices of [0, 1) in the order of ``KINDS``, and where ``u``
falls inside a kind's slice picks its variant. So the same seed and the same sequence of calls give the
same faults, and adding a fault to one target never reshuffles another target's stream.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdacast_local.faults.spec import (
    LATENCY,
    VARIANTS,
    FaultSpec,
    FaultSpecError,
    TargetSpec,
    parse_spec,
)


@dataclass(frozen=True, slots=True)
class Decision:
    """The fate of one call.

    Attributes:
        kind: The fault to inject (``throttle``, ``429``, ``crash``...), or ``None`` for none.
        variant: How it is realised, for kinds with several ways (``VARIANTS``); else ``""``.
        delay_ms: Wait this long before answering (``connections:latency``), fault or not.
    """

    kind: str | None = None
    variant: str = ""
    delay_ms: float = 0.0


NO_FAULT = Decision()


def choose(spec: TargetSpec, target: str, draw: float) -> Decision:
    """Map one draw in [0, 1) to a decision under ``spec``.

    Args:
        spec: The target's rates and latency.
        target: Its name (variants are looked up by target and kind).
        draw: A uniform number in [0, 1).

    Returns:
        The decision; ``kind`` is ``None`` when ``draw`` lies past every rate's slice.
    """
    low = 0.0
    for kind, rate in spec.rates.items():
        if rate > 0 and draw < low + rate:
            variants = VARIANTS.get((target, kind), ("",))
            index = min(int((draw - low) / rate * len(variants)), len(variants) - 1)
            return Decision(kind, variants[index], spec.latency_ms)
        low += rate
    return Decision(delay_ms=spec.latency_ms)


@dataclass(frozen=True)
class TargetCounts:
    """What one target saw.

    Attributes:
        calls: Calls that took a decision (DynamoDB: data-plane requests only).
        injected: Kind -> faults injected, for every kind the spec names (``latency``: delayed calls).
        variants: ``kind/variant`` -> faults injected that way.
    """

    calls: int
    injected: Mapping[str, int]
    variants: Mapping[str, int] = field(default_factory=dict)


class _Stream:
    """One target's random stream and counters (decisions come from several threads)."""

    def __init__(self, target: str, spec: TargetSpec, seed: int) -> None:
        self.target = target
        self.spec = spec
        # A string seed is hashed (SHA-512) by random.seed: stable across runs and Python versions.
        self._random = random.Random(f"lambdacast-faults/{seed}/{target}")
        self._lock = threading.Lock()
        self.calls = 0
        self.injected = dict.fromkeys(spec.rates, 0)
        if spec.latency_ms:
            self.injected[LATENCY] = 0
        self.variants: dict[str, int] = {}

    def decide(self) -> Decision:
        with self._lock:
            decision = choose(self.spec, self.target, self._random.random())
            self.calls += 1
            if decision.delay_ms:
                self.injected[LATENCY] += 1
            if decision.kind is not None:
                self.injected[decision.kind] += 1
                if decision.variant:
                    key = f"{decision.kind}/{decision.variant}"
                    self.variants[key] = self.variants.get(key, 0) + 1
            return decision

    def counts(self) -> TargetCounts:
        with self._lock:
            return TargetCounts(self.calls, dict(self.injected), dict(self.variants))


class Faults:
    """The fault plan of one emulator: decisions per call, counts, the exit summary.

    Args:
        spec: A parsed spec or ``--faults`` text.
        seed: Makes a run repeatable; ``None`` picks one at random (``seed`` tells which, to repeat it).
        unavailable: Target -> why its faults cannot be injected in this emulator (asking for them
            raises ``FaultSpecError`` with that reason).

    Raises:
        FaultSpecError: Bad spec text, or a fault on an unavailable target.
    """

    def __init__(
        self,
        spec: FaultSpec | str = "",
        seed: int | None = None,
        *,
        unavailable: Mapping[str, str] | None = None,
    ) -> None:
        self._unavailable = dict(unavailable or {})
        self.spec = FaultSpec()
        self.seed = 0
        self._streams: dict[str, _Stream] = {}
        self.configure(spec, seed)

    def configure(self, spec: FaultSpec | str, seed: int | None = None) -> None:
        """Replace the plan: new rates, fresh streams from ``seed``, counts back to zero.

        For tests and soaks that run in phases (e.g. faults while loading, none while checking). Calls in
        flight finish under the plan they started with.
        """
        parsed = parse_spec(spec) if isinstance(spec, str) else spec
        for target in parsed.targets:
            if target in self._unavailable:
                raise FaultSpecError(f"--faults {target}:...: {self._unavailable[target]}")
        self.seed = random.SystemRandom().randrange(1, 2**31) if seed is None else seed
        self.spec = parsed
        self._streams = {target: _Stream(target, ts, self.seed) for target, ts in parsed.targets.items()}

    @property
    def active(self) -> bool:
        """Whether any fault (or delay) is configured."""
        return bool(self._streams)

    def enabled(self, target: str) -> bool:
        """Whether ``target`` has faults (a call to a target without any takes no draw)."""
        return target in self._streams

    def decide(self, target: str) -> Decision:
        """Take the next draw of ``target`` and count the call (``NO_FAULT`` for an unconfigured target)."""
        stream = self._streams.get(target)
        return NO_FAULT if stream is None else stream.decide()

    def counts(self, target: str) -> TargetCounts:
        """The counts of one target (all zero when it has no faults)."""
        stream = self._streams.get(target)
        return stream.counts() if stream is not None else TargetCounts(0, {})

    def count(self, target: str, kind: str) -> int:
        """Faults of ``kind`` injected into ``target`` so far (``latency``: calls delayed)."""
        return self.counts(target).injected.get(kind, 0)

    def calls(self, target: str) -> int:
        """Calls ``target`` has decided on so far."""
        return self.counts(target).calls

    def summary(self) -> str:
        """One line, e.g. ``faults injected (seed 7): dynamodb throttle 12/840, error 3/840; ...``."""
        parts = []
        for target in self._streams:
            counts = self.counts(target)
            kinds = [f"{kind} {n}/{counts.calls}" for kind, n in counts.injected.items() if kind != LATENCY]
            if LATENCY in counts.injected:
                latency = self.spec.targets[target].latency_ms
                kinds.append(f"latency {latency:g} ms {counts.injected[LATENCY]}/{counts.calls}")
            parts.append(f"{target} " + ", ".join(kinds))
        return f"faults injected (seed {self.seed}): " + ("; ".join(parts) or "none configured")

    def as_json(self) -> dict[str, Any]:
        """The spec, the seed and every target's counts (what ``GET /_lambdacast/faults`` answers)."""
        targets = {}
        for target in self._streams:
            counts = self.counts(target)
            targets[target] = {
                "calls": counts.calls,
                "injected": dict(counts.injected),
                "variants": dict(counts.variants),
            }
        return {"spec": str(self.spec), "seed": self.seed, "targets": targets}
