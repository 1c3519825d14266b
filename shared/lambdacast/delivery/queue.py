"""Channels beyond one Lambda: the publisher posts to the first recipients and queues the rest on SQS.

A publish whose recipients exceed ``QUEUE_FANOUT_THRESHOLD`` is split: the publishing function
posts to the first ``threshold`` recipients itself; the others are cut into
:class:`FanoutBatch` messages (recipient ids plus channel, seq, endpoint and the frame as posted)
and sent to ``FanoutQueue`` with ``SendMessageBatch`` (10 entries per call), where
``FanoutFunction`` (:mod:`lambdacast.delivery.queue_worker`) posts them.

The split happens in :class:`QueueingBroadcaster`, a :class:`~lambdacast.delivery.broadcaster.Broadcaster`
wrapping the direct engine, so every broadcast (messages, presence announcements) takes the queue
beyond the threshold. Recipients whose batch could not be enqueued are posted directly instead:
a queue outage makes a publish slower, never lossy.

Message body (one SQS message): a compact JSON header line, a newline, then the frame's text
unchanged, so a queued recipient receives byte for byte what a direct one does.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from lambdacast.delivery.broadcaster import FanoutResult

if TYPE_CHECKING:
    from lambdacast.delivery.broadcaster import Broadcaster

log = logging.getLogger(__name__)

#: Recipients per queued batch (one SQS message; one record of a FanoutFunction invocation).
DEFAULT_BATCH_RECIPIENTS: Final = 500
#: SendMessageBatch takes at most 10 entries and 262,144 bytes in all (and per message).
SQS_MAX_ENTRIES: Final = 10
SQS_MAX_BYTES: Final = 262_144
#: The longest ``DelaySeconds`` SQS accepts (15 minutes).
SQS_MAX_DELAY_S: Final = 900
#: Room left in a message for the header's fixed fields.
_HEADER_ROOM: Final = 2048
_SEND_ROUNDS: Final = 3


class BadBatch(ValueError):
    """An SQS message body that is not a fan-out batch."""


@dataclass(frozen=True, slots=True)
class FanoutBatch:
    """Recipients of one frame, queued for ``FanoutFunction``.

    Attributes:
        channel: The channel the frame belongs to.
        seq: The message's ``seq`` (0 for frames without one, such as presence announcements).
        batch_id: Unique per batch of one broadcast; a re-enqueued remainder gets a derived id.
        endpoint: The management API base URL to post to.
        frame: The frame's text, posted as it is.
        recipients: Connection ids, each at most once.
        attempt: 0 for a batch the publisher queued; +1 per re-enqueue of a failed remainder.
    """

    channel: str
    seq: int
    batch_id: str
    endpoint: str
    frame: str
    recipients: tuple[str, ...]
    attempt: int = 0

    def to_body(self) -> str:
        """The SQS message body: header line, newline, frame text."""
        header = {
            "v": 1,
            "channel": self.channel,
            "seq": self.seq,
            "batch": self.batch_id,
            "endpoint": self.endpoint,
            "attempt": self.attempt,
            "recipients": list(self.recipients),
        }
        return json.dumps(header, separators=(",", ":")) + "\n" + self.frame

    @classmethod
    def from_body(cls, body: str) -> FanoutBatch:
        """Parse a message body written by :meth:`to_body`.

        Raises:
            BadBatch: The body is not a version-1 fan-out batch.
        """
        head, sep, frame = body.partition("\n")
        try:
            header = json.loads(head)
        except ValueError as exc:
            raise BadBatch(f"fan-out batch header is not JSON: {exc}") from exc
        if not sep or not frame or not isinstance(header, dict) or header.get("v") != 1:
            raise BadBatch("not a version-1 fan-out batch (header line, newline, frame)")
        recipients = header.get("recipients")
        fields = (header.get("channel"), header.get("batch"), header.get("endpoint"))
        if not all(isinstance(f, str) and f for f in fields):
            raise BadBatch("fan-out batch needs non-empty channel, batch and endpoint strings")
        if not isinstance(recipients, list) or not all(isinstance(r, str) and r for r in recipients):
            raise BadBatch("fan-out batch recipients must be a list of connection ids")
        seq, attempt = header.get("seq"), header.get("attempt")
        if type(seq) is not int or type(attempt) is not int or seq < 0 or attempt < 0:
            raise BadBatch("fan-out batch seq and attempt must be non-negative integers")
        return cls(
            channel=header["channel"],
            seq=seq,
            batch_id=header["batch"],
            endpoint=header["endpoint"],
            frame=frame,
            recipients=tuple(dict.fromkeys(recipients)),
            attempt=attempt,
        )

    def remainder(self, recipients: Sequence[str]) -> FanoutBatch:
        """The batch of ``recipients`` that still need the frame, one attempt later."""
        attempt = self.attempt + 1
        return replace(
            self, recipients=tuple(recipients), attempt=attempt, batch_id=f"{self.batch_id}.r{attempt}"
        )

    def untried(self, recipients: Sequence[str]) -> FanoutBatch:
        """The batch of ``recipients`` no request was sent to: the same attempt, under a derived id.

        Each such batch is cut from a batch that posted at least one page, so the chain of
        ``.u`` ids ends within a few hops.
        """
        return replace(self, recipients=tuple(recipients), batch_id=f"{self.batch_id}.u")


def frame_identity(frame: str) -> tuple[str, int]:
    """The channel and seq a frame names (``("", 0)`` when it names none)."""
    try:
        decoded = json.loads(frame)
    except ValueError:
        return "", 0
    if not isinstance(decoded, dict):
        return "", 0
    channel, seq = decoded.get("channel"), decoded.get("seq")
    return (channel if isinstance(channel, str) else ""), (seq if type(seq) is int and seq >= 0 else 0)


def make_batches(
    recipients: Sequence[str],
    *,
    channel: str,
    seq: int,
    endpoint: str,
    frame: str,
    batch_size: int = DEFAULT_BATCH_RECIPIENTS,
    broadcast_id: str | None = None,
) -> list[FanoutBatch]:
    """Cut ``recipients`` into batches small enough for one SQS message each.

    Args:
        recipients: Connection ids (already deduplicated, ``skip`` applied).
        channel: The frame's channel.
        seq: The frame's seq (0 if none).
        endpoint: The management API base URL.
        frame: The frame's text.
        batch_size: Most recipients per batch.
        broadcast_id: Prefix of the batch ids (a fresh random one by default).

    Raises:
        ValueError: The frame leaves no room for even one recipient in a message.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    room = SQS_MAX_BYTES - len(frame.encode()) - len(endpoint) - len(channel) - _HEADER_ROOM
    prefix = broadcast_id or uuid.uuid4().hex[:16]
    batches: list[FanoutBatch] = []
    current: list[str] = []
    used = 0
    for cid in recipients:
        cost = len(cid.encode()) + 3  # quotes and comma
        if current and (len(current) >= batch_size or used + cost > room):
            batches.append(
                FanoutBatch(channel, seq, f"{prefix}-{len(batches)}", endpoint, frame, tuple(current))
            )
            current, used = [], 0
        if cost > room:
            raise ValueError("the frame is too large to queue with any recipient")
        current.append(cid)
        used += cost
    if current:
        batches.append(FanoutBatch(channel, seq, f"{prefix}-{len(batches)}", endpoint, frame, tuple(current)))
    return batches


