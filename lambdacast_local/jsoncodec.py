"""JSON on the emulator's hot paths (worker messages): orjson when installed, the standard library else.

orjson encodes an event about ten times faster than ``json.dumps``, and every message a handler serves
crosses the worker pipe twice. What orjson refuses and the standard library accepts (``NaN`` in a reply,
non-string keys, integers beyond 64 bits) falls back to the standard library, so the bytes a handler
sees and the results it returns are the same either way.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; this keeps a bare install working
    orjson = None  # type: ignore[assignment]


def _std_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def dumps_bytes(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    if orjson is None:
        return _std_dumps(value)
    try:
        return orjson.dumps(value)
    except TypeError:  # non-string keys, huge integers...: the standard library's rules
        return _std_dumps(value)


def loads(data: bytes | str) -> Any:
    """Parse JSON (raises ``ValueError`` when it is not JSON, as ``json.loads`` does)."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:  # NaN / Infinity, which Python's json writes by default
            pass
    return json.loads(data)
