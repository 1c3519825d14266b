"""Wire protocol v1: the typed requests a client frame is parsed into (see :mod:`~lambdacast.wire.parser`).

One frozen dataclass per action, holding only values the parser has checked; :data:`Request` is
their union, what the router dispatches on.
"""

from __future__ import annotations

from dataclasses import dataclass

from lambdacast.wire.limits import DEFAULT_HISTORY_LIMIT

__all__ = ["Hello", "History", "Ping", "Presence", "Publish", "Request", "Subscribe", "Unsubscribe"]


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
