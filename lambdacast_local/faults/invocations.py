"""How an injected ``lambda`` fault is reported: as Lambda reports a dead or timed-out runtime (no I/O).

The pool realises both kinds by killing the worker process, at one of two points (the variant):
``before-handler`` (the event is never delivered: nothing the handler does happens) or
``after-handler`` (the handler ran to its end, every effect happened, and its result is lost). A kill
at an arbitrary line in between is not offered: where it lands would depend on timing, and a fault run
must repeat from its seed.
"""

from __future__ import annotations

from typing import Any

from lambdacast_local.faults.plan import Decision

MARK = " [injected fault]"
"""Appended to the error message so the invocation log line tells an injected failure from a real one."""


def timed_out(timeout_s: float) -> dict[str, Any]:
    """Lambda's error for an invocation that reached its function's ``Timeout``."""
    return {"errorType": "Sandbox.Timedout", "errorMessage": f"Task timed out after {timeout_s:.2f} seconds"}


def injected_failure(decision: Decision, request_id: str, timeout_s: float) -> tuple[str, dict[str, Any]]:
    """The invocation status and error for an injected ``crash`` or ``timeout``.

    Args:
        decision: A ``lambda`` decision whose ``kind`` is ``crash`` or ``timeout``.
        request_id: The invocation's request id (Lambda names it in a runtime exit).
        timeout_s: The function's ``Timeout`` (a timeout is reported as reaching it).

    Returns:
        ``("error", Runtime.ExitError)`` for a crash, ``("timeout", Sandbox.Timedout)`` for a timeout.
    """
    if decision.kind == "crash":
        message = f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"
        return "error", {"errorType": "Runtime.ExitError", "errorMessage": message + MARK}
    error = timed_out(timeout_s)
    error["errorMessage"] += MARK
    return "timeout", error
