"""The ``@connections`` transport: many SigV4-signed requests over one pooled aiohttp session.

boto3's ``post_to_connection`` spends most of a millisecond of CPU per call building, signing
and parsing a request through its generic machinery. This engine sends the same requests with
a cached signer (:mod:`lambdacast.delivery.sigv4`) over one ``aiohttp`` connection pool, from
``concurrency`` coroutines sharing one work list, and applies the delivery semantics of
:mod:`lambdacast.delivery.policy`. It never raises for a per-recipient failure: every id ends
up in exactly one of ``delivered``, ``gone`` or ``failed``.

Every post the backend makes goes through here: fan-out batches (:func:`post_many`), a
recovery replay to one connection in order (:func:`post_in_order`) and closing a connection
(:func:`delete_connection`). The last hop (one HTTP request and its answer) is an
:data:`Exchange`; the default sends it with aiohttp, and tests pass an in-memory one, so the
engine they run is the one deployed.

Delivery is at-least-once only where HTTP makes it ambiguous: a timeout or a dropped connection
after the request was sent is retried like a 5xx, as boto3 does, so that recipient may see the
message twice (clients drop a repeated ``(epoch, seq)``). Every other recipient receives it
exactly once.

Warm containers: one event loop and one ``ClientSession`` are kept per thread and reused across
invocations (the pool's TCP/TLS connections survive between invocations when API Gateway keeps
them open; a connection that died while the container was frozen fails its request with a
connection error, which is retried). This is safe because the loop only ever runs inside these
functions on its own thread, and it is rebuilt after a ``fork``. Call :func:`close` to release
it (tests do; Lambda never needs to).

``AWS_CA_BUNDLE`` is honoured as botocore honours it: ``lambdacast local`` hands its workers a
throwaway CA for its ``https://`` management listener.

``aiohttp`` and botocore are imported on the first request, not at module load.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from lambdacast.delivery.policy import RetryPolicy, Verdict, classify, describe
from lambdacast.delivery.sigv4 import (
    BotocoreSigner,
    Credentials,
    Endpoint,
    FastSigner,
    Signer,
    payload_hash,
    region_from_endpoint,
)

if TYPE_CHECKING:
    import asyncio

    import aiohttp


log = logging.getLogger(__name__)

__all__ = [
    "ATTEMPT_TIMEOUT_S",
    "BotocoreSigner",
    "Exchange",
    "FanoutOutcome",
    "FastSigner",
    "Reply",
    "RetryPolicy",
    "close",
    "delete_connection",
    "post_in_order",
    "post_many",
    "post_many_async",
]

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Reply:
    """The management API's answer to one request."""

    status: int
    error_type: str = ""
    body: bytes = b""


class Exchange(Protocol):
    """Sends one signed request and returns the answer.

    Raises ``aiohttp.ClientError``, ``TimeoutError`` or ``OSError`` when no answer came (a
    connection error: retried like a 5xx).
    """

    def __call__(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float | None
    ) -> Awaitable[Reply]:
        """Send ``method url`` with ``headers`` and ``body``; ``timeout`` in seconds, ``None``: default."""
        ...


def _asyncio() -> Any:
    """asyncio, imported on first use: it costs ~25 ms of a handler's cold start otherwise."""
    import asyncio  # noqa: PLC0415 - lazy on purpose

    return asyncio


_BAD_IDS = frozenset({"", ".", ".."})

#: Seconds per request attempt. A healthy post answers in milliseconds; a short timeout keeps one
#: unresponsive endpoint from eating a publish's time (4 attempts x 4 s, and the deadline cuts it).
ATTEMPT_TIMEOUT_S = 4.0


@dataclass(slots=True)
class FanoutOutcome:
    """What happened to each recipient of one batch.

    Attributes:
        delivered: Ids the management API accepted (2xx).
        gone: Ids answered with 410: the caller should delete that connection's rows.
        failed: Id -> reason, after retries ran out or for a non-retryable answer.
        attempts: HTTP requests made in all.
        retries: Of those, how many were retries.
    """

    delivered: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    retries: int = 0


def _check_items(items: Iterable[tuple[str, bytes]], *, unique: bool = True) -> list[tuple[str, bytes]]:
    checked = list(items)
    seen: set[str] = set()
    for connection_id, payload in checked:
        if not isinstance(connection_id, str) or connection_id in _BAD_IDS:
            raise ValueError(
                f"connection id must be a non-empty string other than '.' or '..', got {connection_id!r}"
            )
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise ValueError(f"payload for {connection_id!r} must be bytes, got {type(payload).__name__}")
        if unique and connection_id in seen:
            raise ValueError(
                f"connection id {connection_id!r} appears twice; each recipient at most once per batch"
            )
        seen.add(connection_id)
    return checked


