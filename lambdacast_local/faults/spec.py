"""The ``--faults`` grammar: ``target:kind=value`` entries, comma-separated (no I/O, no randomness).

A rate is the probability (0 to 1) that one call to the target gets that fault; a target's rates are
slices of one draw per call, so they may add up to 1 at most. ``connections:latency=MS`` is the one
entry whose value is not a rate: a delay in milliseconds on every ``@connections`` call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from lambdacast_local.errors import UsageError

DYNAMODB = "dynamodb"
CONNECTIONS = "connections"
LAMBDA = "lambda"
LATENCY = "latency"

KINDS: Mapping[str, tuple[str, ...]] = {
    DYNAMODB: ("throttle", "lost-reply", "error"),
    CONNECTIONS: ("429", "500", "410"),
    LAMBDA: ("crash", "timeout"),
}
"""The probabilistic kinds of each target, in the order their slices of a draw are laid out."""

VARIANTS: Mapping[tuple[str, str], tuple[str, ...]] = {
    (DYNAMODB, "throttle"): ("ProvisionedThroughputExceededException", "ThrottlingException"),
    (DYNAMODB, "lost-reply"): ("500", "dropped"),
    (LAMBDA, "crash"): ("before-handler", "after-handler"),
    (LAMBDA, "timeout"): ("before-handler", "after-handler"),
}
"""Kinds realised in more than one way; the draw picks one, with equal chances."""

_EXAMPLE = "dynamodb:throttle=0.05"


class FaultSpecError(UsageError):
    """A ``--faults`` entry cannot be understood (the message names it)."""


@dataclass(frozen=True)
class TargetSpec:
    """The faults of one target.

    Attributes:
        rates: Kind -> probability per call, in the order of ``KINDS`` (kinds not given are absent).
        latency_ms: Delay before every call (``connections`` only).
    """

    rates: Mapping[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0


@dataclass(frozen=True)
class FaultSpec:
    """A parsed ``--faults`` value: target -> its faults (only the targets given)."""

    targets: Mapping[str, TargetSpec] = field(default_factory=dict)

    def __str__(self) -> str:
        entries = []
        for target, spec in self.targets.items():
            entries += [f"{target}:{kind}={_number(rate)}" for kind, rate in spec.rates.items()]
            if spec.latency_ms:
                entries.append(f"{target}:{LATENCY}={_number(spec.latency_ms)}")
        return ",".join(entries)

    def with_latency(self, latency_ms: float) -> FaultSpec:
        """This spec plus ``connections:latency`` (what ``--management-latency-ms`` means)."""
        if latency_ms <= 0:
            return self
        current = self.targets.get(CONNECTIONS, TargetSpec())
        if current.latency_ms and current.latency_ms != latency_ms:
            raise FaultSpecError(
                f"--management-latency-ms {_number(latency_ms)} contradicts "
                f"{CONNECTIONS}:{LATENCY}={_number(current.latency_ms)} in --faults (give one of them)."
            )
        targets = dict(self.targets)
        targets[CONNECTIONS] = TargetSpec(current.rates, latency_ms)
        return FaultSpec(_ordered(targets))


def _number(value: float) -> str:
    return f"{value:g}"


def _ordered(targets: Mapping[str, TargetSpec]) -> dict[str, TargetSpec]:
    return {target: targets[target] for target in KINDS if target in targets}


def parse_spec(text: str) -> FaultSpec:
    """Parse a ``--faults`` value (an empty string means no faults).

    Args:
        text: Comma-separated ``target:kind=value`` entries, e.g.
            ``dynamodb:throttle=0.05,connections:429=0.02,connections:latency=20``.

    Returns:
        The spec, its targets and kinds in canonical order (the order entries are given in is irrelevant).

    Raises:
        FaultSpecError: One sentence naming the first bad entry.
    """
    rates: dict[str, dict[str, float]] = {}
    latency: dict[str, float] = {}
    if not text.strip():
        return FaultSpec()
    for raw in text.split(","):
        entry = raw.strip()
        target, kind, value = _split(entry)
        seen = rates.setdefault(target, {})
        if kind in seen or (kind == LATENCY and target in latency):
            raise FaultSpecError(f"bad --faults entry '{entry}': {target}:{kind} is given twice.")
        if kind == LATENCY:
            latency[target] = _milliseconds(entry, value)
            continue
        seen[kind] = _rate(entry, value)
        total = sum(seen.values())
        if total > 1 + 1e-9:
            raise FaultSpecError(
                f"bad --faults entry '{entry}': the {target} rates add up to {total:g}, more than 1 "
                "(each call gets one fault at most)."
            )
    targets = {
        target: TargetSpec(
            {kind: kinds[kind] for kind in KINDS[target] if kind in kinds}, latency.get(target, 0.0)
        )
        for target, kinds in rates.items()
    }
    return FaultSpec(_ordered(targets))


def _split(entry: str) -> tuple[str, str, str]:
    if not entry:
        raise FaultSpecError("bad --faults value: an entry is empty (a stray comma?).")
    head, equals, value = entry.partition("=")
    target, colon, kind = head.partition(":")
    target, kind, value = target.strip(), kind.strip(), value.strip()
    if not equals or not colon or not value:
        raise FaultSpecError(f"bad --faults entry '{entry}': write target:kind=value, e.g. {_EXAMPLE}.")
    if target not in KINDS:
        raise FaultSpecError(
            f"bad --faults entry '{entry}': unknown target '{target}' (choose {_choices(list(KINDS))})."
        )
    allowed = [*KINDS[target], LATENCY] if target == CONNECTIONS else list(KINDS[target])
    if kind not in allowed:
        raise FaultSpecError(
            f"bad --faults entry '{entry}': {target} has no fault '{kind}' (choose {_choices(allowed)})."
        )
    return target, kind, value


def _choices(names: list[str]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1]


def _float(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _rate(entry: str, value: str) -> float:
    rate = _float(value)
    if rate is None or not 0 <= rate <= 1:
        raise FaultSpecError(
            f"bad --faults entry '{entry}': the rate must be a probability from 0 to 1, got '{value}'."
        )
    return rate


def _milliseconds(entry: str, value: str) -> float:
    delay = _float(value)
    if delay is None or delay < 0:
        raise FaultSpecError(
            f"bad --faults entry '{entry}': the latency must be milliseconds, 0 or more, got '{value}'."
        )
    return delay
