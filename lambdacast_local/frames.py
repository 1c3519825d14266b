"""API Gateway's 32 KB frame quota: a received data frame over 32 KB closes the connection with 1009.

aiohttp's reader (a Cython class) limits whole messages only and does not expose frame sizes, so
``FrameSizeGuard`` sits in front of it on the socket's byte stream: it reads each frame's header (2 to 14
bytes), skips the payload without copying it, and refuses a text, binary or continuation frame whose
declared payload exceeds the limit before any of it is buffered. Everything else reaches aiohttp's reader
unchanged, which still enforces the 128 KiB message limit on fragmented messages.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.helpers import set_exception
from aiohttp.http_websocket import WebSocketError, WSCloseCode

MAX_FRAME_BYTES = 32 * 1024
"""API Gateway's WebSocket frame size quota (32 KB)."""
_DATA_OPCODES = frozenset({0x0, 0x1, 0x2})  # continuation, text, binary


class FrameScanner:
    """Follows frame boundaries in a WebSocket byte stream (client to server) and reports big frames."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._header = bytearray()
        self._skip = 0

    def oversized(self, data: bytes) -> bool:
        """Consume ``data``; ``True`` when it starts a data frame whose payload exceeds the limit."""
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            if not self._header and end - pos >= 2:  # the header may be whole here: read it in place
                second = data[pos + 1]
                len7 = second & 0x7F
                extended = 2 if len7 == 126 else 8 if len7 == 127 else 0
                header = 2 + extended + (4 if second & 0x80 else 0)
                if end - pos >= header:
                    length = int.from_bytes(data[pos + 2 : pos + 2 + extended], "big") if extended else len7
                    if data[pos] & 0x0F in _DATA_OPCODES and length > self.limit:
                        return True
                    self._skip = length
                    pos += header
                    continue
            need = self._header_length() - len(self._header)
            self._header += data[pos : pos + need]
            pos += min(need, end - pos)
            if len(self._header) < self._header_length():
                continue
            opcode, length = self._header[0] & 0x0F, self._payload_length()
            if opcode in _DATA_OPCODES and length > self.limit:
                return True
            self._skip = length
            self._header.clear()
        return False

    def _header_length(self) -> int:
        if len(self._header) < 2:
            return 2
        len7 = self._header[1] & 0x7F
        extended = 2 if len7 == 126 else 8 if len7 == 127 else 0
        return 2 + extended + (4 if self._header[1] & 0x80 else 0)

    def _payload_length(self) -> int:
        len7 = self._header[1] & 0x7F
        if len7 == 126:
            return int.from_bytes(self._header[2:4], "big")
        if len7 == 127:
            return int.from_bytes(self._header[2:10], "big")
        return len7


class FrameSizeGuard:
    """Wraps aiohttp's WebSocket reader: frames over the limit end the connection with 1009."""

    def __init__(self, parser: Any, queue: Any, limit: int, already_fed: bytes = b"") -> None:
        self._parser = parser
        self._queue = queue
        self._scanner = FrameScanner(limit)
        self._tripped = False
        if already_fed:  # bytes that arrived with the handshake and reached the parser before the guard
            self._trip_if(already_fed)

    def _trip_if(self, data: bytes) -> bool:
        if not self._tripped and self._scanner.oversized(data):
            self._tripped = True
            message = f"Frame size exceeds the {self._scanner.limit}-byte frame quota"
            set_exception(self._queue, WebSocketError(WSCloseCode.MESSAGE_TOO_BIG, message))
        return self._tripped

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        """Scan, then pass the bytes on (nothing more once a frame was refused)."""
        if self._tripped or self._trip_if(data if isinstance(data, bytes) else bytes(data)):
            return True, b""
        result: tuple[bool, bytes] = self._parser.feed_data(data)
        return result

    def feed_eof(self) -> None:
        """Pass the end of the stream on."""
        self._parser.feed_eof()


class GatewayWebSocketResponse(web.WebSocketResponse):
    """A server-side WebSocket that applies API Gateway's frame quota to what the client sends."""

    def __init__(self, *args: Any, max_frame_size: int = MAX_FRAME_BYTES, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_frame_size = max_frame_size

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: Any) -> None:
        handler: Any = request.protocol
        tail = bytes(getattr(handler, "_message_tail", b"") or b"")
        super()._post_start(request, protocol, writer)
        # aiohttp installs its reader on the request handler; the guard takes its place in front of it.
        handler._payload_parser = FrameSizeGuard(
            handler._payload_parser, self._reader, self._max_frame_size, already_fed=tail
        )
