"""One Lambda execution environment for Python: imports a handler once, then serves invocations.

Run as ``python -I -S worker.py '<json config>'`` by the interpreter the function's ``Runtime`` names (3.9
or later), so this file uses the standard library only and no syntax newer than 3.9. It speaks the worker
protocol of ``protocol.py`` over the process's original stdin and stdout; the handler's own ``print``
output goes to stderr, so it can never corrupt that channel.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import time
import traceback
from typing import Any, TextIO


class LambdaContext:
    """The context object Lambda passes to a handler."""

    def __init__(self, config: dict[str, Any], request_id: str, deadline_ms: int) -> None:
        self.function_name: str = config["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn: str = config["function_arn"]
        self.memory_limit_in_mb: int = int(config["memory_mb"])
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name: str = config["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the emulator kills this invocation."""
        return max(0, self._deadline_ms - time.time_ns() // 1_000_000)


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "ok": False,
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def redirect_hosts(hosts: dict[str, int]) -> None:
    """Send connections to the AWS hostnames the emulator serves to its local listeners; others untouched.

    Every Python network client resolves through ``socket.getaddrinfo``, whose answer carries the port too:
    answering ``127.0.0.1:<listener>`` for exactly those ``host:port`` pairs moves the TCP connection while
    TLS still sends and verifies the real hostname (the emulator's certificate covers it). No proxy, no
    /etc/hosts, nothing the handler can see but the connection's peer.
    """
    if not hosts:
        return
    resolve = socket.getaddrinfo

    def getaddrinfo(  # noqa: PLR0917 - socket.getaddrinfo's own signature
        host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> Any:
        if host:
            name = host.decode() if isinstance(host, bytes) else str(host)
            target = hosts.get(f"{name.lower()}:{port}")
            if target is not None:
                return resolve("127.0.0.1", target, socket.AF_INET, type, proto, flags)
        return resolve(host, port, family, type, proto, flags)

    socket.getaddrinfo = getaddrinfo


def _load_handler(config: dict[str, Any]) -> Any:
    here = os.path.dirname(os.path.abspath(__file__))
    # Only the configured folders, then the standard library: never this folder (Python < 3.11 adds the
    # script's folder even under -I, and the emulator's modules must not be importable by handlers).
    sys.path[:] = [*config["paths"], *(path for path in sys.path if path and path != here)]
    module_name, _, attribute = config["handler"].rpartition(".")
    module = importlib.import_module(module_name.replace("/", "."))
    return getattr(module, attribute)


def _send(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message, separators=(",", ":")) + "\n")
    channel.flush()


def main() -> None:
    """Import the handler, report readiness, then serve invocations until stdin closes."""
    config = json.loads(sys.argv[1])
    sys.dont_write_bytecode = True  # a fresh worker after --reload must never read a stale .pyc
    ipc_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    ipc_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.chdir(config["code_dir"])
    redirect_hosts(config.get("hosts") or {})

    started = time.perf_counter()
    try:
        handler = _load_handler(config)
    except BaseException as exc:  # the init error is reported, like Lambda's Runtime.ImportModuleError
        traceback.print_exc()
        _send(ipc_out, {"type": "init_error", **_error(exc, "Runtime.ImportModuleError")})
        return
    _send(ipc_out, {"type": "ready", "init_ms": (time.perf_counter() - started) * 1000})

    for line in ipc_in:
        request = json.loads(line)
        context = LambdaContext(config, request["request_id"], request["deadline_ms"])
        try:
            result = handler(request["event"], context)
        except Exception as exc:
            traceback.print_exc()
            text = json.dumps(_error(exc), separators=(",", ":"), default=str)
        else:
            try:
                text = json.dumps({"ok": True, "result": result}, separators=(",", ":"))
            except (TypeError, ValueError) as exc:
                text = json.dumps(_error(exc, "Runtime.MarshalError"), default=str)
        ipc_out.write(text + "\n")
        ipc_out.flush()


if __name__ == "__main__":
    main()
