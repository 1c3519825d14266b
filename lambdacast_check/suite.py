"""The behaviours, how one is run, and what it reports.

A behaviour is an async function that takes a :class:`Probe` and returns what it saw (the PASS line's
text), raises :class:`Failed` (what was expected, what came) or :class:`Skipped` (why it cannot run
here). Anything else it raises (no reply in time, the socket closed, a malformed reply) is a FAIL too.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

import websockets

from lambdacast_check.session import Frame, Session

#: Characters a channel name may hold (docs/protocol.md, Channel names).
CHANNEL_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-=@,.;:")
DEFAULT_PREFIX: Final = "lambdacast-check-"
#: The longest "what was seen" a report line carries.
MAX_DETAIL: Final = 400


class Status(enum.StrEnum):
    """A behaviour's verdict."""

    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


class Failed(Exception):
    """The stack did not behave as the protocol says (the message says what was expected and seen)."""


class Skipped(Exception):
    """The behaviour cannot be checked on this stack with these options (the message says why)."""


def expect(condition: bool, message: str) -> None:
    """Raise :class:`Failed` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise Failed(message)


@dataclass(frozen=True)
class Behaviour:
    """One line of the report."""

    name: str
    summary: str
    run: Callable[[Probe], Awaitable[str]]


@dataclass(frozen=True)
class Outcome:
    """What running one behaviour gave."""

    behaviour: Behaviour
    status: Status
    detail: str
    seconds: float


REGISTRY: list[Behaviour] = []


Check = Callable[["Probe"], Awaitable[str]]


def behaviour(name: str, summary: str | None = None) -> Callable[[Check], Check]:
    """Register a behaviour under ``name``; its summary is the function's docstring unless given.

    The report keeps registration order.
    """

    def register(run: Check) -> Check:
        if any(b.name == name for b in REGISTRY):
            raise ValueError(f"behaviour {name!r} registered twice")
        text = summary or inspect.getdoc(run) or name
        REGISTRY.append(Behaviour(name, " ".join(text.split()).rstrip("."), run))
        return run

    return register


@dataclass
class Probe:
    """What a behaviour may use: the endpoint, the token, fresh channel names, connections.

    Attributes:
        url: The WebSocket URL (``ws://`` or ``wss://``).
        token: Appended as ``?token=`` to every connection (stacks with ``AuthMode`` ``required``; a
            token granting ``presence-<prefix>*`` also enables the presence behaviours).
        prefix: Every channel the checks use starts with it (``private-``/``presence-`` go in front).
        timeout: Seconds to wait for any one expected frame or handshake.
    """

    url: str
    token: str | None = None
    prefix: str = DEFAULT_PREFIX
    timeout: float = 10.0
    _welcome: Frame | None = field(default=None, repr=False)

    def channel(self, kind: str = "") -> str:
        """A channel name nobody else uses: ``[kind]<prefix><random>``."""
        return f"{kind}{self.prefix}{secrets.token_hex(5)}"

    @contextlib.asynccontextmanager
    async def connect(self, *, token: str | bool | None = True) -> AsyncIterator[Session]:
        """A session for the duration of the block (``token=False``: anonymous; a string: that token)."""
        chosen = self.token if token is True else (token or None)
        session = await Session.open(self.url, token=chosen, timeout=self.timeout)
        try:
            yield session
        finally:
            await session.close()

    async def welcome(self) -> Frame:
        """The stack's ``welcome`` (limits, the token's user), asked once."""
        if self._welcome is None:
            async with self.connect() as session:
                self._welcome = await session.request({"action": "hello"})
        return self._welcome


async def run_one(item: Behaviour, probe: Probe) -> Outcome:
    """Run one behaviour and turn whatever happened into an outcome (never raises)."""
    started = time.monotonic()
    try:
        detail = await item.run(probe)
        status = Status.PASS
    except Failed as exc:
        status, detail = Status.FAIL, str(exc)
    except Skipped as exc:
        status, detail = Status.SKIP, str(exc)
    except TimeoutError:
        status, detail = Status.FAIL, f"no expected frame within {probe.timeout:g} s"
    except websockets.InvalidStatus as exc:
        status, detail = Status.FAIL, f"handshake refused with HTTP {exc.response.status_code}"
    except websockets.ConnectionClosed as exc:
        status, detail = Status.FAIL, f"the socket closed unexpectedly ({_close_text(exc)})"
    except (OSError, websockets.InvalidHandshake) as exc:
        status, detail = Status.FAIL, f"could not connect: {exc}"
    except (KeyError, TypeError, ValueError) as exc:
        status, detail = (
            Status.FAIL,
            f"a reply lacked what the protocol promises ({type(exc).__name__}: {exc})",
        )
    if len(detail) > MAX_DETAIL:  # a frame quoted whole can be 32 KB
        detail = detail[: MAX_DETAIL - 1] + "…"
    return Outcome(item, status, detail, time.monotonic() - started)


async def run_all(
    probe: Probe, behaviours: list[Behaviour], report: Callable[[Outcome], None] = lambda _: None
) -> list[Outcome]:
    """Run behaviours one after another (they share the stack's rate limits, so never at once).

    ``report`` is called with each outcome as soon as it is known.
    """
    outcomes = []
    for item in behaviours:
        outcome = await run_one(item, probe)
        report(outcome)
        outcomes.append(outcome)
    return outcomes


def _close_text(exc: websockets.ConnectionClosed) -> str:
    received = exc.rcvd
    return f"code {received.code} {received.reason!r}" if received is not None else "no close frame"


def run(probe: Probe, behaviours: list[Behaviour], report: Callable[[Outcome], None]) -> list[Outcome]:
    """Run the behaviours on a new event loop."""
    return asyncio.run(run_all(probe, behaviours, report))


def valid_prefix(prefix: str) -> bool:
    """Whether ``prefix`` can start a channel name (and leaves room for the random part)."""
    return 1 <= len(prefix) <= 100 and set(prefix) <= CHANNEL_CHARS
