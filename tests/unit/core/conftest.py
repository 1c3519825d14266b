"""Fixtures for tests/unit/core (defined in core_support.py, a uniquely named module)."""

from __future__ import annotations

from core_support import _aws_env, dynamodb, invoke, log_lines, runtime, settings, store, transport

__all__ = ["_aws_env", "dynamodb", "invoke", "log_lines", "runtime", "settings", "store", "transport"]
