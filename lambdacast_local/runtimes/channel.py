"""The pool's end of the worker protocol (``protocol.py``): one worker process and its three pipes.

The pipes are read by an ``asyncio.SubprocessProtocol``, not by stream readers: a reply line resolves the
one pending read's future straight from the pipe callback, and the read's timeout is one timer handle.
Per invocation that is one write, one callback and one future, where ``StreamReader.readline`` under
``asyncio.wait_for`` costs a task, a waiter and a timeout on the emulator's main process for every
message a handler serves (the echo path's hottest part after the sockets themselves).

Whatever the worker writes on stderr (the handler's prints and logs) is copied to the emulator's stderr,
each line prefixed with the function's name, as the pipe delivers it: chunks are split on newlines, never
buffered by line, so a huge line cannot stall the worker on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import deque
from collections.abc import Sequence
from typing import Any

from lambdacast_local import jsoncodec

IPC_LIMIT = 64 * 1024 * 1024
"""A reply line longer than this is a corrupted channel (the worker is then treated as dead)."""

_STDOUT, _STDERR = 1, 2
_END = object()
"""Put in the reply queue when stdout ends (the worker exited or closed it)."""


class _Pipes(asyncio.SubprocessProtocol):
    """Collects reply lines from stdout and forwards stderr lines to the log."""

    def __init__(self, log_prefix: str) -> None:
        self._prefix = log_prefix
        self._replies: deque[Any] = deque()
        self._partial = b""
        self._log_partial = b""
        self._waiter: asyncio.Future[Any] | None = None
        self._loop = asyncio.get_running_loop()  # kept: each lookup is a getpid() on Python 3.11
        self.closed: asyncio.Future[None] = self._loop.create_future()
        """Done when the process has exited and every pipe is closed."""

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == _STDOUT:
            self._reply_bytes(data)
        elif fd == _STDERR:
            self._log_bytes(data)

    def pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        if fd == _STDOUT:
            self._partial = b""
            self._push(_END)
        elif fd == _STDERR and self._log_partial:
            _log(self._prefix + self._log_partial.decode("utf-8", errors="replace") + "\n")
            self._log_partial = b""

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def _reply_bytes(self, data: bytes) -> None:
        if b"\n" not in data:
            self._partial += data
            if len(self._partial) > IPC_LIMIT:  # a runaway line: nothing after it can be trusted
                self._partial = b""
                self._push(_END)
            return
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self._push(line)

    def _log_bytes(self, data: bytes) -> None:
        *lines, self._log_partial = (self._log_partial + data).split(b"\n")
        if lines:
            prefix = self._prefix
            _log("".join(prefix + line.decode("utf-8", errors="replace") + "\n" for line in lines))

    def _push(self, item: Any) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(item)
        else:
            self._replies.append(item)

    async def next_line(self, timeout: float) -> Any:
        """The next reply line, or ``_END``; raises ``TimeoutError`` after ``timeout`` seconds."""
        if self._replies:
            return self._replies.popleft()
        loop = self._loop
        waiter = self._waiter = loop.create_future()
        expiry = loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            expiry.cancel()
            if self._waiter is waiter:
                self._waiter = None


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _log(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


class WorkerProcess:
    """One worker process: send an ``Invoke``, read its ``Reply``; stop or kill it."""

    def __init__(self, transport: asyncio.SubprocessTransport, pipes: _Pipes, generation: int) -> None:
        self._transport = transport
        self._pipes = pipes
        # uvloop's pipe transports do not subclass asyncio's, so this is duck-typed.
        self._stdin: Any = transport.get_pipe_transport(0)
        self.generation = generation
        self.pid: int = transport.get_pid()

    @classmethod
    async def start(
        cls, argv: Sequence[str], *, env: dict[str, str], cwd: str, generation: int, log_prefix: str
    ) -> WorkerProcess:
        """Start the process (its pipes wired); the caller then reads its ``Ready`` line."""
        loop = asyncio.get_running_loop()
        pipe = asyncio.subprocess.PIPE
        transport, pipes = await loop.subprocess_exec(
            lambda: _Pipes(log_prefix), *argv, stdin=pipe, stdout=pipe, stderr=pipe, env=env, cwd=cwd
        )
        return cls(transport, pipes, generation)

    @property
    def alive(self) -> bool:
        """Whether the process has not exited yet."""
        return self._transport.get_returncode() is None

    async def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send one message and wait for the reply line; ``None`` when the worker died."""
        if self._stdin.is_closing():
            return None
        self._stdin.write(jsoncodec.dumps_bytes(message) + b"\n")
        return await self.read(timeout)

    async def read(self, timeout: float) -> dict[str, Any] | None:
        """Read one reply line (raises ``TimeoutError``); ``None`` at end of stream or on a corrupt line."""
        line = await self._pipes.next_line(timeout)
        if line is _END:
            return None
        try:
            reply = jsoncodec.loads(line)
        except ValueError:
            return None  # a corrupted channel: treated like a dead worker
        return reply if isinstance(reply, dict) else None

    async def stop(self, grace_s: float = 1.0) -> None:
        """Close stdin (the worker exits), then kill it if it lingers; always reaps the process."""
        if self.alive:
            self._stdin.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._pipes.closed), grace_s)
        except TimeoutError:
            self.kill()
            with contextlib.suppress(TimeoutError):  # pipes a grandchild still holds open: give up on them
                await asyncio.wait_for(asyncio.shield(self._pipes.closed), 1.0)
        self._transport.close()

    def kill(self) -> None:
        """Kill the process now (a timeout, or shutdown)."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self._transport.kill()
