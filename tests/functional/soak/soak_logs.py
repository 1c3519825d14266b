"""The functions' log lines, read while the emulator copies them to stderr (``[FunctionName] {json}``).

Handlers never raise: they log an ERROR with the exception and answer ``internal_error`` (or carry on).
So "no handler raised" is read here as well as in the invocations: every ERROR line is counted by
function, message and exception type, and the soak tells the failures its faults explain from the rest.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any, TextIO

_LINE = re.compile(r"^\[(?P<function>[A-Za-z0-9_-]+)\] (?P<body>\{.*\})\s*$")


@dataclass(frozen=True)
class LoggedError:
    """One ERROR line of a function."""

    function: str
    message: str
    exception: str  # the exception's type name ("" when none was logged)
    connection_id: str  # the connection whose frame or event it was
    traceback: str


class LogTap:
    """A stand-in for ``sys.stderr`` that counts the functions' ERROR lines.

    It passes everything through except the functions' INFO, DEBUG and metrics lines: a soak makes tens
    of thousands of invocations, and their routine lines would bury the figures (and pytest's report).
    """

    def __init__(self, target: TextIO) -> None:
        self._target = target
        self._partial = ""
        self.errors: list[LoggedError] = []

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        kept = "".join(line + "\n" for line in lines if self._scan(line))
        if kept:
            self._target.write(kept)
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def _scan(self, line: str) -> bool:
        """Count the line if it is a function's ERROR; return whether to pass it on."""
        match = _LINE.match(line)
        if match is None:
            return True
        try:
            record = json.loads(match["body"])
        except ValueError:
            return True
        if not isinstance(record, dict):
            return True
        if record.get("level") not in ("ERROR", "CRITICAL"):
            return record.get("level") == "WARNING"  # INFO, DEBUG and metrics (EMF) lines stay out
        self.errors.append(
            LoggedError(
                function=match["function"],
                message=str(record.get("message", "")),
                exception=str(record.get("exception_name", "")),
                connection_id=str(record.get("connection_id", "")),
                traceback=str(record.get("exception", ""))[-2000:],
            )
        )
        return True


def install() -> tuple[LogTap, TextIO]:
    """Put a tap in front of ``sys.stderr``; returns it and what it replaced (to restore)."""
    previous = sys.stderr
    tap = LogTap(previous)
    sys.stderr = tap  # type: ignore[assignment]
    return tap, previous
