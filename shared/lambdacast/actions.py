"""The protocol actions, registered on :data:`router`.

Order of checks for every channel action: the frame is parsed and length-checked
(:mod:`lambdacast.wire.parser`), the channel is authorized (:func:`_authorize`, pure), the action is
rate-limited (in memory: a publish against the publish budget, the others against
:func:`_limit_action`'s); only then is DynamoDB touched.
"""

from __future__ import annotations

from functools import partial
from typing import Final

from lambdacast import observability as obs
from lambdacast.auth.access import ChannelKind, Identity, channel_kind, identity_from_authorizer, may_access
from lambdacast.departures import announce
from lambdacast.errors import Forbidden, NotSubscribed, ProtocolError, RateLimited
from lambdacast.history import HistoryStore
from lambdacast.numbering import Counter, Refusal
from lambdacast.presence import Change, Member, PresenceStore
from lambdacast.publish.pipeline import Message, publish_message
from lambdacast.reply_bounds import bounded_history, bounded_presence
from lambdacast.router import Context, Router
from lambdacast.wire.frames import (
    ack_frame,
    history_frame,
    member_frame,
    pong_frame,
    sender_of,
    subscribed_frame,
    unsubscribed_frame,
    welcome_frame,
)
from lambdacast.wire.requests import Hello, History, Ping, Presence, Publish, Subscribe, Unsubscribe

router: Final = Router()


def _identity(ctx: Context) -> Identity:
    return identity_from_authorizer(ctx.caller.authorizer)


def _authorize(channel: str, ctx: Context, frame_id: str | None) -> Identity:
    """Refuse a ``private-``/``presence-`` channel the caller's token does not grant.

    Returns:
        The caller's identity (anonymous when no authorizer context came with the event).

    Raises:
        Forbidden: The channel needs a grant the caller does not have.
    """
    identity = _identity(ctx)
    if not may_access(channel, identity):
        if identity.is_anonymous:
            reason = "this connection is anonymous (connect with a token that grants it)"
        else:
            reason = "no pattern in this connection's token's channels claim matches it"
        raise Forbidden(f"{channel!r} needs authorization: {reason}.", frame_id=frame_id)
    return identity


def _limit_action(action: str, ctx: Context, frame_id: str | None) -> None:
    """Take a token of the caller's budget for actions that touch DynamoDB (other than publish).

    Raises:
        RateLimited: The budget is spent; nothing was read or written.
    """
    limiter = ctx.action_limiter
    connection_id = ctx.caller.connection_id
    if limiter is None or limiter.allow(connection_id, ctx.clock()):
        return
    obs.count(obs.RATE_LIMITED)
    wait = limiter.retry_after_ms(connection_id)
    raise RateLimited(
        f"This connection may send {limiter.rate:g} subscribe, unsubscribe, history and presence "
        f"frames per second (bursts of {limiter.burst}); wait {wait} ms before sending {action} again.",
        retry_after_ms=wait,
        frame_id=frame_id,
    )


def _announce(changes: list[Change], ctx: Context) -> None:
    """Post membership changes (and departures queued by fan-outs); best-effort, never raises.

    The membership itself is already committed, so a failed announcement leaves ``presence``
    correct; it is logged rather than turning the caller's reply into an error.
    """
    if ctx.departures is None:
        return
    try:
        announce(changes, ctx.departures, ctx.fanout, ctx.store)
    except Exception:
        obs.logger.exception("could not announce presence changes")


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
    """Subscribe (idempotent), replay what the client missed, and answer with the latest ``seq``.

    The subscription is committed before the channel's counter is read, and fan-out reads
    subscribers with a strongly consistent Query after numbering, so every message after that
    ``seq`` reaches the client live; the replay covers ``since + 1`` up to that ``seq`` (from 1 when
    ``epoch`` is not the channel's, with ``reset``) and is posted before the ``subscribed`` reply.
    Only a new subscription replays. A presence channel makes the caller's user a member in the
    same transaction and announces ``member_joined`` for the user's first connection.
    """
    identity = _authorize(request.channel, ctx, request.id)
    _limit_action("subscribe", ctx, request.id)
    caller = ctx.caller
    new = True
    if channel_kind(request.channel) is ChannelKind.PRESENCE and identity.user_id is not None:
        # A repeated subscribe must not replay again; the presence join cannot tell, so ask first.
        if request.since is not None:
            new = not ctx.store.is_subscribed(caller.connection_id, request.channel)
        change = _presence(ctx).subscribe(
            caller.connection_id,
            request.channel,
            Member(user_id=identity.user_id, info=identity.info),
            max_channels=ctx.settings.max_channels,
            ttl_epoch=ctx.ttl_epoch,
            cap=ctx.settings.presence_max_members,
            now_epoch=ctx.now_epoch,
        )
        if change is not None:
            _announce_join(change, ctx)
    else:
        new = ctx.store.subscribe(
            caller.connection_id,
            request.channel,
            max_channels=ctx.settings.max_channels,
            ttl_epoch=ctx.ttl_epoch,
        )
    return _settle_subscription(request, ctx, new=new)


