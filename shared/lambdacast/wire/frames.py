"""Wire protocol v1, sans-I/O: the frames sent to clients, built as compact JSON text.

Replies (``welcome``, ``subscribed``, ``ack``, ``error``...), the ``message`` frame every
subscriber receives and presence announcements. Requests are parsed by
:mod:`lambdacast.wire.parser`. See docs/protocol.md for the frames and their meaning.
"""

from __future__ import annotations

from typing import Any, Final

from lambdacast.errors import ErrorCode
from lambdacast.wire.codec import dumps
from lambdacast.wire.limits import PROTOCOL_VERSION, Limits

__all__ = [
    "SENDER_IDENTITIES",
    "ack_frame",
    "error_frame",
    "history_frame",
    "member_frame",
    "message_frame",
    "pong_frame",
    "presence_frame",
    "sender_of",
    "subscribed_frame",
    "unsubscribed_frame",
    "welcome_frame",
]


def _frame(kind: str, frame_id: str | None, **fields: Any) -> str:
    body: dict[str, Any] = {"type": kind}
    if frame_id is not None:
        body["id"] = frame_id
    body.update(fields)
    return dumps(body)


def welcome_frame(frame_id: str | None, *, connection_id: str, user_id: str | None, limits: Limits) -> str:
    """Build the ``welcome`` reply to ``hello``."""
    return _frame(
        "welcome",
        frame_id,
        connectionId=connection_id,
        userId=user_id,
        protocol=PROTOCOL_VERSION,
        limits={"maxDataBytes": limits.max_data_bytes, "maxChannels": limits.max_channels},
    )


def subscribed_frame(
    frame_id: str | None,
    *,
    channel: str,
    seq: int,
    epoch: str,
    recovered: bool | None = None,
    reset: bool = False,
) -> str:
    """Build the ``subscribed`` reply (``seq`` is the channel's latest sequence number in ``epoch``).

    ``recovered`` is present only when the client asked for recovery (``since``); ``reset`` only
    when its ``since`` belonged to another epoch, so the replay started the current epoch over.
    """
    fields: dict[str, Any] = {"channel": channel, "seq": seq, "epoch": epoch}
    if recovered is not None:
        fields["recovered"] = recovered
    if reset:
        fields["reset"] = True
    return _frame("subscribed", frame_id, **fields)


def member_frame(kind: str, *, channel: str, user_id: str, info: dict[str, Any], v: int) -> str:
    """Build ``member_joined`` or ``member_left`` (``kind``), posted to a presence channel's subscribers.

    ``v`` is the channel's presence version after this change (one more than before it).
    """
    return _frame(kind, None, channel=channel, member={"userId": user_id, "info": info}, v=v)


def presence_frame(
    frame_id: str | None, *, channel: str, members: list[dict[str, Any]], v: int, count: int | None = None
) -> str:
    """Build the ``presence`` reply: the channel's members, ``[{"userId", "info"}, ...]``, at version ``v``.

    ``count`` (the channel's member count) is given when ``members`` is only part of them, to
    keep the reply under :data:`~lambdacast.wire.limits.MAX_REPLY_BYTES`: the frame then says
    ``"truncated": true``.
    """
    if count is None:
        return _frame("presence", frame_id, channel=channel, v=v, members=members)
    return _frame("presence", frame_id, channel=channel, v=v, members=members, truncated=True, count=count)


def history_frame(
    frame_id: str | None,
    *,
    channel: str,
    epoch: str | None,
    messages_json: list[str],
    before: int | None = None,
) -> str:
    """Build the ``history`` reply from stored message frames (already JSON), in ``seq`` order.

    ``before`` is given when older messages were left out (to keep the reply under
    :data:`~lambdacast.wire.limits.MAX_REPLY_BYTES`, or because reading stopped at its budget): the
    frame then says ``"more": true`` and the ``before`` to ask next.
    """
    if before is None:
        head = _frame("history", frame_id, channel=channel, epoch=epoch)
    else:
        head = _frame("history", frame_id, channel=channel, epoch=epoch, more=True, before=before)
    return f'{head[:-1]},"messages":[{",".join(messages_json)}]}}'


def unsubscribed_frame(frame_id: str | None, *, channel: str) -> str:
    """Build the ``unsubscribed`` reply."""
    return _frame("unsubscribed", frame_id, channel=channel)


def ack_frame(
    frame_id: str | None,
    *,
    channel: str,
    seq: int,
    epoch: str,
    delivered: int | None,
    msg_id: str | None = None,
    duplicate: bool = False,
) -> str:
    """Build the ``ack`` reply to ``publish``.

    A ``duplicate`` ack answers a ``msgId`` numbered earlier: it carries that ``seq`` and no
    ``delivered`` (nothing was delivered this time).
    """
    fields: dict[str, Any] = {"channel": channel, "seq": seq, "epoch": epoch}
    if delivered is not None:
        fields["delivered"] = delivered
    if msg_id is not None:
        fields["msgId"] = msg_id
    if duplicate:
        fields["duplicate"] = True
    return _frame("ack", frame_id, **fields)


def pong_frame(frame_id: str | None, *, ts: int) -> str:
    """Build the ``pong`` reply to ``ping``."""
    return _frame("pong", frame_id, ts=ts)


def error_frame(frame_id: str | None, *, code: ErrorCode, message: str, **fields: Any) -> str:
    """Build an ``error`` frame (``fields`` such as ``retryAfterMs`` come after the message)."""
    return _frame("error", frame_id, code=code.value, message=message, **fields)


def message_frame(
    *,
    channel: str,
    seq: int,
    epoch: str,
    data_json: str,
    sender: dict[str, Any] | None,
    ts: int,
    msg_id: str | None = None,
) -> str:
    """Build the ``message`` frame every subscriber receives.

    ``data_json`` is spliced in as already-serialized JSON, so a large payload is encoded once
    per publish rather than once per recipient. ``sender`` is the ``from`` object the stack's
    ``SenderIdentity`` allows (:func:`sender_of`); ``None`` leaves ``from`` out.
    """
    head = dumps({"type": "message", "channel": channel, "seq": seq, "epoch": epoch})
    tail: dict[str, Any] = {}
    if msg_id is not None:
        tail["msgId"] = msg_id
    if sender is not None:
        tail["from"] = sender
    tail["ts"] = ts
    return f'{head[:-1]},"data":{data_json},{dumps(tail)[1:]}'


#: What ``message`` frames say about their sender (the ``SenderIdentity`` template parameter).
SENDER_IDENTITIES: Final = ("user", "connection", "none")


def sender_of(identity: str, *, connection_id: str | None, user_id: str | None) -> dict[str, Any] | None:
    """The ``from`` object of a message, as the stack's ``SenderIdentity`` allows.

    ``user`` -> ``{"userId"}``, ``connection`` -> also the ``connectionId``, ``none`` -> no ``from``.
    """
    if identity == "none":
        return None
    if identity == "connection":
        return {"userId": user_id, "connectionId": connection_id}
    return {"userId": user_id}
