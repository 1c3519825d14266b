"""A route's integration: its function invoked as API Gateway does, under the integration timeout.

API Gateway stops waiting for an integration after 29 s (or the route integration's ``TimeoutInMillis``)
and answers the client itself; Lambda is not told, so the invocation goes on and its outcome is dropped.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from lambdacast_local.lambda_pool import Invocation, LambdaService
from lambdacast_local.model import Route

_LOG = logging.getLogger(__name__)
INTEGRATION_TIMEOUT_S = 29.0
"""API Gateway's integration timeout (the route integration's ``TimeoutInMillis`` may lower it)."""
TIMED_OUT = "Endpoint request timed out"
"""What API Gateway answers when the integration timed out."""

OnTimeout = Callable[[asyncio.Task[Any] | None], None]
"""Told that a message's integration timed out, with the task that waited for it (to answer the client)."""


class Integration:
    """Invokes routes' functions for one API, giving up on each after its integration timeout."""

    def __init__(self, lambdas: LambdaService, timeout_s: float = INTEGRATION_TIMEOUT_S) -> None:
        self.lambdas = lambdas
        self.timeout_s = timeout_s
        """The cap on every route's integration timeout (a test may shorten it)."""
        self._detached: set[asyncio.Task[Any]] = set()
        self._running_loop: asyncio.AbstractEventLoop | None = None

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, looked up once (on Python 3.11 each lookup is a ``getpid`` system call)."""
        if self._running_loop is None:
            self._running_loop = asyncio.get_running_loop()
        return self._running_loop

    def timeout_for(self, route: Route) -> float:
        """How long API Gateway waits for ``route``'s integration, in seconds."""
        cap = self.timeout_s
        return cap if route.timeout_ms is None else min(cap, route.timeout_ms / 1000)

    async def invoke_in_task(
        self, route: Route, event: dict[str, Any], label: str, on_timeout: OnTimeout
    ) -> Invocation | None:
        """A message's invocation, awaited in the message's own task: ``None`` when the integration timed out.

        At the timeout ``on_timeout`` is called at once with that task (the caller answers the client and
        stops counting the task as its own); the invocation goes on and its outcome is dropped. No second
        task per message, as ``invoke`` needs for a handshake.
        """
        assert route.function is not None
        cap = self.timeout_for(route)
        task = asyncio.current_task(self._loop)
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            _LOG.warning("%s: integration timed out after %.1f s (the invocation goes on)", label, cap)
            on_timeout(task)

        expiry = self._loop.call_later(cap, expire)
        try:
            outcome = await self.lambdas.invoke(route.function, event, label)
        except Exception:
            if timed_out:  # the client already has its answer
                return None
            raise
        finally:
            expiry.cancel()
        return None if timed_out else outcome

    async def invoke(self, route: Route, event: dict[str, Any], label: str) -> Invocation | None:
        """Invoke a route's function as API Gateway does: ``None`` when the integration timed out.

        The invocation itself goes on (Lambda is not told that API Gateway stopped waiting).
        """
        assert route.function is not None
        cap = self.timeout_for(route)
        loop = self._loop
        task = loop.create_task(self.lambdas.invoke(route.function, event, label))
        self._detached.add(task)  # not awaited at shutdown: closing the workers ends a timed-out one
        task.add_done_callback(self._detached.discard)
        # One future and one timer rather than wait_for(shield(task)): this runs for every handshake.
        answered: asyncio.Future[Invocation | None] = loop.create_future()
        task.add_done_callback(functools.partial(_settle, answered))
        expiry = loop.call_later(cap, _settle_none, answered)
        try:
            outcome = await answered
        finally:
            expiry.cancel()
        if outcome is None:
            _LOG.warning("%s: integration timed out after %.1f s (the invocation goes on)", label, cap)
        return outcome


def _settle(answered: asyncio.Future[Invocation | None], task: asyncio.Task[Invocation]) -> None:
    """The invocation ended: hand its outcome (or its exception) to the waiting route, if still waiting."""
    if task.cancelled():
        if not answered.done():
            answered.cancel()
        return
    error = task.exception()  # retrieved even when nobody waits any more: no "never retrieved" warning
    if answered.done():
        return
    if error is not None:
        answered.set_exception(error)
    else:
        answered.set_result(task.result())


def _settle_none(answered: asyncio.Future[Invocation | None]) -> None:
    """The integration timeout passed first: the route answers without the invocation's outcome."""
    if not answered.done():
        answered.set_result(None)
