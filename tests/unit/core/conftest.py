"""Fixtures for tests/unit/core (defined in core_support.py and world_support.py, uniquely named modules)."""

from __future__ import annotations

from core_support import _aws_env, dynamodb, invoke, log_lines, runtime, settings, store, transport
from world_support import world

__all__ = [
    "_aws_env",
    "dynamodb",
    "invoke",
    "log_lines",
    "runtime",
    "settings",
    "store",
    "transport",
    "world",
]
