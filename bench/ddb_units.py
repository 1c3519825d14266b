"""DynamoDB item sizes and capacity units, by the rules AWS documents for on-demand and provisioned tables.

* Item size: every attribute's name (UTF-8 bytes) plus its value: strings are UTF-8 bytes, binary its
  bytes, a number about 1 byte per 2 significant digits plus 1, booleans and nulls 1 byte, lists and
  maps 3 bytes plus their elements (1 byte each on top), sets the sum of their elements.
* Reads: 4 KB units. ``GetItem`` rounds its one item up; a ``Query`` adds the sizes of every item it
  evaluated (``ScannedCount`` of them, not only those returned) and rounds the sum up. Strongly
  consistent reads cost 1 unit per 4 KB, eventually consistent ones half; a read of a missing item
  still costs the minimum.
* Writes: 1 KB units of the larger of the item before and after the write.

moto answers every request with a constant ``ConsumedCapacity`` (1.0, or 0.5 for ``GetItem``) whatever
the item sizes, so the bench computes the units itself with these rules and reports moto's figure only
beside them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

READ_UNIT = 4096
WRITE_UNIT = 1024


def _number_size(text: str) -> int:
    digits = Decimal(text).normalize().as_tuple().digits
    significant = len(digits) if any(digits) else 1
    return 1 + math.ceil(significant / 2)


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB's wire form (``{"S": "..."}``, ``{"N": "1"}`` ...)."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        return _number_size(str(raw))
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(v).encode()) for v in raw)
    if kind == "NS":
        return sum(_number_size(str(v)) for v in raw)
    if kind == "BS":
        return sum(len(v) for v in raw)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in raw.items())
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes of one item: every attribute name plus its value."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def read_units(sizes: Iterable[int], *, consistent: bool) -> float:
    """Read units of one ``GetItem`` (one size) or one ``Query`` page (the sizes it evaluated)."""
    units = max(1, math.ceil(sum(sizes) / READ_UNIT))
    return float(units) if consistent else units / 2


def write_units(before: int, after: int) -> int:
    """Write units of one write to an item of ``before`` bytes that becomes ``after`` bytes."""
    return max(1, math.ceil(max(before, after) / WRITE_UNIT))
