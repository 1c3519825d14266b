"""Wire protocol v1's JSON text, both ways: compact and UTF-8-safe out, strict in.

Out (:func:`dumps`): every frame sent, and a publish's ``data`` exactly as message frames carry
it. In (:func:`decode`): ``NaN``/``Infinity`` refused, and a number literal too large for a
double reported rather than turned into ``inf``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from lambdacast.errors import InvalidJson

__all__ = ["decode", "dumps"]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def dumps(value: Any) -> str:
    """Serialize compactly as UTF-8-safe JSON text (lone surrogates fall back to ASCII escapes)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text


class _NonFinite(Exception):
    """A number in the frame is out of range (``1e999`` would decode to ``inf``)."""


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _NonFinite(literal)
    return value


def decode(text: str) -> tuple[Any, str | None]:
    """Decode a frame; also return the first out-of-range number literal found (``None`` if none).

    An out-of-range number is reported after decoding so the error can carry the frame's ``id``.
    """
    non_finite: list[str] = []

    def parse_float(literal: str) -> float:
        try:
            return _finite_float(literal)
        except _NonFinite:
            non_finite.append(literal)
            return 0.0

    try:
        obj = json.loads(text, parse_constant=_reject_constant, parse_float=parse_float)
    except RecursionError:
        raise InvalidJson("The frame is nested too deeply; send a JSON object of reasonable depth.") from None
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise InvalidJson(
            f"The frame is not valid JSON ({exc}); send a JSON object such as "
            '{"action":"ping"} in a text frame.'
        ) from None
    return obj, (non_finite[0] if non_finite else None)
