"""A minimal ``@connections`` API that answers every POST with 200 after an injected latency.

Run as its own process (``python -m bench.stub_server --latency-ms 10``) so its CPU time is not
charged to the publishing process being measured. It prints ``PORT <n>`` once it listens and
serves until its stdin closes.

It is a bare asyncio protocol rather than an aiohttp app on purpose: on a 2-core machine the
server shares the CPU with the process being measured, and a web framework's ~0.15 ms per request
would make the server, not the engine, the bottleneck (API Gateway has no such limit). It speaks
just enough HTTP/1.1 for keep-alive clients (Content-Length bodies, no pipelining needed), checks
that a SigV4 ``Authorization`` header is present (403 otherwise; the unit tests verify real
signatures) and answers ``GET /_stats`` with ``{"posts": n, "unsigned": m}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
_FORBIDDEN_BODY = b'{"message":"Missing Authentication Token"}'
_FORBIDDEN = (
    b"HTTP/1.1 403 Forbidden\r\nx-amzn-ErrorType: ForbiddenException\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(_FORBIDDEN_BODY)).encode() + b"\r\n\r\n" + _FORBIDDEN_BODY
)
_BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Counters:
    """What the server accepted."""

    def __init__(self) -> None:
        self.posts = 0
        self.unsigned = 0

    def stats(self) -> bytes:
        body = json.dumps({"posts": self.posts, "unsigned": self.unsigned}).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        return head.encode() + body


class StubProtocol(asyncio.Protocol):
    """One client connection: parse request heads and bodies, answer after the latency."""

    def __init__(self, counters: Counters, latency_s: float) -> None:
        self.counters = counters
        self.latency_s = latency_s
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip() or 0)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.respond(head)

    def respond(self, head: str) -> None:
        transport = self.transport
        if transport is None:
            return
        method, _, rest = head.partition(" ")
        path = rest.split(" ", 1)[0]
        if method == "GET" and path == "/_stats":
            transport.write(self.counters.stats())
        elif method == "POST" and "/@connections/" in path:
            signed = "\r\nauthorization: aws4-hmac-sha256 credential=" in head.lower()
            if signed:
                self.counters.posts += 1
            else:
                self.counters.unsigned += 1
            reply = _OK if signed else _FORBIDDEN
            asyncio.get_running_loop().call_later(self.latency_s, self._write, reply)
        else:
            transport.write(_BAD)
            transport.close()

    def _write(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(latency_ms: float, port: int) -> None:
    counters = Counters()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: StubProtocol(counters, latency_ms / 1000), "127.0.0.1", port, backlog=1024
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        # Until the parent closes our stdin (or dies).
        await loop.run_in_executor(None, sys.stdin.read)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.latency_ms, args.port))


if __name__ == "__main__":
    main()
