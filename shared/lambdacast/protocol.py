"""Wire protocol v1, sans-I/O: frame text in, a typed request (or a ProtocolError) out.

Its constants and limits, the typed requests, the ``$connect`` subprotocol choice and the
parser. The frames sent back are built by :mod:`lambdacast.frames`. Nothing here touches the
network or the table, so every rule of the protocol can be tested with plain strings. See
docs/protocol.md for the frames and their meaning.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final

from lambdacast.errors import (
    ErrorCode,
    InvalidChannel,
    InvalidJson,
    ProtocolError,
    TooLarge,
    UnknownAction,
)

__all__ = [
    "MAX_POST_BYTES",
    "MAX_REPLY_BYTES",
    "PROTOCOL_VERSION",
    "SUBPROTOCOL",
    "ErrorCode",
    "Handshake",
    "Hello",
    "History",
    "Limits",
    "Ping",
    "Presence",
    "Publish",
    "Request",
    "Subscribe",
    "Unsubscribe",
    "choose_subprotocol",
    "dumps",
    "is_reserved",
    "parse_frame",
    "validate_channel",
]

PROTOCOL_VERSION: Final = 1
MAX_ID_LENGTH: Final = 64
#: ``msgId`` and ``epoch`` are 1 to 64 characters.
MAX_TOKEN_LENGTH: Final = 64
MAX_CHANNEL_LENGTH: Final = 128
CHANNEL_PATTERN: Final = re.compile(r"[A-Za-z0-9_\-=@,.;:]{1,128}")
RESERVED_PREFIXES: Final = ("private-", "presence-")
MAX_SEQ: Final = 2**53 - 1
MAX_HISTORY_LIMIT: Final = 100
DEFAULT_HISTORY_LIMIT: Final = 50
ALLOWED_CHANNEL_CHARS: Final = "A-Z a-z 0-9 _ - = @ , . ; :"
#: The WebSocket subprotocol of protocol v1, chosen at ``$connect`` when a client offers it.
SUBPROTOCOL: Final = "lambdacast.v1"
#: The largest reply frame sent, in bytes: API Gateway refuses a post over 128 KB (413), which
#: would leave the client with no reply at all; the rest is headroom.
MAX_REPLY_BYTES: Final = 120 * 1024
#: API Gateway's limit on one message to a client (a post over it is refused with 413).
MAX_POST_BYTES: Final = 128 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits a frame is checked against (from :class:`lambdacast.config.Settings`)."""

    max_data_bytes: int
    max_channels: int


@dataclass(frozen=True, slots=True)
class Hello:
    """``{"action": "hello"}``: ask for the connection id and limits."""

    id: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    """``{"action": "ping"}``: a keep-alive answered by ``pong``."""

    id: str | None = None


@dataclass(frozen=True, slots=True)
class Subscribe:
    """``{"action": "subscribe", "channel": ..., "since"?: seq, "epoch"?: epoch}``.

    Attributes:
        channel: The channel name.
        since: The last ``seq`` the client saw; messages after it are replayed (recovery).
        epoch: The channel epoch ``since`` belongs to; another epoch (or none) replays the
            current epoch from its start.
        id: The client's frame id.
    """

    channel: str
    since: int | None = None
    epoch: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Presence:
    """``{"action": "presence", "channel": ...}``: list the members of a presence channel."""

    channel: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class History:
    """``{"action": "history", "channel": ..., "limit"?: 1..100, "before"?: seq}``.

    Attributes:
        channel: The channel name.
        limit: The most messages to return (the newest ones before ``before``).
        before: Only messages with a smaller ``seq``; ``None`` means up to the latest.
        id: The client's frame id.
    """

    channel: str
    limit: int = DEFAULT_HISTORY_LIMIT
    before: int | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """``{"action": "unsubscribe", "channel": ...}``."""

    channel: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Publish:
    """``{"action": "publish", "channel": ..., "data": ..., "echo"?: bool, "msgId"?: str}``.

    Attributes:
        channel: The channel name.
        data_json: ``data`` serialized compactly, exactly as it will appear in message frames.
        echo: Whether the publisher's own connection receives the message too.
        msg_id: The client's id of this message: a publish whose ``msgId`` was already numbered
            on the channel is not numbered again (idempotent retries).
        id: The client's frame id.
    """

    channel: str
    data_json: str
    echo: bool = False
    msg_id: str | None = None
    id: str | None = None


Request = Hello | Ping | Subscribe | Unsubscribe | Publish | Presence | History


@dataclass(frozen=True, slots=True)
class Handshake:
    """The ``$connect`` answer to the client's ``Sec-WebSocket-Protocol`` offer.

    Attributes:
        accept: Whether the handshake may go on.
        subprotocol: The subprotocol to echo in ``Sec-WebSocket-Protocol`` (``None``: no header).
        reason: Why it was refused (for the log), empty when accepted.
    """

    accept: bool
    subprotocol: str | None = None
    reason: str = ""


def choose_subprotocol(offered: str | None) -> Handshake:
    """Choose the subprotocol from a ``Sec-WebSocket-Protocol`` header value (comma-separated).

    A browser whose offered subprotocol is not echoed fails the handshake, and API Gateway echoes
    only what ``$connect`` returns: so :data:`SUBPROTOCOL` is chosen when offered; an offer of
    only unknown subprotocols is refused (the client speaks something else); no offer is fine.
    """
    names = [name.strip() for name in (offered or "").split(",") if name.strip()]
    if not names:
        return Handshake(accept=True)
    if SUBPROTOCOL in names:
        return Handshake(accept=True, subprotocol=SUBPROTOCOL)
    shown = ", ".join(name[:40] for name in names[:5])
    return Handshake(accept=False, reason=f"offered subprotocols {shown} do not include {SUBPROTOCOL}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def dumps(value: Any) -> str:
    """Serialize compactly as UTF-8-safe JSON text (lone surrogates fall back to ASCII escapes)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text


class _NonFinite(Exception):
    """A number in the frame is out of range (``1e999`` would decode to ``inf``)."""


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _NonFinite(literal)
    return value


def _decode(text: str) -> tuple[Any, str | None]:
    """Decode a frame; also return the first out-of-range number literal found (``None`` if none).

    An out-of-range number is reported after decoding so the error can carry the frame's ``id``.
    """
    non_finite: list[str] = []

    def parse_float(literal: str) -> float:
        try:
            return _finite_float(literal)
        except _NonFinite:
            non_finite.append(literal)
            return 0.0

    try:
        obj = json.loads(text, parse_constant=_reject_constant, parse_float=parse_float)
    except RecursionError:
        raise InvalidJson("The frame is nested too deeply; send a JSON object of reasonable depth.") from None
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise InvalidJson(
            f"The frame is not valid JSON ({exc}); send a JSON object such as "
            '{"action":"ping"} in a text frame.'
        ) from None
    return obj, (non_finite[0] if non_finite else None)


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
    obj, non_finite = _decode(text)
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
