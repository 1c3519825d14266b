"""Build API Gateway WebSocket events identical in shape to AWS captures (pure functions, no I/O).

The ids follow API Gateway's format: 16 base64 characters such as ``BFHPhfCWIAMCKlQ=``.
"""

from __future__ import annotations

import base64
import functools
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class _Entropy:
    """Random bytes from ``os.urandom``, read 4 KB at a time.

    Every message needs several ids, and each ``os.urandom`` call is a ``getrandom`` system call.
    Thread-safe; emptied in a forked child.
    """

    _CHUNK = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool, self._at = b"", 0

    def take(self, count: int) -> bytes:
        with self._lock:
            if self._at + count > len(self._pool):
                self._pool, self._at = os.urandom(max(self._CHUNK, count)), 0
            start, self._at = self._at, self._at + count
            return self._pool[start : self._at]


random_bytes = _Entropy().take
"""``random_bytes(n)``: ``n`` bytes from the operating system's CSPRNG, pooled."""


def new_id() -> str:
    """Return a fresh API Gateway-style id (connection, request, message): 16 base64 characters."""
    while True:
        candidate = base64.b64encode(random_bytes(11)).decode()
        if "/" not in candidate and "+" not in candidate:
            return candidate


def now_ms() -> int:
    """The wall clock in epoch milliseconds (the unit of ``connectedAt`` / ``requestTimeEpoch``)."""
    return time.time_ns() // 1_000_000


@functools.lru_cache(maxsize=4)
def _clf_second(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def clf_time(epoch_ms: int) -> str:
    """Format a time the way ``requestTime`` does (Common Log Format): ``09/Feb/2019:22:01:22 +0000``.

    One ``strftime`` per second of events, not one per event (the text has no finer unit).
    """
    return _clf_second(epoch_ms // 1000)


@dataclass(frozen=True)
class Stage:
    """Where the API is served: what ``apiId``, ``stage`` and ``domainName`` say in every event."""

    api_id: str
    stage: str
    domain_name: str
    region: str = "us-east-1"
    account_id: str = "123456789012"


@dataclass
class Connection:
    """What API Gateway remembers about one connection and repeats in its events."""

    connection_id: str
    connected_at: int
    source_ip: str
    user_agent: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    query: list[tuple[str, str]] = field(default_factory=list)
    authorizer: dict[str, Any] | None = None
    caller: dict[str, Any] = field(default_factory=dict)
    """IAM caller fields of ``identity`` (``accessKey``, ``accountId``, ``caller``, ``user``, ``userArn``)."""


def _single_and_multi(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def _request_context(
    stage: Stage, conn: Connection, route_key: str, event_type: str, request_ms: int
) -> dict[str, Any]:
    request_id = new_id()  # AWS's captures carry the same id in both fields
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": clf_time(request_ms),
        "messageDirection": "IN",
        "stage": stage.stage,
        "connectedAt": conn.connected_at,
        "requestTimeEpoch": request_ms,
        "identity": {**conn.caller, "sourceIp": conn.source_ip},
        "requestId": request_id,
        "domainName": stage.domain_name,
        "connectionId": conn.connection_id,
        "apiId": stage.api_id,
    }
    if conn.authorizer is not None:
        context["authorizer"] = dict(conn.authorizer)
    return context


def connect_event(stage: Stage, conn: Connection, request_ms: int | None = None) -> dict[str, Any]:
    """The ``$connect`` event: handshake headers and query string, identity with the user agent."""
    request_ms = conn.connected_at if request_ms is None else request_ms
    context = _request_context(stage, conn, "$connect", "CONNECT", request_ms)
    context["identity"]["userAgent"] = conn.user_agent
    headers, multi_headers = _single_and_multi(conn.headers)
    event: dict[str, Any] = {
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "requestContext": context,
    }
    if conn.query:
        query, multi_query = _single_and_multi(conn.query)
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = multi_query
    event["isBase64Encoded"] = False
    return event


def message_event(
    stage: Stage, conn: Connection, route_key: str, body: str | bytes, request_ms: int | None = None
) -> dict[str, Any]:
    """A MESSAGE event; binary frames arrive base64-encoded with ``isBase64Encoded: true``."""
    context = _request_context(
        stage, conn, route_key, "MESSAGE", now_ms() if request_ms is None else request_ms
    )
    context["messageId"] = new_id()
    if isinstance(body, bytes):
        return {"requestContext": context, "body": base64.b64encode(body).decode(), "isBase64Encoded": True}
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def disconnect_event(
    stage: Stage, conn: Connection, status_code: int, reason: str, request_ms: int | None = None
) -> dict[str, Any]:
    """The ``$disconnect`` event with ``disconnectStatusCode`` and ``disconnectReason``."""
    context = _request_context(
        stage, conn, "$disconnect", "DISCONNECT", now_ms() if request_ms is None else request_ms
    )
    context["identity"]["userAgent"] = conn.user_agent
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    headers = {
        "Host": stage.domain_name,
        "x-api-key": "",
        "X-Forwarded-For": "",
        "x-restapi": "",
    }
    return {
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "requestContext": context,
        "isBase64Encoded": False,
    }


def authorizer_event(stage: Stage, conn: Connection, request_ms: int | None = None) -> dict[str, Any]:
    """The REQUEST authorizer event for ``$connect``: ``methodArn``, headers, query string, requestContext."""
    connect = connect_event(stage, conn, request_ms)
    connect["requestContext"].pop("authorizer", None)
    method_arn = (
        f"arn:aws:execute-api:{stage.region}:{stage.account_id}:{stage.api_id}/{stage.stage}/$connect"
    )
    event: dict[str, Any] = {
        "type": "REQUEST",
        "methodArn": method_arn,
        "headers": connect["headers"],
        "multiValueHeaders": connect["multiValueHeaders"],
        "queryStringParameters": connect.get("queryStringParameters", {}),
        "multiValueQueryStringParameters": connect.get("multiValueQueryStringParameters", {}),
        "stageVariables": {},
        "requestContext": connect["requestContext"],
    }
    return event


def handshake_headers(host: str, source_ip: str, port: int) -> list[tuple[str, str]]:
    """The headers API Gateway adds to a handshake before ``$connect`` sees it."""
    return [
        ("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()}"),
        ("X-Forwarded-For", source_ip),
        ("X-Forwarded-Port", str(port)),
        ("X-Forwarded-Proto", "https"),
        ("Host", host),
    ]
