"""``FanoutFunction``'s logic: post one queued batch, exactly once per recipient where SQS allows it.

For each SQS record (a :class:`~lambdacast.delivery.queue.FanoutBatch`):

1. If the batch's *done marker* exists (``FANOUT#<channel>#<seq>`` / ``<batch id>``), the batch was
   handled by an earlier receive of the same record: nothing is posted again.
2. The frame is posted to the batch's recipients through the fast engine (its own bounded
   429/5xx retries; a deadline from the invocation's remaining time).
3. A 410 removes that connection through :class:`~lambdacast.departures.Departures` (rows and
   presence ``member_left``, announced after the batch like on the live path).
4. Recipients that still failed are re-enqueued as a smaller batch with ``attempt + 1`` (only
   them: those delivered are not posted again). After :data:`MAX_ATTEMPTS` they are given up,
   logged and counted; clients see the seq gap and recover from the history.
5. The done marker is written (conditional put, TTL). If re-enqueueing failed, the marker is not
   written and the record is reported as a batch item failure, so SQS delivers it again.

What can still deliver twice is documented in ``docs/fanout.md``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from lambdacast.delivery.queue import FanoutBatch, QueueSender

if TYPE_CHECKING:
    from lambdacast.channels import ChannelStore
    from lambdacast.delivery.transport import FanoutOutcome
    from lambdacast.departures import Departures

log = logging.getLogger(__name__)

#: Queue attempts of a batch's recipients (the first post included) before they are given up.
MAX_ATTEMPTS: Final = 5
#: Gone connections removed in parallel (their rows; presence departures are queued, thread-safe).
CLEANUP_WORKERS: Final = 8
#: How long a done marker lives: longer than SQS could redeliver a record (retention + DLQ).
MARKER_TTL_SECONDS: Final = 2 * 24 * 3600

#: ``post(endpoint, recipients, frame, deadline) -> FanoutOutcome``.
Poster = Callable[[str, Sequence[str], bytes, float | None], "FanoutOutcome"]


class RequeueFailed(RuntimeError):
    """Recipients still need the frame and could not be re-enqueued: SQS must deliver the record again."""


@dataclass(slots=True)
class BatchReport:
    """What handling one record did.

    Attributes:
        duplicate: The batch was already done (a redelivered record): nothing was posted.
        delivered: Recipients posted to.
        gone: Recipients that answered 410 (removed).
        requeued: Recipients re-enqueued for another attempt.
        given_up: Recipients that failed on the last attempt.
    """

    duplicate: bool = False
    delivered: int = 0
    gone: list[str] = field(default_factory=list)
    requeued: int = 0
    given_up: list[str] = field(default_factory=list)


class DoneMarkers:
    """The "batch done" items in the table (``pk`` ``FANOUT#<channel>#<seq>``, ``sk`` the batch id).

    Args:
        store: The channel store (its client and table).
        clock: Epoch seconds (for the TTL).
    """

    def __init__(self, store: ChannelStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    @staticmethod
    def key(batch: FanoutBatch) -> dict[str, Any]:
        """The marker's key."""
        return {"pk": {"S": f"FANOUT#{batch.channel}#{batch.seq}"}, "sk": {"S": batch.batch_id}}

    def is_done(self, batch: FanoutBatch) -> bool:
        """Whether the batch was marked done (strongly consistent read)."""
        reply = self.store.client.get_item(
            TableName=self.store.table_name, Key=self.key(batch), ConsistentRead=True
        )
        return "Item" in reply

    def mark_done(self, batch: FanoutBatch) -> None:
        """Write the marker once (a second write of the same marker is a no-op)."""
        item = {**self.key(batch), "ttl": {"N": str(int(self.clock()) + MARKER_TTL_SECONDS)}}
        try:
            self.store.client.put_item(
                TableName=self.store.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except self.store.client.exceptions.ConditionalCheckFailedException:
            log.info("batch %s was already marked done", batch.batch_id)


def _remove_gone(gone: list[str], departures: Departures) -> None:
    """Remove gone connections, :data:`CLEANUP_WORKERS` at a time (each is a few table calls)."""
    if not gone:
        return

    def remove(cid: str) -> None:
        try:
            departures.remove(cid)
        except Exception:
            log.warning("cleanup of gone connection %s failed; it expires by TTL", cid, exc_info=True)

    with ThreadPoolExecutor(max_workers=min(CLEANUP_WORKERS, len(gone)), thread_name_prefix="gone") as pool:
        list(pool.map(remove, gone))


def handle_batch(
    batch: FanoutBatch,
    *,
    post: Poster,
    markers: DoneMarkers,
    departures: Departures,
    sender: QueueSender,
    deadline: float | None = None,
) -> BatchReport:
    """Post one batch and settle every recipient (delivered, gone, re-enqueued or given up).

    Args:
        batch: The batch.
        post: Posts the frame to recipients (the fast engine in the deployed function).
        markers: The done markers.
        departures: Removes gone connections and queues their presence changes.
        sender: Re-enqueues the failed remainder.
        deadline: ``time.monotonic()`` by which posting must stop (the rest count as failed).

    Returns:
        What was done.

    Raises:
        RequeueFailed: Failed recipients could not be re-enqueued (the record must be retried).
        Exception: What reading or writing the marker raised (the record is retried; nothing or
            everything posted, see docs/fanout.md).
    """
    report = BatchReport()
    if markers.is_done(batch):
        log.info("batch %s of %s #%d already done; skipped", batch.batch_id, batch.channel, batch.seq)
        report.duplicate = True
        return report
    outcome = post(batch.endpoint, batch.recipients, batch.frame.encode(), deadline)
    report.delivered = len(outcome.delivered)
    report.gone = list(outcome.gone)
    _remove_gone(report.gone, departures)
    failed = [cid for cid in batch.recipients if cid in outcome.failed]
    if failed and batch.attempt + 1 < MAX_ATTEMPTS:
        if sender.send([batch.remainder(failed)]):
            raise RequeueFailed(
                f"{len(failed)} recipients of batch {batch.batch_id} could not be re-enqueued"
            )
        report.requeued = len(failed)
    elif failed:
        report.given_up = failed
        log.error(
            "giving up on %d recipients of %s #%d after %d attempts, e.g. %s",
            len(failed),
            batch.channel,
            batch.seq,
            MAX_ATTEMPTS,
            outcome.failed[failed[0]],
        )
    markers.mark_done(batch)
    return report


#: Seconds kept back from the invocation's remaining time: recipients not posted by then are
#: re-enqueued instead of being lost to the function's timeout.
DEADLINE_MARGIN_S: Final = 5.0


def fast_poster(concurrency: int) -> Poster:
    """The deployed poster: :func:`lambdacast.delivery.transport.post_many` with ``concurrency`` in flight."""

    def post(endpoint: str, recipients: Sequence[str], data: bytes, deadline: float | None) -> FanoutOutcome:
        from lambdacast.delivery import transport  # noqa: PLC0415 - lazy, like the engine's own imports

        return transport.post_many(
            endpoint, [(cid, data) for cid in recipients], concurrency=concurrency, deadline=deadline
        )

    return post


def on_fanout_event(event: dict[str, Any], context: Any, *, post: Poster | None = None) -> dict[str, Any]:
    """``FanoutFunction``: handle each SQS record; report the ones SQS must deliver again.

    Args:
        event: The SQS event.
        context: The Lambda context (remaining time sets the posting deadline).
        post: Override the poster (tests); by default the fast engine.

    Returns:
        ``{"batchItemFailures": [...]}`` (Powertools' partial batch response).
    """
    from aws_lambda_powertools.utilities.batch import (  # noqa: PLC0415 - only this function needs it
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    from lambdacast import observability as obs  # noqa: PLC0415 - keeps the module import light
    from lambdacast.departures import announce  # noqa: PLC0415
    from lambdacast.handlers import get_runtime  # noqa: PLC0415 - the handlers' per-container runtime

    runtime = get_runtime()
    poster = post or fast_poster(runtime.settings.fanout_concurrency)
    markers = DoneMarkers(runtime.store)
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_S
    endpoints: set[str] = set()

    def record_handler(record: Any) -> None:
        batch = FanoutBatch.from_body(record.body)
        endpoints.add(batch.endpoint)
        report = handle_batch(
            batch,
            post=poster,
            markers=markers,
            departures=runtime.departures,
            sender=runtime.queue_sender(),
            deadline=deadline,
        )
        obs.count(obs.DELIVERIES, report.delivered)
        obs.count(obs.GONE_CONNECTIONS, len(report.gone))
        obs.count(obs.FAILED_DELIVERIES, len(report.given_up))
        obs.logger.info(
            "fan-out batch",
            extra={
                "channel": batch.channel,
                "seq": batch.seq,
                "batch": batch.batch_id,
                "attempt": batch.attempt,
                "recipients": len(batch.recipients),
                "duplicate": report.duplicate,
                "delivered": report.delivered,
                "gone": len(report.gone),
                "requeued": report.requeued,
                "given_up": len(report.given_up),
            },
        )

    processor = BatchProcessor(event_type=EventType.SQS)
    try:
        return dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )
    finally:
        for endpoint in endpoints:  # member_left for presence members whose connections were gone
            try:
                announce([], runtime.departures, runtime.fanout(endpoint), runtime.store)
            except Exception:
                obs.logger.exception("could not announce the presence members who left")