class QueueSender:
    """Sends batches to the fan-out queue with ``SendMessageBatch``.

    Args:
        client: A boto3 SQS client; by default one is built on the first send (a publish that
            queues nothing never pays for it).
        queue_url: The fan-out queue's URL.
    """

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    @property
    def client(self) -> Any:
        """The SQS client (built on first use when none was given)."""
        if self._client is None:
            import boto3  # noqa: PLC0415 - lazy: most publishes never queue

            self._client = boto3.client("sqs")
        return self._client

    def send(self, batches: Sequence[FanoutBatch], *, delay_seconds: int = 0) -> list[FanoutBatch]:
        """Enqueue ``batches``, each hidden from consumers for ``delay_seconds``; see :meth:`send_delayed`."""
        return self.send_delayed([(batch, delay_seconds) for batch in batches])

    def send_delayed(self, items: Sequence[tuple[FanoutBatch, int]]) -> list[FanoutBatch]:
        """Enqueue each batch with its own ``DelaySeconds``, retrying entries SQS reports as failed.

        Entries go out in as few ``SendMessageBatch`` calls as the limits allow; entries SQS
        reports failed (or a call that raised) are sent again, a bounded number of rounds.

        Args:
            items: ``(batch, delay_seconds)`` pairs; a delay is 0 to :data:`SQS_MAX_DELAY_S`.

        Returns:
            The batches that could not be enqueued (empty when all were). Never raises for SQS's sake.

        Raises:
            ValueError: A delay outside 0 to :data:`SQS_MAX_DELAY_S` (nothing was sent).
        """
        for _, delay in items:
            if type(delay) is not int or not 0 <= delay <= SQS_MAX_DELAY_S:
                raise ValueError(f"DelaySeconds must be an integer from 0 to {SQS_MAX_DELAY_S}: {delay!r}")
        pending = list(items)
        for _ in range(_SEND_ROUNDS):
            if not pending:
                break
            pending = [item for group in _groups(pending) for item in self._send_group(group)]
        return [batch for batch, _ in pending]

    def _send_group(self, group: list[tuple[FanoutBatch, int]]) -> list[tuple[FanoutBatch, int]]:
        entries: list[dict[str, Any]] = []
        for i, (batch, delay) in enumerate(group):
            entry: dict[str, Any] = {"Id": str(i), "MessageBody": batch.to_body()}
            if delay:
                entry["DelaySeconds"] = delay
            entries.append(entry)
        try:
            reply = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception as exc:
            log.warning("SendMessageBatch of %d fan-out batches failed: %s", len(group), exc)
            return group
        failed = reply.get("Failed") or []
        for entry in failed:
            log.warning("fan-out batch not enqueued: %s %s", entry.get("Code"), entry.get("Message"))
        return [group[int(entry["Id"])] for entry in failed]


