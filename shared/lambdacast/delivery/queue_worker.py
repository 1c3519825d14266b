"""``FanoutFunction``'s logic: post each queued batch within its share of the invocation.

An invocation receives up to ``BatchSize`` records, each a :class:`~lambdacast.delivery.queue.FanoutBatch`.
Its remaining time, less :data:`DEADLINE_MARGIN_S`, is split between them as they come
(:class:`Budget`): a record may post until its fair share of what is left (time an earlier record
did not use passes on to the later ones), and never less than :data:`MIN_RECORD_S`. Per record:

1. A batch naming any endpoint but this stack's own (``MANAGEMENT_ENDPOINT``,
   :func:`~lambdacast.delivery.endpoint.is_own_endpoint`) is logged, counted and dropped.
2. When an earlier record left it less than :data:`MIN_RECORD_S`, the record is re-enqueued
   untouched (same body, same attempt, no delay): it was never tried, so it spends no attempt
   and no SQS receive.
3. If the batch's *done marker* exists (``FANOUT#<channel>#<seq>`` / ``<batch id>``), an earlier
   receive handled it: nothing is posted again.
4. The frame is posted through the engine every function posts with
   (:class:`~lambdacast.delivery.broadcaster.DirectBroadcaster`: bounded 429/5xx retries, 410s
   removed through :class:`~lambdacast.departures.Departures`), one page of ``concurrency``
   recipients after another until the record's deadline.
5. Recipients of pages the deadline left unread are re-enqueued untouched (``<id>.u``, same
   attempt, no delay). Recipients that were tried and still failed are re-enqueued as
   ``<id>.r<n>`` with ``attempt + 1`` and an SQS delay growing with the attempt
   (:class:`RequeueBackoff`), so a throttled API is not hammered. After :data:`MAX_ATTEMPTS`
   they are given up, logged and counted; clients see the seq gap and recover from the history.
6. The done marker is written. If re-enqueueing failed, it is not, and the record is reported as
   a batch item failure, so SQS delivers it again: the only case besides a body that is not a
   batch (or a marker that cannot be read) where the record spends a receive.

What can still deliver twice is documented in ``docs/fanout.md``.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from lambdacast.delivery.endpoint import is_own_endpoint
from lambdacast.delivery.queue import SQS_MAX_DELAY_S, FanoutBatch, QueueSender

if TYPE_CHECKING:
    from lambdacast.channels import ChannelStore
    from lambdacast.delivery.broadcaster import DirectBroadcaster

log = logging.getLogger(__name__)

#: Queue attempts of a batch's recipients (the first post included) before they are given up.
MAX_ATTEMPTS: Final = 5
#: How long a done marker lives: longer than SQS could redeliver a record (retention + DLQ).
MARKER_TTL_SECONDS: Final = 2 * 24 * 3600
#: Seconds kept back from the invocation's remaining time for re-enqueues, the markers, presence
#: announcements and the metrics flush.
DEADLINE_MARGIN_S: Final = 5.0
#: The least time a record is started with: one request attempt's timeout
#: (:data:`lambdacast.delivery.transport.ATTEMPT_TIMEOUT_S`). With less left, it is re-enqueued.
MIN_RECORD_S: Final = 4.0

#: Metric: batches dropped because they named another endpoint than this stack's own.
REFUSED_BATCHES: Final = "FanoutBatchesRefused"
#: Metric: recipients re-enqueued for another attempt after their posts failed.
RETRIED_RECIPIENTS: Final = "FanoutRecipientsRetried"
#: Metric: recipients re-enqueued untouched because the invocation's time ran out before them.
UNTRIED_RECIPIENTS: Final = "FanoutRecipientsUntried"

#: Builds (or returns) the engine posting to an endpoint; the deployed one is ``Runtime.direct``.
EngineFor = Callable[[str], "DirectBroadcaster"]


class RequeueFailed(RuntimeError):
    """Recipients still need the frame and could not be re-enqueued: SQS must deliver the record again."""


@dataclass(frozen=True, slots=True)
class RequeueBackoff:
    """The SQS ``DelaySeconds`` of a failed remainder: exponential by attempt, with equal jitter.

    Attempt ``n``'s ceiling is ``base_s * 2**(n-1)`` (at most ``max_s``); the delay is drawn from
    the upper half of it, so remainders failing together spread out, yet each waits at least half.

    Attributes:
        base_s: The ceiling for the first re-enqueue, seconds.
        max_s: No delay is longer (SQS allows at most 900 s).
    """

    base_s: int = 20
    max_s: int = SQS_MAX_DELAY_S

    def __post_init__(self) -> None:
        if self.base_s < 1 or not 1 <= self.max_s <= SQS_MAX_DELAY_S:
            raise ValueError(f"need base_s >= 1 and 1 <= max_s <= {SQS_MAX_DELAY_S}")

    def delay(self, attempt: int, jitter: float) -> int:
        """Seconds before the remainder of ``attempt`` (1-based) may be received.

        Args:
            attempt: The attempt the remainder is queued for.
            jitter: A number in [0, 1]; 1 gives the full ceiling.
        """
        ceiling = min(self.max_s, self.base_s << max(0, attempt - 1))
        return min(self.max_s, math.ceil(ceiling * (1 + jitter) / 2))


class Budget:
    """An invocation's posting time, split between its records as they come.

    Args:
        end: The ``clock()`` time by which posting must stop; ``None``: no limit.
        records: How many records the invocation holds.
        clock: The monotonic clock ``end`` is read against.
    """

    def __init__(self, end: float | None, records: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.end = end
        self.clock = clock
        self._left = max(1, records)
        self._claimed = 0

    def claim(self) -> float | None:
        """Claim the next record's deadline.

        Returns:
            ``math.inf`` when there is no limit; ``None`` when less than :data:`MIN_RECORD_S` is
            left and this is not the first record: it must not start; else the record's deadline,
            its fair share of the time left (``left / records not yet claimed``) and at least
            :data:`MIN_RECORD_S`. The first record always starts with that much (out of the
            margin if need be), so every invocation posts something.
        """
        records, self._left = self._left, max(1, self._left - 1)
        first = self._claimed == 0
        self._claimed += 1
        if self.end is None:
            return math.inf
        now = self.clock()
        left = self.end - now
        if left < MIN_RECORD_S and not first:
            return None
        return now + max(left / records, MIN_RECORD_S)


@dataclass(slots=True)
class BatchReport:
    """What handling one record did.

    Attributes:
        duplicate: The batch was already done (a redelivered record): nothing was posted.
        delivered: Recipients posted to.
        gone: Recipients that answered 410 (removed).
        retried: Recipients tried that failed, re-enqueued for the next attempt.
        delay_s: The SQS delay of that remainder.
        untried: Recipients re-enqueued untouched: the deadline came before a request to them.
        given_up: Recipients that failed on the last attempt.
    """

    duplicate: bool = False
    delivered: int = 0
    gone: list[str] = field(default_factory=list)
    retried: int = 0
    delay_s: int = 0
    untried: int = 0
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


def handle_batch(
    batch: FanoutBatch,
    *,
    engine: DirectBroadcaster,
    markers: DoneMarkers,
    sender: QueueSender,
    deadline: float | None = None,
    backoff: RequeueBackoff | None = None,
    jitter: Callable[[], float] = random.random,
) -> BatchReport:
    """Post one batch and settle every recipient: delivered, gone, re-enqueued or given up.

    Args:
        batch: The batch (its endpoint already checked).
        engine: The engine posting to the batch's endpoint (410s are removed by its ``on_gone``).
        markers: The done markers.
        sender: Re-enqueues what is left.
        deadline: The engine's clock time by which posting stops; pages not reached by then are
            re-enqueued untouched.
        backoff: The delay of a failed remainder (default :class:`RequeueBackoff`).
        jitter: Uniform [0, 1) numbers for that delay.

    Returns:
        What was done.

    Raises:
        RequeueFailed: Recipients left could not be re-enqueued (the record must be retried).
        Exception: What reading the marker raised (nothing was posted; the record is retried).
    """
    report = BatchReport()
    if markers.is_done(batch):
        log.info("batch %s of %s #%d already done; skipped", batch.batch_id, batch.channel, batch.seq)
        report.duplicate = True
        return report
    recipients = batch.recipients
    size = engine.concurrency  # a page's posts all start at once: a page reached is a page tried
    pages = [recipients[i : i + size] for i in range(0, len(recipients), size)]
    result = engine.broadcast(pages, batch.frame.encode(), deadline=deadline)
    # The engine posts the pages in order and stops reading them at the deadline, so the
    # recipients it tried are the first ``result.recipients``.
    tried = recipients[: result.recipients]
    failed_ids = set(result.failed)
    failed = [cid for cid in tried if cid in failed_ids]
    untried = recipients[result.recipients :]
    report.delivered = result.delivered
    report.gone = list(result.gone)
    if untried and not tried:  # the deadline came before the first page (a slow marker read)
        defer(batch, sender)
        report.untried = len(untried)
        return report
    requeue: list[tuple[FanoutBatch, int]] = []
    if untried:
        requeue.append((batch.untried(untried), 0))
        report.untried = len(untried)
    if failed and batch.attempt + 1 < MAX_ATTEMPTS:
        report.delay_s = (backoff or RequeueBackoff()).delay(batch.attempt + 1, jitter())
        requeue.append((batch.remainder(failed), report.delay_s))
        report.retried = len(failed)
    elif failed:
        report.given_up = failed
        log.error(
            "giving up on %d recipients of %s #%d after %d attempts, e.g. %s",
            len(failed),
            batch.channel,
            batch.seq,
            MAX_ATTEMPTS,
            failed[0],
        )
    if requeue and sender.send_delayed(requeue):
        raise RequeueFailed(
            f"{len(untried) + report.retried} recipients of batch {batch.batch_id} could not be re-enqueued"
        )
    try:
        markers.mark_done(batch)
    except Exception:
        # Reporting the record failed would make SQS redeliver it, and without a marker every
        # recipient would get the frame again: leave it; only a stray redelivery can repeat it.
        log.warning("could not mark batch %s done", batch.batch_id, exc_info=True)
    return report


def defer(batch: FanoutBatch, sender: QueueSender) -> None:
    """Re-enqueue a record that was not started, untouched: same id, same attempt, no delay.

    The record itself is then deleted by SQS (it is not reported failed), so it spends no receive;
    its done marker is left unwritten, so whichever of the two is handled first posts it, once.

    Raises:
        RequeueFailed: It could not be re-enqueued (the record must be retried).
    """
    if sender.send([batch]):
        raise RequeueFailed(f"batch {batch.batch_id} could not be re-enqueued untouched")


def on_fanout_event(
    event: dict[str, Any],
    context: Any,
    *,
    clock: Callable[[], float] = time.monotonic,
    engine: EngineFor | None = None,
    jitter: Callable[[], float] = random.random,
) -> dict[str, Any]:
    """``FanoutFunction``: handle each SQS record in its share of the time; report those SQS must redeliver.

    Args:
        event: The SQS event.
        context: The Lambda context (its remaining time is split between the records).
        clock: The monotonic clock of the deadlines (the engine must read the same one).
        engine: The engine for an endpoint; by default the runtime's (``Runtime.direct``).
        jitter: Uniform [0, 1) numbers for the re-enqueue delays.

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
    engine_for = engine or runtime.direct
    own = runtime.settings.management_endpoint
    markers = DoneMarkers(runtime.store)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    end = clock() + int(remaining()) / 1000 - DEADLINE_MARGIN_S if callable(remaining) else None
    budget = Budget(end, len(event.get("Records") or []), clock)
    endpoints: set[str] = set()

    def record_handler(record: Any) -> None:
        batch = FanoutBatch.from_body(record.body)
        about = {
            "channel": batch.channel,
            "seq": batch.seq,
            "batch": batch.batch_id,
            "attempt": batch.attempt,
        }
        if not is_own_endpoint(batch.endpoint, own):
            obs.count(REFUSED_BATCHES)
            obs.logger.error(
                "fan-out batch names another endpoint than this stack's; dropped",
                extra={**about, "endpoint": batch.endpoint, "recipients": len(batch.recipients)},
            )
            return
        deadline = budget.claim()
        if deadline is None:
            defer(batch, runtime.queue_sender())
            obs.count(UNTRIED_RECIPIENTS, len(batch.recipients))
            obs.logger.info("fan-out batch re-enqueued untouched: no time left for it", extra=about)
            return
        endpoints.add(batch.endpoint)
        report = handle_batch(
            batch,
            engine=engine_for(batch.endpoint),
            markers=markers,
            sender=runtime.queue_sender(),
            deadline=None if math.isinf(deadline) else deadline,
            jitter=jitter,
        )
        obs.count(obs.DELIVERIES, report.delivered)
        obs.count(obs.GONE_CONNECTIONS, len(report.gone))
        obs.count(obs.FAILED_DELIVERIES, len(report.given_up))
        obs.count(RETRIED_RECIPIENTS, report.retried)
        obs.count(UNTRIED_RECIPIENTS, report.untried)
        obs.logger.info(
            "fan-out batch",
            extra={
                **about,
                "recipients": len(batch.recipients),
                "duplicate": report.duplicate,
                "delivered": report.delivered,
                "gone": len(report.gone),
                "retried": report.retried,
                "delay_s": report.delay_s,
                "untried": report.untried,
                "given_up": len(report.given_up),
            },
        )

    # Every record failing is reported like any partial failure, not raised: an invocation error
    # would return the same records to SQS and count as a function error besides.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
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
