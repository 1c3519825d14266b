"""Wire protocol v1, sans-I/O: frame text in, a typed request (or a ProtocolError) out.

The parser and the channel naming rules. The requests are :mod:`~lambdacast.wire.requests`, the
limits :mod:`~lambdacast.wire.limits`, the frames sent back :mod:`~lambdacast.wire.frames`.
Nothing here touches the network or the table, so every rule of the protocol can be tested with
plain strings. See docs/protocol.md for the frames and their meaning.
"""

from __future__ import annotations

from typing import Any, Final

from lambdacast.errors import InvalidChannel, InvalidJson, ProtocolError, TooLarge, UnknownAction
from lambdacast.wire.codec import decode, dumps
from lambdacast.wire.limits import (
    ALLOWED_CHANNEL_CHARS,
    CHANNEL_PATTERN,
    DEFAULT_HISTORY_LIMIT,
    MAX_CHANNEL_LENGTH,
    MAX_HISTORY_LIMIT,
    MAX_ID_LENGTH,
    MAX_SEQ,
    MAX_TOKEN_LENGTH,
    RESERVED_PREFIXES,
    Limits,
)
from lambdacast.wire.requests import Hello, History, Ping, Presence, Publish, Request, Subscribe, Unsubscribe

__all__ = ["ACTIONS", "is_reserved", "parse_frame", "validate_channel"]


def _frame_id(obj: dict[str, Any]) -> str | None:
    if "id" not in obj:
        return None
    value = obj["id"]
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH:
        raise ProtocolError(f'"id" must be a string of 1 to {MAX_ID_LENGTH} characters when present.')
    return value


def validate_channel(name: object, *, frame_id: str | None = None) -> str:
    """Check a channel name against the naming rules.

    Args:
        name: The ``channel`` field as sent.
        frame_id: The frame's id, carried by the error.

    Returns:
        The name, unchanged.

    Raises:
        ProtocolError: ``channel`` is missing or not a string.
        InvalidChannel: The name is empty, too long or holds a character outside the allowed set.
    """
    if not isinstance(name, str):
        raise ProtocolError('"channel" is required and must be a string.', frame_id=frame_id)
    if CHANNEL_PATTERN.fullmatch(name) is None:
        raise InvalidChannel(
            f"Channel names are 1 to {MAX_CHANNEL_LENGTH} characters from {ALLOWED_CHANNEL_CHARS}.",
            frame_id=frame_id,
        )
    return name


def is_reserved(channel: str) -> bool:
    """Return whether a channel name is reserved for authorized use (``private-``, ``presence-``)."""
    return channel.startswith(RESERVED_PREFIXES)


def _parse_publish(obj: dict[str, Any], frame_id: str | None, limits: Limits) -> Publish:
    channel = validate_channel(obj.get("channel"), frame_id=frame_id)
    if "data" not in obj:
        raise ProtocolError('"publish" needs a "data" field (any JSON value).', frame_id=frame_id)
    echo = obj.get("echo", False)
    if not isinstance(echo, bool):
        raise ProtocolError('"echo" must be true or false when present.', frame_id=frame_id)
    try:
        data_json = dumps(obj["data"])
    except RecursionError:
        raise ProtocolError('"data" is nested too deeply.', frame_id=frame_id) from None
    size = len(data_json.encode("utf-8"))
    if size > limits.max_data_bytes:
        raise TooLarge(
            f'"data" is {size} bytes serialized; the limit is {limits.max_data_bytes} bytes.',
            frame_id=frame_id,
        )
    msg_id = _optional_token(obj, "msgId", frame_id)
    return Publish(channel=channel, data_json=data_json, echo=echo, msg_id=msg_id, id=frame_id)


def _optional_token(obj: dict[str, Any], name: str, frame_id: str | None) -> str | None:
    if name not in obj:
        return None
    value = obj[name]
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TOKEN_LENGTH:
        raise ProtocolError(
            f'"{name}" must be a string of 1 to {MAX_TOKEN_LENGTH} characters when present.',
            frame_id=frame_id,
        )
    return value


def _optional_int(obj: dict[str, Any], name: str, low: int, high: int, frame_id: str | None) -> int | None:
    if name not in obj:
        return None
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProtocolError(
            f'"{name}" must be an integer from {low} to {high} when present.', frame_id=frame_id
        )
    return value


def _parse_subscribe(obj: dict[str, Any], frame_id: str | None) -> Subscribe:
    channel = validate_channel(obj.get("channel"), frame_id=frame_id)
    return Subscribe(
        channel=channel,
        since=_optional_int(obj, "since", 0, MAX_SEQ, frame_id),
        epoch=_optional_token(obj, "epoch", frame_id),
        id=frame_id,
    )


def _parse_history(obj: dict[str, Any], frame_id: str | None) -> History:
    channel = validate_channel(obj.get("channel"), frame_id=frame_id)
    limit = _optional_int(obj, "limit", 1, MAX_HISTORY_LIMIT, frame_id)
    before = _optional_int(obj, "before", 1, MAX_SEQ, frame_id)
    return History(
        channel=channel, limit=DEFAULT_HISTORY_LIMIT if limit is None else limit, before=before, id=frame_id
    )


ACTIONS: Final = ("hello", "subscribe", "unsubscribe", "publish", "ping", "presence", "history")


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def parse_frame(text: str | None, limits: Limits, *, binary: bool = False) -> Request:
    """Parse one client frame.

    Args:
        text: The frame's text (``None`` when the frame had no body).
        limits: The limits ``data`` is checked against.
        binary: The frame arrived as a binary WebSocket frame (``isBase64Encoded``).

    Returns:
        The typed request.

    Raises:
        ProtocolError: The frame breaks the protocol; the subclass names the error code and
            ``frame_id`` carries the frame's id when it was valid.
    """
    if binary:
        raise ProtocolError("Binary frames are not supported; send UTF-8 JSON in a text frame.")
    if not text:
        raise InvalidJson('The frame is empty; send a JSON object such as {"action":"ping"}.')
    obj, non_finite = decode(text)
    if not isinstance(obj, dict):
        raise ProtocolError(f'A frame must be a JSON object with an "action" string, not {_json_kind(obj)}.')
    frame_id = _frame_id(obj)
    if non_finite is not None:
        shown = non_finite if len(non_finite) <= 40 else non_finite[:40] + "..."
        raise InvalidJson(
            f"The number {shown} is out of range (it is not a finite double); send finite numbers only.",
            frame_id=frame_id,
        )
    action = obj.get("action")
    if not isinstance(action, str):
        raise ProtocolError('"action" is required and must be a string.', frame_id=frame_id)
    if action == "hello":
        return Hello(id=frame_id)
    if action == "ping":
        return Ping(id=frame_id)
    if action == "subscribe":
        return _parse_subscribe(obj, frame_id)
    if action == "unsubscribe":
        return Unsubscribe(channel=validate_channel(obj.get("channel"), frame_id=frame_id), id=frame_id)
    if action == "publish":
        return _parse_publish(obj, frame_id, limits)
    if action == "presence":
        return Presence(channel=validate_channel(obj.get("channel"), frame_id=frame_id), id=frame_id)
    if action == "history":
        return _parse_history(obj, frame_id)
    shown = action if len(action) <= 40 else action[:40] + "..."
    raise UnknownAction(f"Unknown action {shown!r}; the actions are {', '.join(ACTIONS)}.", frame_id=frame_id)
