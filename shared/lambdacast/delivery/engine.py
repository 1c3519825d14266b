"""The ``@connections`` delivery engine: one batch of signed requests, settled per recipient.

boto3's ``post_to_connection`` spends most of a millisecond of CPU per call building, signing
and parsing a request through its generic machinery. This engine sends the same requests with
a cached signer (:mod:`lambdacast.delivery.sigv4`) through an :data:`~lambdacast.delivery.exchange.Exchange`,
from ``concurrency`` coroutines sharing one work list, and applies the delivery semantics of
:mod:`lambdacast.delivery.policy`. It never raises for a per-recipient failure: every id ends
up in exactly one of ``delivered``, ``gone`` or ``failed``.

Delivery is at-least-once only where HTTP makes it ambiguous: a timeout or a dropped connection
after the request was sent is retried like a 5xx, as boto3 does, so that recipient may see the
message twice (clients drop a repeated ``(epoch, seq)``). Every other recipient receives it
exactly once.

Handlers call the synchronous entry points of :mod:`lambdacast.delivery.transport`; code
already inside an event loop awaits :func:`post_many_async`.

``aiohttp`` and botocore are imported on the first request, not at module load.
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lambdacast.delivery.exchange import Exchange, exchange_of
from lambdacast.delivery.policy import RetryPolicy, Verdict, classify, describe
from lambdacast.delivery.sigv4 import (
    Credentials,
    Endpoint,
    FastSigner,
    Signer,
    payload_hash,
    region_from_endpoint,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "Batch",
    "Engine",
    "FanoutOutcome",
    "Pacing",
    "Sleep",
    "lazy_asyncio",
    "post_many_async",
    "prepare",
    "run",
    "run_in_order",
]


Sleep = Callable[[float], Awaitable[None]]


def lazy_asyncio() -> Any:
    """asyncio, imported on first use: it costs ~25 ms of a handler's cold start otherwise."""
    import asyncio  # noqa: PLC0415 - lazy on purpose

    return asyncio


_BAD_IDS = frozenset({"", ".", ".."})


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
    send = exchange_of(session, exchange)
    pacing = Pacing(policy or RetryPolicy(), sleep or lazy_asyncio().sleep, jitter, deadline, monotonic)
    return await run(send, batch=batch, concurrency=concurrency, pacing=pacing)


@dataclass(frozen=True, slots=True)
class Batch:
    """A validated batch: where to post, what, and the signer for it."""

    endpoint: Endpoint
    items: list[tuple[str, bytes]]
    signer: Signer


@dataclass(frozen=True, slots=True)
class Pacing:
    """When to try again, and when to stop trying."""

    policy: RetryPolicy
    sleep: Sleep
    jitter: Callable[[], float]
    deadline: float | None
    monotonic: Callable[[], float]

    def time_left(self) -> float | None:
        """Seconds until the deadline (negative once past it); ``None`` without a deadline."""
        return None if self.deadline is None else self.deadline - self.monotonic()


def prepare(
    endpoint: str,
    *,
    items: Iterable[tuple[str, bytes]],
    concurrency: int,
    region: str | None,
    credentials: Any,
    signer: Signer | None,
    clock: Callable[[], float],
    unique: bool = True,
) -> Batch | None:
    """Validate everything before the first post; None when there is nothing to send."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    checked = _check_items(items, unique=unique)
    target = Endpoint.parse(endpoint)
    if not checked:
        return None
    if signer is None:
        signer = FastSigner(_freeze(credentials), _resolve_region(endpoint, region), clock=clock)
    return Batch(target, checked, signer)


async def run(send: Exchange, *, batch: Batch, concurrency: int, pacing: Pacing) -> FanoutOutcome:
    """Post the batch's items from at most ``concurrency`` coroutines sharing one work list."""
    checked = batch.items
    engine = Engine(send, endpoint=batch.endpoint, signer=batch.signer, pacing=pacing)
    work = iter(checked)
    await lazy_asyncio().gather(*(engine.worker(work) for _ in range(min(concurrency, len(checked)))))
    return engine.outcome


async def run_in_order(send: Exchange, *, batch: Batch, pacing: Pacing) -> FanoutOutcome:
    """Post the batch's items one after another; stop at the first that is not delivered."""
    engine = Engine(send, endpoint=batch.endpoint, signer=batch.signer, pacing=pacing)
    for connection_id, payload in batch.items:
        verdict = await engine.deliver(connection_id, bytes(payload))
        if verdict is not Verdict.DELIVERED:
            break
    return engine.outcome


class Engine:
    """One batch: shared state of the workers."""

    def __init__(self, send: Exchange, *, endpoint: Endpoint, signer: Signer, pacing: Pacing) -> None:
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
        """Deliver items taken from ``work`` until it is exhausted."""
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
