"""The worker protocol: how the pool talks to an execution environment, whatever its language.

Both workers follow this and only this (``worker.py`` for Python, ``worker.mjs`` for Node.js); the pool
(``lambda_pool.py``) is its only other party. It is newline-delimited JSON, one object per line, chosen
because both languages parse it natively and one line per message costs one write and one read.

Start: ``<interpreter> [flags] <worker file> '<WorkerConfig as JSON>'``, with the function's environment
and its code folder as the working directory. The worker's stdin and stdout carry the protocol; anything
the handler prints goes to stderr (the pool prefixes it with the function's name in the emulator's log).

1. The worker loads the handler (the cold start), then writes exactly one line:
   ``Ready`` (``{"type": "ready", "init_ms": 12.3}``) or ``InitError`` (``{"type": "init_error",
   "errorType": "Runtime.ImportModuleError", ...}``, after which it exits).
2. Then, for each line ``Invoke`` the pool writes (``{"request_id", "deadline_ms", "event"}``), it runs the
   handler once and writes one ``Reply`` line: ``{"ok": true, "result": ...}`` or ``{"ok": false,
   "errorType", "errorMessage", "stackTrace"}``. ``"fatal": true`` in a failed reply means the worker is
   exiting (Node.js: an uncaught exception), so the pool must not reuse it.
3. End of stdin: the worker exits.

The pool enforces timeouts by killing the worker; a worker that dies mid-invocation (no reply, end of
stream) failed that invocation. Invocations are strictly sequential per worker, so replies need no id.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class WorkerConfig(TypedDict):
    """The worker's only argument: what it runs and what the context object says."""

    handler: str
    """The template's ``Handler`` (``app.handler``, ``src/handlers/chat.onMessage``)."""
    code_dir: str
    function_name: str
    function_arn: str
    memory_mb: int
    log_stream_name: str
    hosts: dict[str, int]
    """``"host:port"`` (lower case) -> a port on 127.0.0.1: AWS hostnames the emulator serves."""
    paths: NotRequired[list[str]]
    """Python: ``sys.path`` entries before the standard library (code, dependencies, layers, boto3)."""
    esm_paths: NotRequired[list[str]]
    """Node.js: ``node_modules`` folders ES module imports fall back to (``NODE_PATH`` for CommonJS)."""


class Invoke(TypedDict):
    """One invocation."""

    request_id: str
    deadline_ms: int
    """Epoch milliseconds when the pool kills the worker (``getRemainingTimeInMillis``)."""
    event: Any


class Ready(TypedDict):
    """The handler is loaded."""

    type: Literal["ready"]
    init_ms: float


class Failure(TypedDict):
    """How a handler or an init failed, in Lambda's words."""

    errorType: str
    errorMessage: str
    stackTrace: list[str]


class InitError(Failure):
    """The handler could not be loaded; the worker exits."""

    type: Literal["init_error"]


class Reply(TypedDict):
    """The outcome of one ``Invoke``."""

    ok: bool
    result: NotRequired[Any]
    errorType: NotRequired[str]
    errorMessage: NotRequired[str]
    stackTrace: NotRequired[list[str]]
    fatal: NotRequired[bool]
