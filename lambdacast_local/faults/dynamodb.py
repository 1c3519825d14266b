"""DynamoDB faults on the wire: a listener in front of the embedded DynamoDB's WSGI app.

Handlers reach DynamoDB here (``AWS_ENDPOINT_URL_DYNAMODB``); the emulator's own clients (table
creation, tests reading tables) use moto's listener directly, so they never see a fault. Only the
data-plane operations apps use take a decision; everything else passes through untouched.

Errors are written as DynamoDB's JSON protocol (``application/x-amz-json-1.0``, ``__type`` with the
service namespace, ``x-amzn-RequestId``, ``x-amz-crc32``), so botocore and the AWS SDK for JavaScript
classify them as DynamoDB's own: throttles and 500s are retried by their standard retry strategies.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import uuid
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from lambdacast_local.faults.plan import Faults
from lambdacast_local.faults.spec import DYNAMODB

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

DATA_PLANE = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
    }
)
"""Operations that count as calls; control-plane ones (CreateTable, DescribeTable...) are never faulted."""

_PROTOCOL_PREFIX = "DynamoDB_20120810."
_NAMESPACE = "com.amazonaws.dynamodb.v20120810"

ERRORS: dict[str, tuple[int, str, str]] = {
    "ProvisionedThroughputExceededException": (
        400,
        f"{_NAMESPACE}#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    ),
    "ThrottlingException": (
        400,
        "com.amazon.coral.availability#ThrottlingException",
        "Rate of requests exceeds the allowed throughput.",
    ),
    "InternalServerError": (500, f"{_NAMESPACE}#InternalServerError", "Internal server error"),
}
"""Error name -> (status, ``__type``, message), as DynamoDB sends them."""


def operation(environ: dict[str, Any]) -> str:
    """The DynamoDB operation of a request (``PutItem``), from ``X-Amz-Target``; ``""`` if none."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    return target[len(_PROTOCOL_PREFIX) :] if target.startswith(_PROTOCOL_PREFIX) else ""


def error_response(name: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """The status line, headers and body DynamoDB answers with for error ``name`` (see ``ERRORS``)."""
    status, error_type, message = ERRORS[name]
    body = json.dumps({"__type": error_type, "message": message}).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", uuid.uuid4().hex.upper()),
        ("x-amz-crc32", str(zlib.crc32(body))),
    ]
    reason = "Bad Request" if status == 400 else "Internal Server Error"
    return f"{status} {reason}", headers, body


class FaultyDynamoDb:
    """WSGI middleware that injects the ``dynamodb`` faults of a plan into a DynamoDB app.

    - ``throttle``: not applied; 400 ``ProvisionedThroughputExceededException`` or ``ThrottlingException``.
    - ``error``: not applied; 500 ``InternalServerError``.
    - ``lost-reply``: applied (the request runs to its end), then either a 500 ``InternalServerError``
      or the connection is closed without any reply (what a client sees when its read timeout fires, without
      the wait).
    """

    def __init__(self, app: WsgiApp, faults: Faults) -> None:
        self._app = app
        self._faults = faults

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Serve one request, faulted or not."""
        if operation(environ) not in DATA_PLANE:
            return self._app(environ, start_response)
        decision = self._faults.decide(DYNAMODB)
        if decision.kind is None:
            return self._app(environ, start_response)
        if decision.kind == "lost-reply":
            self._apply(environ)
            if decision.variant == "dropped":
                _drop_connection(environ)
            return _answer(start_response, "InternalServerError")
        _drain(environ)
        name = decision.variant if decision.kind == "throttle" else "InternalServerError"
        return _answer(start_response, name)

    def _apply(self, environ: dict[str, Any]) -> None:
        """Run the request against the real app and throw its reply away."""

        def discard(_status: str, _headers: list[Any], _exc_info: Any = None) -> Callable[[bytes], None]:
            return lambda _data: None

        reply = self._app(environ, discard)
        try:
            for _chunk in reply:
                pass
        finally:
            close = getattr(reply, "close", None)
            if close is not None:
                close()


def _answer(start_response: Callable[..., Any], name: str) -> list[bytes]:
    status, headers, body = error_response(name)
    start_response(status, headers)
    return [body]


def _drain(environ: dict[str, Any]) -> None:
    """Read the request body the app will never read (the client has sent it; leave the socket clean)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 0:
        environ["wsgi.input"].read(length)


def _drop_connection(environ: dict[str, Any]) -> None:
    """Close the client's connection with no reply.

    werkzeug hands the app its socket as ``werkzeug.socket``; after the shutdown a ``ConnectionError``
    tells werkzeug the connection is gone, which it handles quietly (no 500, no traceback).
    """
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("lambdacast fault injection: reply dropped after the request was applied")


class FaultListener:
    """A threaded WSGI server on 127.0.0.1 serving ``FaultyDynamoDb`` over an existing DynamoDB app."""

    def __init__(self, app: WsgiApp, faults: Faults) -> None:
        self._app = FaultyDynamoDb(app, faults)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.endpoint = ""

    def start(self) -> str:
        """Listen on a free port; return the endpoint URL."""
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="lambdacast-dynamodb-faults", daemon=True
        )
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.endpoint = f"http://{host!s}:{port}"
        return self.endpoint

    def stop(self) -> None:
        """Stop listening (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