def _settle_subscription(request: Subscribe, ctx: Context, *, new: bool) -> str:
    """Read the channel's counter, replay what the client missed, and build ``subscribed``.

    The subscription is already committed. If the counter cannot be read the subscription is
    undone before the error is raised, so client and server agree; a replay that fails is
    answered ``recovered: false`` (the client is subscribed and pages through ``history``).
    """
    try:
        counter = ctx.numbering.current(request.channel)
    except Exception:
        _undo_subscription(request, ctx)
        raise
    frame = partial(
        subscribed_frame, request.id, channel=request.channel, seq=counter.seq, epoch=counter.epoch
    )
    if request.since is None:
        return frame()
    if not new:  # it already follows the channel: everything since it subscribed came live
        return frame(recovered=False)
    reset = request.epoch != counter.epoch
    try:
        recovered = _replay(request.channel, 0 if reset else request.since, counter, ctx)
    except Exception:
        obs.logger.exception("the recovery replay failed", extra={"channel": request.channel})
        recovered = False
    return frame(recovered=recovered, reset=reset)


def _undo_subscription(request: Subscribe, ctx: Context) -> None:
    try:
        unsubscribe(Unsubscribe(channel=request.channel), ctx)
    except Exception:
        obs.logger.exception("could not undo a subscription after a failure; its rows expire by TTL")


def _presence(ctx: Context) -> PresenceStore:
    """The presence store; changes made on the way (members evicted to make room) are queued."""
    return PresenceStore(
        ctx.store, on_change=None if ctx.departures is None else ctx.departures.defer, clock=ctx.clock
    )


def _announce_join(change: Change, ctx: Context) -> None:
    # Changes queued meanwhile first: members evicted to make room have lower versions.
    _announce([], ctx)
    frame = member_frame(
        change.kind,
        channel=change.channel,
        user_id=change.member.user_id,
        info=change.member.info,
        v=change.v,
    )
    try:
        pages = ctx.store.subscriber_pages(change.channel)
        ctx.fanout.broadcast(pages, frame.encode(), skip=frozenset({ctx.caller.connection_id}))
    except Exception:
        obs.logger.exception("could not announce member_joined", extra={"channel": change.channel})
    _announce([], ctx)


def _replay(channel: str, since: int, counter: Counter, ctx: Context) -> bool:
    """Post the messages of ``counter.epoch`` after ``since`` to the caller, in order; return ``recovered``.

    The replay is bounded (100 messages, 256 KB) and its bytes are charged to the caller's budget.
    """
    recovery = HistoryStore(ctx.store).since(
        channel, epoch=counter.epoch, since=since, upto=counter.seq, now_epoch=ctx.now_epoch
    )
    if not recovery.messages:
        return recovery.recovered
    if ctx.direct is None:
        return False
    frames = [message.frame.encode() for message in recovery.messages]
    posted = ctx.direct.post_in_order(ctx.caller.connection_id, frames, deadline=ctx.deadline).posted
    obs.count(obs.REPLAYED_MESSAGES, posted)
    if ctx.quotas is not None:
        try:
            ctx.quotas.charge_bytes(
                ctx.caller.connection_id, sum(len(f) for f in frames[:posted]), ctx.clock()
            )
        except Exception:
            obs.logger.warning("could not charge the replay's bytes", exc_info=True)
    obs.logger.info("recovered", extra={"channel": channel, "since": since, "replayed": posted})
    return recovery.recovered and posted == len(frames)


@router.route(Unsubscribe)
def unsubscribe(request: Unsubscribe, ctx: Context) -> str:
    """Unsubscribe (idempotent); a presence channel announces ``member_left`` for the last tab."""
    _limit_action("unsubscribe", ctx, request.id)
    user_id = _identity(ctx).user_id
    if channel_kind(request.channel) is ChannelKind.PRESENCE and user_id is not None:
        change = _presence(ctx).unsubscribe(ctx.caller.connection_id, request.channel, user_id)
        _announce([change] if change is not None else [], ctx)
    else:
        ctx.store.unsubscribe(ctx.caller.connection_id, request.channel)
    return unsubscribed_frame(request.id, channel=request.channel)


