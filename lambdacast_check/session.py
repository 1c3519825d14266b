"""One WebSocket to the stack under check: send frames, wait for the ones that match, keep everything seen."""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.parse
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

Frame = dict[str, Any]


class Session:
    """A connection that reads frames one at a time and keeps those nobody has asked for yet.

    Args:
        ws: The open connection.
        timeout: Seconds to wait for any one expected frame.
    """

    def __init__(self, ws: ClientConnection, timeout: float) -> None:
        self.ws = ws
        self.timeout = timeout
        self.received: list[Frame] = []  # every frame, in arrival order
        self._backlog: list[Frame] = []  # frames not yet taken by expect()
        self._ids = itertools.count(1)

    @classmethod
    async def open(
        cls, url: str, *, token: str | None, timeout: float, subprotocols: list[str] | None = None
    ) -> Session:
        """Connect (``?token=`` appended when a token is given).

        Raises:
            websockets.InvalidStatus: The handshake was refused (the status is on ``.response``).
        """
        ws = await websockets.connect(
            with_token(url, token),
            open_timeout=timeout,
            max_size=None,
            ping_interval=None,
            subprotocols=subprotocols,  # type: ignore[arg-type]
        )
        return cls(ws, timeout)

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, if any."""
        return self.ws.subprotocol

    async def send(self, frame: Frame | str | bytes) -> None:
        """Send a frame as is (a dict is sent as compact JSON)."""
        await self.ws.send(json.dumps(frame, separators=(",", ":")) if isinstance(frame, dict) else frame)

    async def request(self, frame: Frame) -> Frame:
        """Send ``frame`` with a fresh ``id`` (unless it has one) and return the reply carrying that id."""
        frame = {"id": f"c{next(self._ids)}", **frame}
        await self.send(frame)
        return await self.expect(id=frame["id"])

    async def expect(self, predicate: Callable[[Frame], bool] | None = None, **fields: Any) -> Frame:
        """The first frame (already received or still to come) whose fields equal ``fields``.

        Raises:
            TimeoutError: None came within the timeout.
            websockets.ConnectionClosed: The socket closed first.
        """

        def wanted(frame: Frame) -> bool:
            return all(frame.get(k) == v for k, v in fields.items()) and (
                predicate is None or predicate(frame)
            )

        for index, frame in enumerate(self._backlog):
            if wanted(frame):
                return self._backlog.pop(index)
        async with asyncio.timeout(self.timeout):
            while True:
                frame = await self._next()
                if wanted(frame):
                    return frame
                self._backlog.append(frame)

    async def _next(self) -> Frame:
        text = await self.ws.recv()
        try:
            frame = json.loads(text)
        except ValueError:
            frame = {"_unparsed": str(text)[:200]}
        if not isinstance(frame, dict):
            frame = {"_not_an_object": frame}
        self.received.append(frame)
        return frame

    def messages(self, channel: str) -> list[Frame]:
        """Every ``message`` frame of ``channel`` received so far, in arrival order."""
        return [f for f in self.received if f.get("type") == "message" and f.get("channel") == channel]

    async def closed(self) -> tuple[int | None, str]:
        """Wait for the server to close the socket; return its close code and reason.

        Raises:
            TimeoutError: It stayed open.
        """
        async with asyncio.timeout(self.timeout):
            try:
                while True:
                    await self._next()
            except websockets.ConnectionClosed as closed:
                received = closed.rcvd
                return (received.code, received.reason) if received is not None else (None, "no close frame")

    async def close(self) -> None:
        """Close the socket (a normal closure)."""
        await self.ws.close()


def with_token(url: str, token: str | None) -> str:
    """``url`` with ``token`` added to its query string."""
    if not token:
        return url
    return f"{url}{'&' if '?' in url else '?'}token={urllib.parse.quote(token, safe='')}"