def _groups(items: Sequence[tuple[FanoutBatch, int]]) -> Iterator[list[tuple[FanoutBatch, int]]]:
    """Groups of at most 10 batches and 256 KiB of bodies: one SendMessageBatch call each."""
    group: list[tuple[FanoutBatch, int]] = []
    size = 0
    for item in items:
        body = len(item[0].to_body().encode())
        if group and (len(group) >= SQS_MAX_ENTRIES or size + body > SQS_MAX_BYTES):
            yield group
            group, size = [], 0
        group.append(item)
        size += body
    if group:
        yield group


class QueueingBroadcaster:
    """A :class:`~lambdacast.delivery.broadcaster.Broadcaster` that queues recipients beyond ``threshold``.

    Args:
        direct: The engine posting from this function.
        sender: Enqueues the overflow.
        endpoint: The management API base URL the queued batches name.
        threshold: Recipients this function posts to itself; the rest are queued.
        batch_size: Recipients per queued batch.
    """

    def __init__(
        self,
        direct: Broadcaster,
        sender: QueueSender,
        *,
        endpoint: str,
        threshold: int,
        batch_size: int = DEFAULT_BATCH_RECIPIENTS,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, got {threshold}")
        self.direct = direct
        self.sender = sender
        self.endpoint = endpoint
        self.threshold = threshold
        self.batch_size = batch_size

    def broadcast(
        self,
        pages: Iterable[Sequence[str]],
        data: bytes,
        *,
        skip: frozenset[str] = frozenset(),
        deadline: float | None = None,
    ) -> FanoutResult:
        """Queue the recipients beyond the threshold, then post to the first ones directly.

        Every subscriber page is read first (a Query per page), so the queued batches are on their
        way before the direct posts start. ``result.queued`` counts the recipients enqueued.
        ``deadline`` bounds the direct posts (those it cuts are counted failed, not re-queued).
        """
        direct: list[str] = []
        overflow: list[str] = []
        seen = set(skip)
        for page in pages:
            for cid in page:
                if cid in seen:
                    continue
                seen.add(cid)
                (direct if len(direct) < self.threshold else overflow).append(cid)
        queued = 0
        if overflow:
            unsent = self._enqueue(overflow, data)
            queued = len(overflow) - len(unsent)
            direct.extend(unsent)  # posted from here: slower, never lost
        result = self.direct.broadcast([direct] if direct else [], data, deadline=deadline)
        result.recipients += queued
        result.queued = queued
        return result

    def _enqueue(self, recipients: list[str], data: bytes) -> list[str]:
        frame = data.decode()
        channel, seq = frame_identity(frame)
        try:
            batches = make_batches(
                recipients,
                channel=channel or "-",
                seq=seq,
                endpoint=self.endpoint,
                frame=frame,
                batch_size=self.batch_size,
            )
        except ValueError:
            log.warning("frame too large to queue; posting to all %d recipients directly", len(recipients))
            return recipients
        unsent = self.sender.send(batches)
        if unsent:
            log.error("%d fan-out batches could not be enqueued; posting them directly", len(unsent))
        return [cid for batch in unsent for cid in batch.recipients]

    def close(self) -> None:
        """Close the direct engine if it can be closed."""
        close = getattr(self.direct, "close", None)
        if callable(close):
            close()
