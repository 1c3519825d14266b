"""The protocol v1 actions, registered on :data:`router`."""

from __future__ import annotations

from typing import Final

from lambdacast import observability as obs
from lambdacast.errors import Forbidden, NotSubscribed
from lambdacast.protocol import (
    Hello,
    Ping,
    Publish,
    Subscribe,
    Unsubscribe,
    ack_frame,
    is_reserved,
    message_frame,
    pong_frame,
    subscribed_frame,
    unsubscribed_frame,
    welcome_frame,
)
from lambdacast.router import Context, Router

router: Final = Router()


def _authorize(channel: str, ctx: Context, frame_id: str | None) -> None:
    """Refuse reserved channels (``private-``/``presence-``) until channel authorization exists."""
    if is_reserved(channel):
        raise Forbidden(
            f"Channels starting with 'private-' or 'presence-' need authorization, which this "
            f"deployment does not offer yet; {channel!r} is refused.",
            frame_id=frame_id,
        )


@router.route(Hello)
def hello(request: Hello, ctx: Context) -> str:
    """Answer with the connection id, user id and limits."""
    return welcome_frame(
        request.id, connection_id=ctx.caller.connection_id, user_id=ctx.caller.user_id, limits=ctx.limits
    )


@router.route(Ping)
def ping(request: Ping, ctx: Context) -> str:
    """Answer with the server time."""
    return pong_frame(request.id, ts=ctx.clock())


@router.route(Subscribe)
def subscribe(request: Subscribe, ctx: Context) -> str:
    """Subscribe (idempotent) and answer with the channel's latest ``seq``.

    The subscription is committed before the reply is sent, and fan-out reads subscribers with a
    strongly consistent Query, so every message published after ``subscribed`` reaches the client.
    """
    _authorize(request.channel, ctx, request.id)
    ctx.store.subscribe(
        ctx.caller.connection_id,
        request.channel,
        max_channels=ctx.settings.max_channels,
        ttl_epoch=ctx.ttl_epoch,
    )
    return subscribed_frame(request.id, channel=request.channel, seq=ctx.store.current_seq(request.channel))


@router.route(Unsubscribe)
def unsubscribe(request: Unsubscribe, ctx: Context) -> str:
    """Unsubscribe (idempotent)."""
    ctx.store.unsubscribe(ctx.caller.connection_id, request.channel)
    return unsubscribed_frame(request.id, channel=request.channel)


@router.route(Publish)
def publish(request: Publish, ctx: Context) -> str:
    """Number the message, fan it out to the channel's subscribers and acknowledge.

    Recipients that are gone (410) are cleaned up and the rest still receive the message; the
    ``ack`` counts the connections the message was posted to.
    """
    _authorize(request.channel, ctx, request.id)
    caller = ctx.caller
    if not ctx.store.is_subscribed(caller.connection_id, request.channel):
        raise NotSubscribed(f"Subscribe to {request.channel!r} before publishing to it.", frame_id=request.id)
    seq = ctx.store.next_seq(request.channel)
    frame = message_frame(
        channel=request.channel,
        seq=seq,
        data_json=request.data_json,
        connection_id=caller.connection_id,
        user_id=caller.user_id,
        ts=ctx.clock(),
    )
    skip = frozenset() if request.echo else frozenset({caller.connection_id})
    result = ctx.fanout.broadcast(ctx.store.subscriber_pages(request.channel), frame.encode(), skip=skip)
    obs.count(obs.MESSAGES)
    obs.count(obs.DELIVERIES, result.delivered)
    obs.count(obs.GONE_CONNECTIONS, len(result.gone))
    obs.count(obs.FAILED_DELIVERIES, len(result.failed))
    obs.milliseconds(obs.FANOUT_DURATION, result.duration_ms)
    obs.logger.info(
        "published",
        extra={
            "channel": request.channel,
            "seq": seq,
            "recipients": result.recipients,
            "delivered": result.delivered,
            "gone": len(result.gone),
            "failed": len(result.failed),
            "retries": result.retries,
            "fanout_ms": round(result.duration_ms, 1),
        },
    )
    return ack_frame(request.id, channel=request.channel, seq=seq, delivered=result.delivered)