def _resolve_region(endpoint: str, region: str | None) -> str:
    found = (
        region
        or region_from_endpoint(endpoint)
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
    )
    if not found:
        raise ValueError(
            f"no region: pass region=, set AWS_REGION, or use an execute-api endpoint (got {endpoint!r})"
        )
    return found


@functools.cache
def _default_credentials() -> Any:
    """The credential chain of botocore, resolved once per process (it refreshes temporary ones)."""
    import botocore.session  # noqa: PLC0415 - lazy: only when no credentials are passed

    return botocore.session.get_session().get_credentials()


def _freeze(credentials: Any) -> Credentials:
    """Freeze botocore ``Credentials`` (refreshing if due) or accept already-frozen ones."""
    if credentials is None:
        credentials = _default_credentials()
        if credentials is None:
            raise ValueError("no AWS credentials found for signing management API posts")
    frozen = (
        credentials.get_frozen_credentials()
        if hasattr(credentials, "get_frozen_credentials")
        else credentials
    )
    return frozen  # type: ignore[no-any-return]


async def post_many_async(
    endpoint: str,
    items: Iterable[tuple[str, bytes]],
    *,
    session: aiohttp.ClientSession | None = None,
    exchange: Exchange | None = None,
    concurrency: int = 50,
    region: str | None = None,
    credentials: Any = None,
    policy: RetryPolicy | None = None,
    signer: Signer | None = None,
    sleep: Sleep | None = None,
    jitter: Callable[[], float] = random.random,
    clock: Callable[[], float] = time.time,
    deadline: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> FanoutOutcome:
    """Post each ``(connection_id, payload)`` once, at most ``concurrency`` requests in flight.

    Args:
        endpoint: The management API base, e.g. ``https://{api}.execute-api.{region}.amazonaws.com/{stage}``.
        items: Recipients and their bodies; an id may appear only once.
        session: The aiohttp session to send through (its pool should allow ``concurrency``).
        exchange: Sends each request instead of ``session`` (tests pass an in-memory one).
        concurrency: Requests in flight at most.
        region: Signing region; default from the endpoint host or ``AWS_REGION``.
        credentials: botocore credentials (frozen here, once) or any object with
            ``access_key``/``secret_key``/``token``; default: botocore's credential chain.
        policy: Retry policy; default :class:`RetryPolicy`.
        signer: Override the signer (tests, benchmarks); default :class:`FastSigner`.
        sleep: Backoff sleep (injectable for tests); default :func:`asyncio.sleep`.
        jitter: Uniform [0, 1) source for full jitter.
        clock: Epoch seconds for request timestamps.
        deadline: A ``monotonic()`` time by which the batch must be done, e.g. from the Lambda
            context's remaining time minus a margin. No attempt or backoff starts after it, and
            requests in flight are cut at it: those recipients are reported failed instead of
            being lost to the function's timeout.
        monotonic: The clock ``deadline`` is read against (injectable for tests).

    Returns:
        The outcome for every recipient.

    Raises:
        ValueError: Bad input (endpoint, ids, payload types, concurrency, missing region or
            credentials, neither ``session`` nor ``exchange``). Nothing has been posted then.
    """
    batch = _prepare(
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
    send = _exchange_of(session, exchange)
    pacing = _Pacing(policy or RetryPolicy(), sleep or _asyncio().sleep, jitter, deadline, monotonic)
    return await _run(send, batch=batch, concurrency=concurrency, pacing=pacing)


def _exchange_of(session: aiohttp.ClientSession | None, exchange: Exchange | None) -> Exchange:
    if exchange is not None:
        return exchange
    if session is None:
        raise ValueError("pass an aiohttp session or an exchange to send through")
    return _AiohttpExchange(session)


class _AiohttpExchange:
    """The deployed :class:`Exchange`: one request through a pooled aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        import aiohttp  # noqa: PLC0415 - lazy: keeps handler cold start small
        from yarl import URL  # noqa: PLC0415 - ships with aiohttp

        self._session = session
        self._url = URL
        self._timeout = aiohttp.ClientTimeout

    async def __call__(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float | None
    ) -> Reply:
        total = self._session.timeout.total
        limit = self._timeout(total=min(timeout, total or timeout)) if timeout is not None else None
        async with self._session.request(
            method,
            self._url(url, encoded=True),
            data=body if method != "DELETE" else None,
            headers=headers,
            timeout=limit or self._session.timeout,
        ) as resp:
            return Reply(resp.status, resp.headers.get("x-amzn-ErrorType", ""), await resp.read())


@dataclass(frozen=True, slots=True)
class _Batch:
    endpoint: Endpoint
    items: list[tuple[str, bytes]]
    signer: Signer


@dataclass(frozen=True, slots=True)
class _Pacing:
    """When to try again, and when to stop trying."""

    policy: RetryPolicy
    sleep: Sleep
    jitter: Callable[[], float]
    deadline: float | None
    monotonic: Callable[[], float]

    def time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.monotonic()


def _prepare(
    endpoint: str,
    *,
    items: Iterable[tuple[str, bytes]],
    concurrency: int,
    region: str | None,
    credentials: Any,
    signer: Signer | None,
    clock: Callable[[], float],
    unique: bool = True,
) -> _Batch | None:
    """Validate everything before the first post; None when there is nothing to send."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    checked = _check_items(items, unique=unique)
    target = Endpoint.parse(endpoint)
    if not checked:
        return None
    if signer is None:
        signer = FastSigner(_freeze(credentials), _resolve_region(endpoint, region), clock=clock)
    return _Batch(target, checked, signer)


async def _run(send: Exchange, *, batch: _Batch, concurrency: int, pacing: _Pacing) -> FanoutOutcome:
    checked = batch.items
    engine = _Engine(send, endpoint=batch.endpoint, signer=batch.signer, pacing=pacing)
    work = iter(checked)
    await _asyncio().gather(*(engine.worker(work) for _ in range(min(concurrency, len(checked)))))
    return engine.outcome


async def _run_in_order(send: Exchange, *, batch: _Batch, pacing: _Pacing) -> FanoutOutcome:
    """Post the batch's items one after another; stop at the first that is not delivered."""
    engine = _Engine(send, endpoint=batch.endpoint, signer=batch.signer, pacing=pacing)
    for connection_id, payload in batch.items:
        verdict = await engine.deliver(connection_id, bytes(payload))
        if verdict is not Verdict.DELIVERED:
            break
    return engine.outcome


class _Engine:
    """One batch: shared state of the workers."""

    def __init__(self, send: Exchange, *, endpoint: Endpoint, signer: Signer, pacing: _Pacing) -> None:
        import aiohttp  # noqa: PLC0415 - lazy: keeps handler cold start small

        self._send = send
        self._endpoint = endpoint
        self._signer = signer
        self._pacing = pacing
        self._policy = pacing.policy
        self._errors = (aiohttp.ClientError, TimeoutError, OSError)
        self._hashes: dict[bytes, str] = {}
        self.outcome = FanoutOutcome()

    async def worker(self, work: Iterator[tuple[str, bytes]]) -> None:
        # One shared iterator: the event loop is single-threaded, so each item is taken once.
        for connection_id, payload in work:
            await self.deliver(connection_id, bytes(payload))

    async def deliver(self, connection_id: str, payload: bytes, *, method: str = "POST") -> Verdict:
        """Send one request until it is settled; record and return how it ended."""
        url, canonical_path = self._endpoint.target(connection_id)
        body_hash = self._hashes.get(payload)
        if body_hash is None:
            body_hash = self._hashes[payload] = payload_hash(payload)
        outcome, pacing = self.outcome, self._pacing
        attempt, reason = 0, ""
        while True:
            left = pacing.time_left()
            if left is not None and left <= 0:
                outcome.failed[connection_id] = (
                    f"{reason} (deadline reached after {attempt} attempts)"
                    if attempt
                    else "deadline reached before it could be posted"
                )
                return Verdict.FAIL
            attempt += 1
            outcome.attempts += 1
            headers = self._signer.headers(
                self._endpoint, url, canonical_path, payload, body_hash, method=method
            )
            try:
                reply = await self._send(method, url, headers, payload, left)
            except self._errors as exc:
                verdict, reason = Verdict.RETRY, f"connection error: {type(exc).__name__}: {exc}".rstrip(": ")
            else:
                verdict = classify(reply.status, reply.error_type)
                if verdict is not Verdict.DELIVERED:
                    reason = describe(reply.status, reply.error_type, reply.body)
            if verdict is Verdict.DELIVERED:
                outcome.delivered.append(connection_id)
                return verdict
            if verdict is Verdict.GONE:
                outcome.gone.append(connection_id)
                return verdict
            if verdict is Verdict.RETRY and attempt < self._policy.max_attempts:
                delay = self._policy.delay(attempt, pacing.jitter())
                left = pacing.time_left()
                if left is not None and delay >= left:
                    outcome.failed[connection_id] = f"{reason} (deadline reached after {attempt} attempts)"
                    return Verdict.FAIL
                outcome.retries += 1
                await pacing.sleep(delay)
                continue
            if verdict is Verdict.RETRY:
                reason = f"{reason} (gave up after {attempt} attempts)"
            outcome.failed[connection_id] = reason
            return Verdict.FAIL


class _Runner:
    """A private event loop and pooled session, kept per thread for warm invocations."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop: asyncio.AbstractEventLoop = _asyncio().new_event_loop()
        self.session: aiohttp.ClientSession | None = None
        self.key: tuple[int, float, str] = (0, 0.0, "")

    def session_for(self, concurrency: int, timeout: float) -> aiohttp.ClientSession:
        key = (concurrency, timeout, os.environ.get("AWS_CA_BUNDLE", ""))
        if self.session is not None and self.key == key:
            return self.session
        self.close_session()
        self.session = self.loop.run_until_complete(_open_session(concurrency, timeout, key[2]))
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


async def _open_session(concurrency: int, timeout: float, ca_bundle: str = "") -> aiohttp.ClientSession:
    """A pooled session; ``ca_bundle`` (``AWS_CA_BUNDLE``, as botocore honours it) adds trusted CAs."""
    import ssl  # noqa: PLC0415 - lazy, like aiohttp itself

    import aiohttp  # noqa: PLC0415 - lazy: keeps handler cold start small

    tls: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
    connector = aiohttp.TCPConnector(
        limit=concurrency, limit_per_host=concurrency, ttl_dns_cache=300, ssl=tls
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout),
        skip_auto_headers=("User-Agent",),
        auto_decompress=False,
    )


_local = threading.local()


def _runner() -> _Runner:
    runner: _Runner | None = getattr(_local, "runner", None)
    if runner is not None and runner.pid != os.getpid():
        runner = None  # inherited through fork: the loop and sockets belong to the parent
    if runner is None or runner.loop.is_closed():
        runner = _local.runner = _Runner()
    return runner


def _not_in_a_loop(name: str) -> None:
    try:
        _asyncio().get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{name}() cannot run inside a running event loop; await post_many_async() instead")


def _sync(
    run: Callable[[Exchange, _Pacing], Awaitable[FanoutOutcome]],
    *,
    exchange: Exchange | None,
    concurrency: int,
    timeout: float,
    pacing: _Pacing,
) -> FanoutOutcome:
    """Run one engine coroutine on this thread's loop, through its pooled session unless ``exchange``."""
    runner = _runner()
    send = exchange if exchange is not None else _AiohttpExchange(runner.session_for(concurrency, timeout))
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
    batch = _prepare(
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
    pacing = _Pacing(policy, sleep or _asyncio().sleep, jitter, deadline, monotonic)
    return _sync(
        lambda send, p: _run(send, batch=batch, concurrency=concurrency, pacing=p),
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
    batch = _prepare(
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
    pacing = _Pacing(policy, sleep or _asyncio().sleep, random.random, deadline, time.monotonic)
    return _sync(
        lambda send, p: _run_in_order(send, batch=batch, pacing=p),
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
    batch = _prepare(
        endpoint,
        items=[(connection_id, b"")],
        concurrency=1,
        region=region,
        credentials=credentials,
        signer=None,
        clock=time.time,
    )
    assert batch is not None
    pacing = _Pacing(
        _policy_of(policy, None, timeout), sleep or _asyncio().sleep, random.random, deadline, time.monotonic
    )

    async def run(send: Exchange, p: _Pacing) -> FanoutOutcome:
        engine = _Engine(send, endpoint=batch.endpoint, signer=batch.signer, pacing=p)
        await engine.deliver(connection_id, b"", method="DELETE")
        return engine.outcome

    return _sync(run, exchange=exchange, concurrency=1, timeout=timeout, pacing=pacing)


def close() -> None:
    """Close this thread's cached session and event loop (a later post opens new ones)."""
    runner: _Runner | None = getattr(_local, "runner", None)
    _local.runner = None
    if runner is not None and runner.pid == os.getpid() and not runner.loop.is_closed():
        runner.close()