@router.route(Publish)
def publish(request: Publish, ctx: Context) -> str:
    """Number, store and fan out the message, then acknowledge.

    The in-memory bucket refuses a flood before DynamoDB is touched; the subscription and the
    shared rate limits are conditions of the numbering transaction itself, so a refused publish
    changes nothing. Recipients that are gone (410) are cleaned up and the rest still receive the
    message; the ``ack`` counts the connections the message was posted to.
    """
    _authorize(request.channel, ctx, request.id)
    caller = ctx.caller
    if ctx.limiter is not None and not ctx.limiter.allow(caller.connection_id, ctx.clock()):
        wait = ctx.limiter.retry_after_ms(caller.connection_id)
        obs.count(obs.RATE_LIMITED)
        raise RateLimited(
            f"This connection may publish {ctx.limiter.rate:g} messages per second (bursts of "
            f"{ctx.limiter.burst}); wait {wait} ms before publishing again.",
            retry_after_ms=wait,
            frame_id=request.id,
        )
    refusals = [_subscribed(request, ctx)]
    if ctx.quotas is not None:
        refusals += ctx.quotas.refusals(
            connection_id=caller.connection_id,
            user_id=caller.user_id,
            now_ms=ctx.clock(),
            frame_id=request.id,
        )
    published = publish_message(
        Message(
            channel=request.channel,
            data_json=request.data_json,
            sender=sender_of(
                ctx.settings.sender_identity, connection_id=caller.connection_id, user_id=caller.user_id
            ),
            msg_id=request.msg_id,
            connection_id=caller.connection_id,
            skip=frozenset() if request.echo else frozenset({caller.connection_id}),
        ),
        store=ctx.store,
        numbering=ctx.numbering,
        fanout=ctx.fanout,
        departures=ctx.departures,
        clock=ctx.clock,
        history_ttl_seconds=ctx.settings.history_ttl_seconds,
        refusals=refusals,
        quotas=ctx.quotas,
        deadline=ctx.deadline,
    )
    if published.duplicate:
        obs.logger.info("publish repeated a msgId", extra={"channel": request.channel, "seq": published.seq})
    return ack_frame(
        request.id,
        channel=request.channel,
        seq=published.seq,
        epoch=published.epoch,
        delivered=published.delivered,
        msg_id=request.msg_id,
        duplicate=published.duplicate,
    )


def _subscribed(request: Publish, ctx: Context) -> Refusal:
    """The numbering transaction's condition that the caller follows the channel."""

    def refuse() -> Exception:
        return NotSubscribed(
            f"Subscribe to {request.channel!r} before publishing to it.", frame_id=request.id
        )

    return Refusal(
        item=ctx.store.subscription_condition(ctx.caller.connection_id, request.channel), refuse=refuse
    )


@router.route(Presence)
def presence(request: Presence, ctx: Context) -> str:
    """List a presence channel's members at a presence version (the caller needs the subscribe grant).

    Members whose items expired (connections that vanished unannounced) are left out of the list
    and removed, each announced as ``member_left`` with a version above the list's.
    """
    _authorize(request.channel, ctx, request.id)
    if channel_kind(request.channel) is not ChannelKind.PRESENCE:
        raise ProtocolError(
            f'"presence" works on presence- channels only; {request.channel!r} is not one.',
            frame_id=request.id,
        )
    _limit_action("presence", ctx, request.id)
    store = _presence(ctx)
    snapshot = store.snapshot(request.channel, now_epoch=ctx.now_epoch)
    if snapshot.expired:
        try:
            _announce(store.evict(request.channel, ctx.now_epoch), ctx)
        except Exception:
            obs.logger.exception("could not remove expired members", extra={"channel": request.channel})
    return bounded_presence(
        request.id, channel=request.channel, members=[m.as_json() for m in snapshot.members], v=snapshot.v
    )


@router.route(History)
def history(request: History, ctx: Context) -> str:
    """Return up to ``limit`` stored messages before ``before`` in the current epoch, in ``seq`` order.

    One bounded key range is read in small pages and reading stops when the reply (at most
    ``wire.limits.MAX_REPLY_BYTES``) is full; a cut page says ``"more": true`` with the ``before``
    of the next one (:mod:`lambdacast.reply_bounds`).
    """
    _authorize(request.channel, ctx, request.id)
    _limit_action("history", ctx, request.id)
    counter = ctx.numbering.peek(request.channel)
    if counter is None:  # never published to: nothing to read, and nothing is created
        return history_frame(request.id, channel=request.channel, epoch=None, messages_json=[])
    page = HistoryStore(ctx.store).page(
        request.channel,
        epoch=counter.epoch,
        top=counter.seq,
        limit=request.limit,
        before=request.before,
        now_epoch=ctx.now_epoch,
    )
    return bounded_history(
        request.id, channel=request.channel, epoch=counter.epoch, messages=page.messages, before=page.before
    )
