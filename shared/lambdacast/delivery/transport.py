"""The ``@connections`` transport: the synchronous entry points Lambda handlers post through.

Every post the backend makes goes through here: fan-out batches (:func:`post_many`), a
recovery replay to one connection in order (:func:`post_in_order`) and closing a connection
(:func:`delete_connection`). Each runs the engine of :mod:`lambdacast.delivery.engine` on a
private event loop, through an :data:`~lambdacast.delivery.exchange.Exchange`; the default sends
with aiohttp, and tests pass an in-memory one, so the engine they run is the one deployed.

Warm containers: one event loop and one ``ClientSession`` are kept per thread and reused across
invocations (the pool's TCP/TLS connections survive between invocations when API Gateway keeps
them open; a connection that died while the container was frozen fails its request with a
connection error, which is retried). This is safe because the loop only ever runs inside these
functions on its own thread, and it is rebuilt after a ``fork``. Call :func:`close` to release
it (tests do; Lambda never needs to).

``aiohttp`` and botocore are imported on the first request, not at module load.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from lambdacast.delivery.engine import (
    Engine,
    FanoutOutcome,
    Pacing,
    Sleep,
    lazy_asyncio,
    prepare,
    run,
    run_in_order,
)
from lambdacast.delivery.exchange import AiohttpExchange, Exchange, open_session
from lambdacast.delivery.policy import RetryPolicy
from lambdacast.delivery.sigv4 import Signer

if TYPE_CHECKING:
    import asyncio

    import aiohttp


log = logging.getLogger(__name__)

__all__ = [
    "ATTEMPT_TIMEOUT_S",
    "close",
    "delete_connection",
    "post_in_order",
    "post_many",
]


#: Seconds per request attempt. A healthy post answers in milliseconds; a short timeout keeps one
#: unresponsive endpoint from eating a publish's time (4 attempts x 4 s, and the deadline cuts it).
ATTEMPT_TIMEOUT_S = 4.0


class _Runner:
    """A private event loop and pooled session, kept per thread for warm invocations."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop: asyncio.AbstractEventLoop = lazy_asyncio().new_event_loop()
        self.session: aiohttp.ClientSession | None = None
        self.key: tuple[int, float, str] = (0, 0.0, "")

    def session_for(self, concurrency: int, timeout: float) -> aiohttp.ClientSession:
        key = (concurrency, timeout, os.environ.get("AWS_CA_BUNDLE", ""))
        if self.session is not None and self.key == key:
            return self.session
        self.close_session()
        self.session = self.loop.run_until_complete(open_session(concurrency, timeout, key[2]))
        self.key = key
        return self.session

    def close_session(self) -> None:
        if self.session is not None:
            self.loop.run_until_complete(self.session.close())
            self.session = None

    def close(self) -> None:
        try:
            self.close_session()
        finally:
            self.loop.close()

    def close_at_exit(self) -> None:
        """At interpreter exit, close what is still open: aiohttp warns of every session left open.

        A Lambda sandbox is frozen and killed, never exits; a process that does (a local emulator's
        worker at shutdown, a script) would print "Unclosed client session" for each thread's session.
        """
        if self.pid == os.getpid() and not self.loop.is_closed() and not self.loop.is_running():
            with contextlib.suppress(Exception):  # exiting anyway: nothing to report to
                self.close()


_local = threading.local()


def _runner() -> _Runner:
    runner: _Runner | None = getattr(_local, "runner", None)
    if runner is not None and runner.pid != os.getpid():
        runner = None  # inherited through fork: the loop and sockets belong to the parent
    if runner is None or runner.loop.is_closed():
        runner = _local.runner = _Runner()
        atexit.register(runner.close_at_exit)
    return runner


def _not_in_a_loop(name: str) -> None:
    try:
        lazy_asyncio().get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{name}() cannot run inside a running event loop; await post_many_async() instead")


def _sync(
    run: Callable[[Exchange, Pacing], Awaitable[FanoutOutcome]],
    *,
    exchange: Exchange | None,
    concurrency: int,
    timeout: float,
    pacing: Pacing,
) -> FanoutOutcome:
    """Run one engine coroutine on this thread's loop, through its pooled session unless ``exchange``."""
    runner = _runner()
    send = exchange if exchange is not None else AiohttpExchange(runner.session_for(concurrency, timeout))
    return runner.loop.run_until_complete(run(send, pacing))


def _policy_of(policy: RetryPolicy | None, max_attempts: int | None, timeout: float) -> RetryPolicy:
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    if policy is not None:
        return policy
    return RetryPolicy() if max_attempts is None else RetryPolicy(max_attempts=max_attempts)


