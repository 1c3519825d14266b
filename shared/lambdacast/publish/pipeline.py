"""One publish, whoever sends it: number it (and store it) exactly once, fan it out, settle the costs.

Shared by the WebSocket ``publish`` action and the server-side HTTP endpoint. The numbering
transaction (:mod:`lambdacast.numbering`) takes the ``seq``, stores the frame in the history and
records the ``msgId`` in one request, together with the caller's conditions (subscribed, under its
rate limits), so a refused or failed publish changes nothing; then the subscribers are read (a
strongly consistent Query, after the numbering, so a subscriber that has ``subscribed`` is seen)
and posted to. After the fan-out, the bytes it posted are charged to the publisher and its
``msgId`` is marked done, concurrently.

Publishing never raises once the message is numbered: a failure to read a page of subscribers,
a broadcaster fault or a failed presence announcement is logged and counted
(``PublishFanoutErrors``), and the publish answers :class:`Published` with the connections
reached so far. Subscribers that missed it find the ``seq`` in the history.

A resend of a ``msgId`` already numbered answers the first ``seq`` (``duplicate``). If the first
publish's fan-out never finished (its function crashed after numbering), the resend posts the
stored frame again: a subscriber may then receive that ``(epoch, seq)`` twice, and drops it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lambdacast import observability as obs
from lambdacast.delivery.broadcaster import FanoutResult
from lambdacast.departures import announce
from lambdacast.wire.frames import message_frame

if TYPE_CHECKING:
    from collections.abc import Iterator

    from lambdacast.channels import ChannelStore
    from lambdacast.delivery.broadcaster import Broadcaster
    from lambdacast.departures import Departures
    from lambdacast.numbering import Numbering, Refusal
    from lambdacast.quotas import Quotas


@dataclass(frozen=True, slots=True)
class Published:
    """The outcome of a publish.

    Attributes:
        seq: The message's ``seq``.
        epoch: The channel epoch it was numbered in.
        delivered: Connections it was posted to, plus those handed to the fan-out queue
            (``queued``; docs/fanout.md); ``None`` for a duplicate.
        queued: Of ``delivered``, the recipients queued for ``FanoutFunction``.
        duplicate: Its ``msgId`` had been numbered before (the first publish's number).
    """

    seq: int
    epoch: str
    delivered: int | None
    queued: int = 0
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """What to publish, and who publishes it.

    Attributes:
        channel: The channel.
        data_json: The serialized ``data``.
        sender: The ``from`` object of the frame (``None``: no ``from``).
        msg_id: The publisher's id of this message, for idempotent resends.
        connection_id: The publishing connection (charged for the bytes posted), if any.
        skip: Connections not to post to (the publisher, unless it asked for echo).
    """

    channel: str
    data_json: str
    sender: dict[str, object] | None
    msg_id: str | None = None
    connection_id: str | None = None
    skip: frozenset[str] = frozenset()


def publish_message(
    message: Message,
    *,
    store: ChannelStore,
    numbering: Numbering,
    fanout: Broadcaster,
    departures: Departures | None,
    clock: Callable[[], int],
    history_ttl_seconds: int,
    refusals: Sequence[Refusal] = (),
    quotas: Quotas | None = None,
    deadline: float | None = None,
) -> Published:
    """Number, store and broadcast one message (the caller has validated and authorized it).

    Args:
        message: The message and its publisher.
        store: The channel store.
        numbering: Numbers the message.
        fanout: The broadcaster.
        departures: Where gone connections' presence changes are queued, then announced.
        clock: Milliseconds since epoch.
        history_ttl_seconds: How long the message stays in the history (0: not kept).
        refusals: Conditions of the numbering transaction (subscribed, rate limits).
        quotas: Charges the bytes posted to ``message.connection_id`` (none: not charged).
        deadline: A ``time.monotonic()`` time by which the fan-out stops posting; the recipients
            it cuts are counted failed (not delivered), so the reply still fits in the invocation.

    Returns:
        The ``seq``, its epoch and the number of connections the message was posted to.

    Raises:
        Exception: A refusal's exception, or ``NotNumbered``: nothing was stored or sent.
    """
    channel = message.channel

    def build(seq: int, epoch: str, ts: int) -> str:
        return message_frame(
            channel=channel,
            seq=seq,
            epoch=epoch,
            data_json=message.data_json,
            sender=message.sender,
            ts=ts,
            msg_id=message.msg_id,
        )

    numbered = numbering.number(
        channel,
        build_frame=build,
        clock=clock,
        history_ttl_seconds=history_ttl_seconds,
        msg_id=message.msg_id,
        refusals=refusals,
    )
    frame = numbered.frame
    if numbered.duplicate:
        obs.count(obs.DUPLICATE_PUBLISHES)
        frame = "" if numbered.done else numbering.stored_frame(channel, numbered.epoch, numbered.seq) or ""
        if not frame:
            return Published(seq=numbered.seq, epoch=numbered.epoch, delivered=None, duplicate=True)
        obs.logger.info("resending a message whose first fan-out did not finish", extra={"seq": numbered.seq})
    result = _broadcast(fanout, store, channel, numbered.seq, frame, skip=message.skip, deadline=deadline)
    _settle(
        message,
        numbering,
        quotas,
        posted=len(frame.encode()) * result.recipients,
        mark=result.recipients > 0 and not numbered.duplicate,
        now_ms=clock(),
    )
    if departures is not None:
        try:
            announce([], departures, fanout, store)
        except Exception:
            obs.logger.exception(
                "could not announce the presence members who left", extra={"seq": numbered.seq}
            )
            obs.count(obs.PUBLISH_FANOUT_ERRORS)
    if numbered.duplicate:
        return Published(seq=numbered.seq, epoch=numbered.epoch, delivered=None, duplicate=True)
    return Published(
        seq=numbered.seq,
        epoch=numbered.epoch,
        delivered=result.delivered + result.queued,
        queued=result.queued,
    )


def _broadcast(
    fanout: Broadcaster,
    store: ChannelStore,
    channel: str,
    seq: int,
    frame: str,
    *,
    skip: frozenset[str],
    deadline: float | None,
) -> FanoutResult:
    try:
        result = fanout.broadcast(
            _guarded_pages(store, channel, seq), frame.encode(), skip=skip, deadline=deadline
        )
    except Exception:
        # The message may have reached some subscribers; the rest find it in the history.
        obs.logger.exception("the fan-out failed", extra={"channel": channel, "seq": seq})
        obs.count(obs.PUBLISH_FANOUT_ERRORS)
        result = FanoutResult()
    obs.count(obs.MESSAGES)
    obs.count(obs.DELIVERIES, result.delivered)
    obs.count(obs.GONE_CONNECTIONS, len(result.gone))
    obs.count(obs.FAILED_DELIVERIES, len(result.failed))
    obs.milliseconds(obs.FANOUT_DURATION, result.duration_ms)
    obs.logger.info(
        "published",
        extra={
            "channel": channel,
            "seq": seq,
            "recipients": result.recipients,
            "delivered": result.delivered,
            "queued": result.queued,
            "gone": len(result.gone),
            "failed": len(result.failed),
            "retries": result.retries,
            "fanout_ms": round(result.duration_ms, 1),
        },
    )
    return result


def _settle(
    message: Message,
    numbering: Numbering,
    quotas: Quotas | None,
    *,
    posted: int,
    mark: bool,
    now_ms: int,
) -> None:
    """Charge the bytes posted and mark the ``msgId`` done, concurrently; a failure is logged only.

    Both are single writes, made only when the message reached someone: running them side by
    side keeps such a publish one round trip longer at most, and one that reached nobody none.
    A lost charge lets the publisher a little further; a lost done mark makes a resend post again
    (subscribers drop the repeat). With no recipient there is nothing a resend should post again.
    """
    calls: list[Callable[[], None]] = []
    if quotas is not None and message.connection_id is not None and posted > 0:
        connection_id = message.connection_id
        calls.append(lambda: quotas.charge_bytes(connection_id, posted, now_ms))
    if mark and message.msg_id is not None:
        msg_id = message.msg_id
        calls.append(lambda: numbering.mark_done(message.channel, msg_id))
    if not calls:
        return
    if len(calls) == 1:
        _quietly(calls[0])
        return
    list(_settler().map(_quietly, calls))


_pool: list[ThreadPoolExecutor] = []


def _settler() -> ThreadPoolExecutor:
    """One small pool per container for the writes after a fan-out (created on first use)."""
    if not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=2, thread_name_prefix="settle"))
    return _pool[0]


def _quietly(call: Callable[[], None]) -> None:
    try:
        call()
    except Exception:
        obs.logger.warning("a write after the fan-out failed", exc_info=True)


def _guarded_pages(store: ChannelStore, channel: str, seq: int) -> Iterator[list[str]]:
    """The channel's subscriber pages; a failed page read ends them (logged, counted), never raises."""
    try:
        yield from store.subscriber_pages(channel)
    except Exception:
        obs.logger.exception(
            "could not read the subscribers; the rest of this fan-out is skipped",
            extra={"channel": channel, "seq": seq},
        )
        obs.count(obs.PUBLISH_FANOUT_ERRORS)
