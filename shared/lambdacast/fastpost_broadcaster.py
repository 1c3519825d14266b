"""The core's ``Broadcaster`` (:mod:`lambdacast.fanout`) over the fast transport (:mod:`lambdacast.fastpost`).

Pages of subscribers are posted as batches with :func:`lambdacast.fastpost.post_many` under the
fan-out's deadline; the connections found gone (410) are cleaned up afterwards, a few at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from lambdacast import fastpost
from lambdacast.fastpost_sigv4 import Endpoint

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from lambdacast.fanout import FanoutResult

log = logging.getLogger(__name__)

#: Gone connections cleaned up at once after a broadcast (each cleanup is a few DynamoDB calls).
CLEANUP_WORKERS: Final = 8


class FastBroadcaster:
    """The core's ``Broadcaster`` (:mod:`lambdacast.fanout`) over :func:`lambdacast.fastpost.post_many`.

    A drop-in for ``ThreadedFanout``: pages are read one at a time and each page is posted as
    one batch; an id seen on an earlier page is not posted again; ``on_gone`` runs for every
    410 (after the posts, :data:`CLEANUP_WORKERS` at a time, within the deadline; a failure is
    logged and the broadcast goes on); a batch that cannot be sent at all
    (no credentials, say) counts its recipients as failed and is logged. Never raises for a
    recipient's sake; only what reading ``pages`` raises propagates.

    Args:
        endpoint: The management API base URL.
        concurrency: Posts in flight at most.
        on_gone: Removes a gone connection's rows.
        post: Keyword arguments for :func:`lambdacast.fastpost.post_many` (``region``, ``credentials``...).
    """

    def __init__(
        self, endpoint: str, *, concurrency: int, on_gone: Callable[[str], object], **post: Any
    ) -> None:
        Endpoint.parse(endpoint)
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.endpoint = endpoint
        self.concurrency = concurrency
        self.on_gone = on_gone
        self._post = post
        self._cleaner: ThreadPoolExecutor | None = None

    def broadcast(
        self,
        pages: Iterable[Sequence[str]],
        data: bytes,
        *,
        skip: frozenset[str] = frozenset(),
        deadline: float | None = None,
    ) -> FanoutResult:
        """Post ``data`` to every recipient in ``pages`` except those in ``skip``.

        ``deadline`` (a ``time.monotonic()`` time) cuts the posts in flight and stops reading
        pages; recipients not posted by then are counted failed.
        """
        from lambdacast.fanout import FanoutResult  # noqa: PLC0415 - the core's type; no import cycle

        started = time.perf_counter()
        result = FanoutResult()
        seen = set(skip)
        post = self._post if deadline is None else {**self._post, "deadline": deadline}
        for page in pages:
            if deadline is not None and time.monotonic() >= deadline:
                log.warning("fan-out deadline reached; the remaining subscriber pages are not read")
                break
            fresh = [cid for cid in dict.fromkeys(page) if cid not in seen]
            seen.update(fresh)
            if not fresh:
                continue
            result.recipients += len(fresh)
            try:
                outcome = fastpost.post_many(
                    self.endpoint, [(cid, data) for cid in fresh], concurrency=self.concurrency, **post
                )
            except Exception:
                log.exception("fan-out batch of %d posts could not be sent", len(fresh))
                result.failed.extend(fresh)
                continue
            result.delivered += len(outcome.delivered)
            result.retries += outcome.retries
            result.failed.extend(outcome.failed)
            if outcome.failed:
                log.warning(
                    "fan-out: %d posts failed, e.g. %s",
                    len(outcome.failed),
                    next(iter(outcome.failed.items())),
                )
            result.gone.extend(outcome.gone)
        self._clean_up(result.gone, deadline)
        result.duration_ms = (time.perf_counter() - started) * 1000
        return result

    def _clean_up(self, gone: list[str], deadline: float | None) -> None:
        """Run ``on_gone`` for each gone id, :data:`CLEANUP_WORKERS` at a time, until ``deadline``.

        A failed cleanup is logged, never raised; one not finished by the deadline is left
        running or, not started, dropped: the rows' TTL (or the next 410) removes them.
        """
        if not gone:
            return
        from concurrent.futures import ThreadPoolExecutor, wait  # noqa: PLC0415 - only when rows are stale

        if self._cleaner is None:
            self._cleaner = ThreadPoolExecutor(max_workers=CLEANUP_WORKERS, thread_name_prefix="gone-cleanup")
        futures = [self._cleaner.submit(self._clean_one, connection_id) for connection_id in gone]
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        _, pending = wait(futures, timeout=left)
        if pending:
            dropped = sum(1 for future in pending if future.cancel())
            log.warning(
                "fan-out deadline reached with %d gone-connection cleanups unfinished (%d not started); "
                "their rows expire by TTL",
                len(pending),
                dropped,
            )

    def _clean_one(self, connection_id: str) -> None:
        try:
            self.on_gone(connection_id)
        except Exception:
            log.warning("cleanup of gone connection %s failed", connection_id, exc_info=True)

    def close(self) -> None:
        """Release this thread's pooled session and loop, and the cleanup threads."""
        fastpost.close()
        if self._cleaner is not None:
            self._cleaner.shutdown(wait=True)
            self._cleaner = None
