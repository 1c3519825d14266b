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
    """A stand-in for ``sys.stderr`` that passes everything through and counts the functions' ERROR lines."""

    def __init__(self, target: TextIO) -> None:
        self._target = target
        self._partial = ""
        self.errors: list[LoggedError] = []

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self._scan(line)
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def _scan(self, line: str) -> None:
        match = _LINE.match(line)
        if match is None:
            return
        try:
            record = json.loads(match["body"])
        except ValueError:
            return
        if not isinstance(record, dict) or record.get("level") not in ("ERROR", "CRITICAL"):
            return
        self.errors.append(
            LoggedError(
                function=match["function"],
                message=str(record.get("message", "")),
                exception=str(record.get("exception_name", "")),
                connection_id=str(record.get("connection_id", "")),
                traceback=str(record.get("exception", ""))[-2000:],
            )
        )


def install() -> tuple[LogTap, TextIO]:
    """Put a tap in front of ``sys.stderr``; returns it and what it replaced (to restore)."""
    previous = sys.stderr
    tap = LogTap(previous)
    sys.stderr = tap  # type: ignore[assignment]
    return tap, previous
