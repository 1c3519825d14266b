"""One publish, whoever sends it: number the message, store it in the history, fan it out.

Shared by the WebSocket ``publish`` action and the server-side HTTP endpoint. Two writes per
publish (the counter and the history item), then reads proportional to the channel's
subscribers (the fan-out Query); presence departures found by the fan-out are announced after.

Publishing never raises once the message is numbered: a retry of a publish that raised would
go out again under a new ``seq``. A failure to read a page of subscribers, a broadcaster fault or
a failed presence announcement is logged and counted (``PublishFanoutErrors``), and the publish
answers :class:`Published` with the connections reached so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lambdacast import observability as obs
from lambdacast.delivery.broadcaster import FanoutResult
from lambdacast.departures import announce
from lambdacast.history import HistoryStore
from lambdacast.protocol import message_frame

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from lambdacast.channels import ChannelStore
    from lambdacast.delivery.broadcaster import Broadcaster
    from lambdacast.departures import Departures


@dataclass(frozen=True, slots=True)
class Published:
    """The outcome of a publish.

    Attributes:
        seq: The message's ``seq``.
        delivered: Connections it was posted to, plus those handed to the fan-out queue
            (``queued``; docs/fanout.md).
        queued: Of ``delivered``, the recipients queued for ``FanoutFunction``.
    """

    seq: int
    delivered: int
    queued: int = 0


def publish_message(
    *,
    store: ChannelStore,
    fanout: Broadcaster,
    departures: Departures | None,
    channel: str,
    data_json: str,
    sender_connection: str | None,
    sender_user: str | None,
    clock: Callable[[], int],
    history_ttl_seconds: int,
    skip: frozenset[str] = frozenset(),
    deadline: float | None = None,
) -> Published:
    """Number, store and broadcast one message (the caller has validated and authorized it).

    The history item is written before the fan-out, so a client recovering concurrently either
    finds the message in the history or, being subscribed already, receives it live.

    Args:
        store: The channel store.
        fanout: The broadcaster.
        departures: Where gone connections' presence changes are queued, then announced.
        channel: The channel.
        data_json: The serialized ``data``.
        sender_connection: The publishing connection (``None`` for a server-side publish).
        sender_user: The publishing user, if known.
        clock: Milliseconds since epoch.
        history_ttl_seconds: How long the message stays in the history.
        skip: Connections not to post to (the publisher, unless it asked for echo).
        deadline: A ``time.monotonic()`` time by which the fan-out stops posting; the recipients
            it cuts are counted failed (not delivered), so the reply still fits in the invocation.

    Returns:
        The ``seq`` and the number of connections the message was posted to.
    """
    seq = store.next_seq(channel)
    ts = clock()
    frame = message_frame(
        channel=channel,
        seq=seq,
        data_json=data_json,
        connection_id=sender_connection,
        user_id=sender_user,
        ts=ts,
    )
    try:
        HistoryStore(store).append(channel, seq, frame, ttl_epoch=ts // 1000 + history_ttl_seconds)
    except Exception:
        # The live subscribers still get the message; only history/recovery will miss it.
        obs.logger.exception("could not store the message in the history", extra={"seq": seq})
        obs.count(obs.HISTORY_WRITE_FAILURES)
    try:
        result = fanout.broadcast(
            _guarded_pages(store, channel, seq), frame.encode(), skip=skip, deadline=deadline
        )
    except Exception:
        # The message may have reached some subscribers; raising would make the caller retry it
        # under a new seq. Answer with what is known (nothing counted) instead.
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
    if departures is not None:
        try:
            announce([], departures, fanout, store)
        except Exception:
            obs.logger.exception("could not announce the presence members who left", extra={"seq": seq})
            obs.count(obs.PUBLISH_FANOUT_ERRORS)
    return Published(seq=seq, delivered=result.delivered + result.queued, queued=result.queued)


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
