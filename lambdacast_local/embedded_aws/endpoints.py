"""AWS's public service endpoints, locally: ``https://dynamodb.<region>.amazonaws.com`` & co on 127.0.0.1.

A handler that builds a service URL itself (or whose SDK ignores ``AWS_ENDPOINT_URL_*``) connects to the
real hostname on port 443; its worker sends that connection here instead (``runtimes/protocol.py``,
``hosts``). This front ends TLS with the emulator's certificate, which names those hosts, and relays the
bytes to the plain-HTTP embedded AWS, which tells services apart by the ``Host`` header or the signature's
credential scope as AWS does. One front per upstream: the embedded moto, or ``--dynamodb-endpoint``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


class ServiceFront:
    """A TLS listener on 127.0.0.1 relaying each connection to one plain-HTTP upstream."""

    def __init__(self, upstream_host: str, upstream_port: int, context: ssl.SSLContext) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._context = context
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> int:
        """Listen on a free port of 127.0.0.1 and return it."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            client_writer.close()
            self._connections.discard(task)
            return
        try:
            await asyncio.gather(
                _relay(client_reader, upstream_writer), _relay(upstream_reader, client_writer)
            )
        finally:
            for writer in (upstream_writer, client_writer):
                writer.close()
            self._connections.discard(task)

    async def stop(self) -> None:
        """Stop listening and drop the open relays."""
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
