"""The execute-api host as handlers reach it: ``@connections`` over TLS, on a lean HTTP/1.1 server.

Every ``post_to_connection`` a handler makes arrives here, so this is the emulator's busiest HTTP path:
for a boto3 echo it was half of the emulator's CPU per message under aiohttp's full web stack (request
object, router, response object, writer). This server parses with httptools (llhttp, in C), calls
``ManagementApi.call`` (the same semantics the WebSocket port serves through aiohttp) and writes the
answer in one write; requests on a connection are answered in order.

A connection whose first request is not a ``@connections`` call (a WebSocket handshake, the emulator's
``/_lambdacast`` pages) is handed, with the bytes received so far, to the aiohttp server of the WebSocket
port, which then owns it: the listener serves everything it served before. Later requests on a
connection that began with ``@connections`` stay here; any other path answers 403 as execute-api does.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import time
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

import httptools
from multidict import CIMultiDict

from lambdacast_local.management.api import OK, OPERATIONS, Answer, ManagementApi, Request

MAX_BODY_BYTES = 4 * 1024 * 1024
"""A bigger body is refused before it is buffered (the WebSocket port's aiohttp limit)."""
_MAX_HEAD_BYTES = 16 * 1024
_PENDING_BEFORE_PAUSE = 16
_FORBIDDEN = Answer(403, b'{"message":"Forbidden"}')
_NOT_ALLOWED = Answer(405, b'{"message":"Method Not Allowed"}')
_TOO_LARGE = Answer(413, b'{"message":"Request entity too large"}', "PayloadTooLargeException")


@functools.lru_cache(maxsize=4096)  # a connection's many posts share their target
def connection_target(target: bytes, stage: str) -> str | None:
    """The connection id of ``/@connections/{id}`` or ``/{stage}/@connections/{id}`` (query ignored)."""
    path = target.split(b"?", 1)[0].decode("latin-1")
    prefix, marker, connection_id = path.rpartition("/@connections/")
    if not marker or prefix not in ("", f"/{stage}") or not connection_id or "/" in connection_id:
        return None
    return unquote(connection_id) if "%" in connection_id else connection_id


class _Date:
    """The ``Date`` header, formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def header(self, now: float) -> bytes:
        if int(now) != self._second:
            self._second = int(now)
            self._value = email.utils.formatdate(now, usegmt=True).encode()
        return self._value


_DATE = _Date()


def _response(answer: Answer, keep_alive: bool, now: float) -> bytes:
    if answer is OK and keep_alive:  # nearly every answer: built once a second
        return _OK_RESPONSE.get(now)
    return _build(answer, keep_alive, now)


def _build(answer: Answer, keep_alive: bool, now: float) -> bytes:
    status = HTTPStatus(answer.status)
    head = [
        b"HTTP/1.1 %d %s" % (status.value, status.phrase.encode()),
        b"Date: " + _DATE.header(now),
        b"Content-Length: %d" % len(answer.body),
    ]
    if answer.body and answer.content_type:
        head.append(b"Content-Type: " + answer.content_type.encode())
    if answer.error_type:
        head.append(b"x-amzn-ErrorType: " + answer.error_type.encode())
    if not keep_alive:
        head.append(b"Connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + answer.body


class _Cached:
    """A response whose only changing part is its ``Date``."""

    def __init__(self, answer: Answer) -> None:
        self._answer = answer
        self._second = -1
        self._bytes = b""

    def get(self, now: float) -> bytes:
        if int(now) != self._second:
            self._second, self._bytes = int(now), _build(self._answer, True, now)
        return self._bytes


_OK_RESPONSE = _Cached(OK)


class ManagementListener:
    """The protocol factory of the TLS listener (``loop.create_server(listener, ssl=...)``)."""

    def __init__(
        self, api: ManagementApi, stage: str, fallback: Callable[[], asyncio.Protocol], origin: str
    ) -> None:
        self.api = api
        self.stage = stage
        self.fallback = fallback
        """Makes the protocol (aiohttp's request handler) that takes over a connection not for us."""
        self.origin = origin
        """``https://host:port``: what SigV4 sees as the URL's origin."""
        self.open: set[_Connection] = set()
        self.loop = asyncio.get_running_loop()  # kept: each lookup is a getpid() on Python 3.11

    def __call__(self) -> asyncio.Protocol:
        """A protocol for one new connection."""
        return _Connection(self)

    def close_all(self) -> None:
        """Close every connection still served here (shutdown)."""
        for connection in list(self.open):
            connection.close()


class _Connection(asyncio.Protocol):
    """One client connection: parse, answer in order, or hand it to aiohttp at its first request."""

    def __init__(self, listener: ManagementListener) -> None:
        self._listener = listener
        self._transport: Any = None
        self._head = b""
        self._parser: httptools.HttpRequestParser | None = None
        self._target = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._continue = False
        self._body: list[bytes] = []
        self._size = 0
        self._pending: deque[tuple[Request | Answer, bool]] = deque()
        self._answering: asyncio.Task[None] | None = None
        self._paused = False
        self._refused = False

    # -- asyncio.Protocol --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._listener.open.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._listener.open.discard(self)
        if self._answering is not None:
            self._answering.cancel()

    def data_received(self, data: bytes) -> None:
        if self._refused:  # a refusal is queued: nothing after it is read
            return
        if self._parser is None:
            if not self._decide(data):
                return
            data, self._head = self._head, b""
        parser = self._parser
        assert parser is not None
        try:
            parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._refuse(Answer(400, b'{"message":"Bad Request"}'))

    def _decide(self, data: bytes) -> bool:
        """At the first request line: ours (``True``, parse it here) or aiohttp's (hand over)."""
        self._head += data
        end = self._head.find(b"\r\n")
        if end < 0 and len(self._head) < _MAX_HEAD_BYTES:
            return False
        method, _, rest = self._head[: max(end, 0)].partition(b" ")
        target = rest.partition(b" ")[0]
        ours = method.decode("latin-1") in OPERATIONS and (
            connection_target(target, self._listener.stage) is not None
        )
        if not ours:
            self._hand_over()
            return False
        self._parser = httptools.HttpRequestParser(self)
        return True

    def _hand_over(self) -> None:
        protocol = self._listener.fallback()
        self._listener.open.discard(self)
        transport, received, self._head = self._transport, self._head, b""
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(received)

    # -- httptools callbacks -----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._target, self._headers, self._body, self._size = b"", [], [], 0
        self._continue = False

    def on_url(self, url: bytes) -> None:
        self._target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))  # decoded only when SigV4 needs them
        if len(name) == 6 and name.lower() == b"expect" and value.lower() == b"100-continue":
            self._continue = True

    def on_headers_complete(self) -> None:
        if self._continue:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_BODY_BYTES:
            raise httptools.HttpParserError("body too large")  # stops the parser; answered below
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        method = parser.get_method().decode("latin-1")
        keep_alive = parser.should_keep_alive()
        connection_id = connection_target(self._target, self._listener.stage)
        item: Request | Answer
        if connection_id is None:
            item = _FORBIDDEN
        elif method not in OPERATIONS:
            item = _NOT_ALLOWED
        else:
            body = b"".join(self._body)
            item = Request(method, connection_id, body)
            if self._listener.api.secrets is not None:  # only SigV4 reads the URL and the headers
                item.url = self._listener.origin + urlsplit(self._target.decode("latin-1")).path
                item.headers = CIMultiDict(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in self._headers
                )
        self._enqueue(item, keep_alive)

    # -- answers -----------------------------------------------------------------------------------------

    def _enqueue(self, item: Request | Answer, keep_alive: bool) -> None:
        self._pending.append((item, keep_alive))
        if self._answering is None:
            self._answering = self._listener.loop.create_task(self._answer_pending())
        if len(self._pending) > _PENDING_BEFORE_PAUSE and not self._paused:
            self._paused = True
            self._transport.pause_reading()

    async def _answer_pending(self) -> None:
        try:
            while self._pending:
                item, keep_alive = self._pending.popleft()
                answer = item if isinstance(item, Answer) else await self._listener.api.call(item)
                if self._transport.is_closing():
                    return
                self._transport.write(_response(answer, keep_alive, time.time()))
                if not keep_alive:
                    self.close()
                    return
                if self._paused and len(self._pending) <= 1:
                    self._paused = False
                    self._transport.resume_reading()
        finally:
            self._answering = None

    def _refuse(self, answer: Answer) -> None:
        """A request that cannot be parsed (or is too big): answered after those before it, then closed."""
        self._refused = True
        self._transport.pause_reading()
        self._enqueue(_TOO_LARGE if self._size > MAX_BODY_BYTES else answer, False)

    def close(self) -> None:
        """Close the connection (after what was written)."""
        with contextlib.suppress(Exception):
            self._transport.close()