def post_many(
    endpoint: str,
    items: Iterable[tuple[str, bytes]],
    *,
    concurrency: int = 50,
    region: str | None = None,
    credentials: Any = None,
    max_attempts: int | None = None,
    policy: RetryPolicy | None = None,
    timeout: float = ATTEMPT_TIMEOUT_S,
    signer: Signer | None = None,
    sleep: Sleep | None = None,
    jitter: Callable[[], float] = random.random,
    clock: Callable[[], float] = time.time,
    deadline: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    exchange: Exchange | None = None,
) -> FanoutOutcome:
    """Synchronous entry point for Lambda handlers: see :func:`post_many_async`.

    Args:
        endpoint: The management API base URL.
        items: ``(connection_id, payload)`` pairs.
        concurrency: Requests in flight at most; also the connection pool's size.
        region: Signing region (default from the endpoint or ``AWS_REGION``).
        credentials: See :func:`post_many_async`.
        max_attempts: Shorthand for ``RetryPolicy(max_attempts=...)``.
        policy: Full retry policy (wins over ``max_attempts``).
        timeout: Seconds per request attempt; a timeout counts as a retryable failure.
        signer: Override the signer.
        sleep: Backoff sleep (injectable for tests).
        jitter: Uniform [0, 1) source for full jitter.
        clock: Epoch seconds for request timestamps.
        deadline: A ``monotonic()`` time by which the batch must be done (see :func:`post_many_async`).
        monotonic: The clock ``deadline`` is read against.
        exchange: Send each request through this instead of the pooled aiohttp session (tests).

    Raises:
        ValueError: Bad input; nothing has been posted.
        RuntimeError: Called from inside a running event loop (use :func:`post_many_async`).
    """
    _not_in_a_loop("post_many")
    policy = _policy_of(policy, max_attempts, timeout)
    batch = prepare(
        endpoint,
        items=items,
        concurrency=concurrency,
        region=region,
        credentials=credentials,
        signer=signer,
        clock=clock,
    )
    if batch is None:
        return FanoutOutcome()
    pacing = Pacing(policy, sleep or lazy_asyncio().sleep, jitter, deadline, monotonic)
    return _sync(
        lambda send, p: run(send, batch=batch, concurrency=concurrency, pacing=p),
        exchange=exchange,
        concurrency=concurrency,
        timeout=timeout,
        pacing=pacing,
    )


def post_in_order(
    endpoint: str,
    connection_id: str,
    payloads: Iterable[bytes],
    *,
    deadline: float | None = None,
    exchange: Exchange | None = None,
    credentials: Any = None,
    region: str | None = None,
    policy: RetryPolicy | None = None,
    timeout: float = ATTEMPT_TIMEOUT_S,
    sleep: Sleep | None = None,
) -> FanoutOutcome:
    """Post ``payloads`` to one connection one after another (a recovery replay keeps its order).

    Each post gets the usual retries; the first one that is not delivered (gone, failed, the
    deadline) ends the sequence, so the connection never receives a later frame without an
    earlier one. ``delivered`` then holds the id once per frame posted.

    Raises:
        ValueError: Bad input; nothing has been posted.
        RuntimeError: Called from inside a running event loop.
    """
    _not_in_a_loop("post_in_order")
    policy = _policy_of(policy, None, timeout)
    batch = prepare(
        endpoint,
        items=[(connection_id, payload) for payload in payloads],
        concurrency=1,
        region=region,
        credentials=credentials,
        signer=None,
        clock=time.time,
        unique=False,
    )
    if batch is None:
        return FanoutOutcome()
    pacing = Pacing(policy, sleep or lazy_asyncio().sleep, random.random, deadline, time.monotonic)
    return _sync(
        lambda send, p: run_in_order(send, batch=batch, pacing=p),
        exchange=exchange,
        concurrency=1,
        timeout=timeout,
        pacing=pacing,
    )


def delete_connection(
    endpoint: str,
    connection_id: str,
    *,
    exchange: Exchange | None = None,
    credentials: Any = None,
    region: str | None = None,
    policy: RetryPolicy | None = None,
    timeout: float = ATTEMPT_TIMEOUT_S,
    sleep: Sleep | None = None,
    deadline: float | None = None,
) -> FanoutOutcome:
    """Close one connection (``DELETE @connections/{id}``); a connection already gone counts as ``gone``.

    Raises:
        ValueError: Bad input; nothing was sent.
        RuntimeError: Called from inside a running event loop.
    """
    _not_in_a_loop("delete_connection")
    batch = prepare(
        endpoint,
        items=[(connection_id, b"")],
        concurrency=1,
        region=region,
        credentials=credentials,
        signer=None,
        clock=time.time,
    )
    assert batch is not None
    pacing = Pacing(
        _policy_of(policy, None, timeout),
        sleep or lazy_asyncio().sleep,
        random.random,
        deadline,
        time.monotonic,
    )

    async def run(send: Exchange, p: Pacing) -> FanoutOutcome:
        engine = Engine(send, endpoint=batch.endpoint, signer=batch.signer, pacing=p)
        await engine.deliver(connection_id, b"", method="DELETE")
        return engine.outcome

    return _sync(run, exchange=exchange, concurrency=1, timeout=timeout, pacing=pacing)


def close() -> None:
    """Close this thread's cached session and event loop (a later post opens new ones)."""
    runner: _Runner | None = getattr(_local, "runner", None)
    _local.runner = None
    if runner is not None and runner.pid == os.getpid() and not runner.loop.is_closed():
        runner.close()
