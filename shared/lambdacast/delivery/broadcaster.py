"""The fan-out engine every function posts through: pages of subscribers in, settled recipients out.

:class:`DirectBroadcaster` reads subscriber pages one at a time and posts each page as one batch
through :mod:`lambdacast.delivery.transport` under the invocation's deadline; connections found
gone (410) are cleaned up afterwards, a few at a time. The same object posts a recovery replay
to one connection in order and closes connections for the admin API, so tests (which pass an
in-memory ``exchange``) and production run one engine.

Policy: a 410 removes *that* recipient's rows and the broadcast goes on; any failure to one
recipient is counted, logged and never raised. Only what reading ``pages`` raises propagates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from lambdacast.delivery import transport
from lambdacast.delivery.sigv4 import Endpoint

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

#: Gone connections cleaned up at once after a broadcast (each cleanup is a few DynamoDB calls).
CLEANUP_WORKERS: Final = 8

#: Seconds of the invocation kept back after a fan-out's deadline: the reply, presence
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


@dataclass(slots=True)
class FanoutResult:
    """What one broadcast did.

    Attributes:
        delivered: Posts that succeeded.
        gone: Connection ids that answered 410 (their rows were removed).
        failed: Connection ids whose post failed for good (retries exhausted, refused, or cut by
            the deadline).
        retries: Retries spent across all posts.
        recipients: Recipients attempted (``skip`` excluded).
        duration_ms: Wall time of the broadcast.
        queued: Recipients handed to the fan-out queue instead (:mod:`lambdacast.delivery.queue`);
            counted in ``recipients``, not in ``delivered``.
    """

    delivered: int = 0
    gone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    retries: int = 0
    recipients: int = 0
    duration_ms: float = 0.0
    queued: int = 0


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


@dataclass(frozen=True, slots=True)
class Sequenced:
    """What posting frames to one connection in order did.

    Attributes:
        posted: Frames delivered (a prefix of those given).
        gone: The connection answered 410.
    """

    posted: int
    gone: bool = False


class DirectBroadcaster:
    """The :class:`Broadcaster` that posts from this function, through the signed transport.

    Pages are read one at a time and each page is posted as one batch; an id seen on an earlier
    page is not posted again; ``on_gone`` runs for every 410 (after the posts,
    :data:`CLEANUP_WORKERS` at a time, within the deadline; a failure is logged and the broadcast
    goes on); a batch that cannot be sent at all (no credentials, say) counts its recipients as
    failed and is logged.

    Args:
        endpoint: The management API base URL.
        concurrency: Posts in flight at most.
        on_gone: Removes a gone connection's rows.
        post: Keyword arguments for the transport (``exchange``, ``region``, ``credentials``...);
            its ``monotonic`` clock, if given, is also the one this engine reads deadlines against.
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
        self._monotonic: Callable[[], float] = post.get("monotonic", time.monotonic)
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
        started = time.perf_counter()
        result = FanoutResult()
        seen = set(skip)
        post = self._post if deadline is None else {**self._post, "deadline": deadline}
        for page in pages:
            if deadline is not None and self._monotonic() >= deadline:
                log.warning("fan-out deadline reached; the remaining subscriber pages are not read")
                break
            fresh = [cid for cid in dict.fromkeys(page) if cid not in seen]
            seen.update(fresh)
            if not fresh:
                continue
            result.recipients += len(fresh)
            try:
                outcome = transport.post_many(
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

    def post_in_order(
        self, connection_id: str, frames: Sequence[bytes], *, deadline: float | None = None
    ) -> Sequenced:
        """Post ``frames`` to one connection in order; stop at the first that is not delivered.

        A 410 runs ``on_gone`` for the connection. Never raises for the recipient's sake.
        """
        if not frames:
            return Sequenced(posted=0)
        keys = {k: v for k, v in self._post.items() if k in _SEQUENCE_OPTIONS}
        try:
            outcome = transport.post_in_order(self.endpoint, connection_id, frames, deadline=deadline, **keys)
        except Exception:
            log.exception("posting %d frames to %s failed", len(frames), connection_id)
            return Sequenced(posted=0)
        if outcome.failed:
            log.warning("posting in order to %s stopped: %s", connection_id, outcome.failed[connection_id])
        if outcome.gone:
            self._clean_one(connection_id)
        return Sequenced(posted=len(outcome.delivered), gone=bool(outcome.gone))

    def disconnect(self, connection_id: str, *, deadline: float | None = None) -> bool:
        """Close a connection through ``DELETE @connections/{id}`` (API Gateway then fires ``$disconnect``).

        Returns:
            Whether the connection was open (``False``: it was already gone).

        Raises:
            RuntimeError: The management API refused or could not be reached after retries.
        """
        keys = {k: v for k, v in self._post.items() if k in _SEQUENCE_OPTIONS}
        outcome = transport.delete_connection(self.endpoint, connection_id, deadline=deadline, **keys)
        if outcome.failed:
            raise RuntimeError(f"could not close {connection_id}: {outcome.failed[connection_id]}")
        return bool(outcome.delivered)

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
        left = None if deadline is None else max(0.0, deadline - self._monotonic())
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
        transport.close()
        if self._cleaner is not None:
            self._cleaner.shutdown(wait=True)
            self._cleaner = None


#: The transport options that also apply to an in-order sequence or a delete.
_SEQUENCE_OPTIONS: Final = frozenset({"exchange", "credentials", "region", "policy", "timeout", "sleep"})
