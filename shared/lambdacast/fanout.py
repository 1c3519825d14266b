"""Broadcast engine: post one frame to every subscriber, page by page, with bounded concurrency.

The engine is written against two small interfaces so the transport can change (issue 6 brings
an async HTTP engine) without touching the policy:

* :class:`Transport` posts one frame to one connection and raises
  :class:`~lambdacast.errors.ConnectionGone` (410) or :class:`~lambdacast.errors.DeliveryFailed`
  (retries exhausted); :class:`lambdacast.gateway.ManagementGateway` is one.
* ``on_gone`` removes a gone connection's rows (``ChannelStore.remove_connection``).

Policy: a 410 removes *that* recipient's rows and the broadcast goes on; any failure to one
recipient is counted, logged and never raised. :meth:`ThreadedFanout.broadcast` never raises
for a recipient's sake.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, Protocol

from lambdacast.errors import ConnectionGone

log = logging.getLogger(__name__)

#: Seconds of the invocation kept back after a fan-out's deadline: posting the ack, presence
#: announcements and the metrics flush still have to fit before the Lambda timeout.
DEADLINE_MARGIN_S: Final = 4.0


def deadline_for(context: object, *, margin_s: float = DEADLINE_MARGIN_S) -> float | None:
    """A ``time.monotonic()`` deadline: the Lambda context's remaining time from now, less ``margin_s``.

    Returns:
        ``None`` when ``context`` cannot tell its remaining time (no deadline then).
    """
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return time.monotonic() + int(remaining()) / 1000 - margin_s


class Transport(Protocol):
    """Posts one frame to one connection."""

    def post(self, connection_id: str, data: bytes) -> int:
        """Post ``data``; return the retries it took; raise ConnectionGone or DeliveryFailed."""
        ...


class Broadcaster(Protocol):
    """Anything that can fan a frame out to pages of recipients."""

    def broadcast(
        self,
        pages: Iterable[Sequence[str]],
        data: bytes,
        *,
        skip: frozenset[str] = frozenset(),
        deadline: float | None = None,
    ) -> FanoutResult:
        """Post ``data`` to every recipient in ``pages`` except those in ``skip``.

        No post starts after ``deadline`` (a ``time.monotonic()`` time); recipients cut by it
        are counted in ``failed``.
        """
        ...


@dataclass(slots=True)
class FanoutResult:
    """What one broadcast did.

    Attributes:
        delivered: Posts that succeeded.
        gone: Connection ids that answered 410 (their rows were removed).
        failed: Connection ids whose post failed for good (retries exhausted or refused).
        retries: Retries spent across all posts.
        recipients: Recipients attempted (``skip`` excluded).
        duration_ms: Wall time of the broadcast.
        queued: Recipients handed to the fan-out queue instead (``lambdacast.queue_fanout``);
            counted in ``recipients``, not in ``delivered``.
    """

    delivered: int = 0
    gone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    retries: int = 0
    recipients: int = 0
    duration_ms: float = 0.0
    queued: int = 0


class ThreadedFanout:
    """A :class:`Broadcaster` over a thread pool of ``concurrency`` workers.

    At most ``concurrency`` posts are in flight; the next Query page is read while posts of
    the current one are still running. The pool lives as long as the engine (one per container).

    Args:
        transport: Posts one frame.
        concurrency: Posts in flight at once; match the HTTP pool size.
        on_gone: Called with a connection id that answered 410, to remove its rows.
    """

    def __init__(self, transport: Transport, *, concurrency: int, on_gone: Callable[[str], object]) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.transport = transport
        self.concurrency = concurrency
        self.on_gone = on_gone
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fanout")

    def broadcast(
        self,
        pages: Iterable[Sequence[str]],
        data: bytes,
        *,
        skip: frozenset[str] = frozenset(),
        deadline: float | None = None,
    ) -> FanoutResult:
        """Post ``data`` to every recipient in ``pages`` except those in ``skip``.

        Args:
            pages: Pages of connection ids (read lazily, one at a time).
            data: The frame, UTF-8 encoded.
            skip: Connection ids not to post to (the publisher, unless it asked for echo).
            deadline: A ``time.monotonic()`` time after which no post starts and no page is read:
                the recipients not yet posted are counted failed. Posts already in flight finish
                (the transport's own timeouts bound them).

        Returns:
            The counts. Failures to recipients are counted, never raised.

        Raises:
            Exception: Only what reading ``pages`` raised (after the started posts finished).
        """
        started = time.perf_counter()
        result = FanoutResult()
        lock = threading.Lock()
        slots = threading.BoundedSemaphore(self.concurrency)
        futures: list[Future[None]] = []

        def late() -> bool:
            return deadline is not None and time.monotonic() >= deadline

        def deliver(connection_id: str) -> None:
            try:
                if late():
                    with lock:
                        result.failed.append(connection_id)
                    return
                retries = self.transport.post(connection_id, data)
            except ConnectionGone:
                with lock:
                    result.gone.append(connection_id)
                self._cleanup(connection_id)
            except Exception as exc:
                # One line per failure, no traceback: a mass failure must not flood the logs.
                log.warning("fan-out post to %s failed: %s", connection_id, exc)
                with lock:
                    result.failed.append(connection_id)
            else:
                with lock:
                    result.delivered += 1
                    result.retries += retries
            finally:
                slots.release()

        try:
            for page in pages:
                if late():
                    log.warning("fan-out deadline reached; the remaining subscriber pages are not read")
                    break
                for connection_id in page:
                    if connection_id in skip:
                        continue
                    result.recipients += 1
                    slots.acquire()
                    futures.append(self._pool.submit(deliver, connection_id))
        finally:
            # Even if reading a page failed, wait for the posts already under way.
            for future in futures:
                future.result()
        result.duration_ms = (time.perf_counter() - started) * 1000
        return result

    def _cleanup(self, connection_id: str) -> None:
        try:
            self.on_gone(connection_id)
        except Exception:
            # Its rows stay until the TTL or the next 410 removes them; the broadcast goes on.
            log.warning("cleanup of gone connection %s failed", connection_id, exc_info=True)

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=True)
