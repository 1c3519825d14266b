"""Channel authorization: who may use which channel (pure, no I/O).

An :class:`Identity` is what the ``$connect`` authorizer learned from a token: a user id, the
glob patterns of the private and presence channels the user may use, and display info. The
authorizer hands it to API Gateway as a flat context of strings (:func:`authorizer_context`);
API Gateway gives that context back to every later event in ``requestContext.authorizer``,
where :func:`identity_from_authorizer` rebuilds the identity.

Rules (:func:`may_access`):

* public channels (any name not starting ``private-`` or ``presence-``): everyone;
* ``private-*``: only when one of the identity's patterns matches the name
  (:func:`fnmatch.fnmatchcase`, so ``*``, ``?`` and ``[...]`` work and case matters);
* ``presence-*``: the same, and the identity must have a user id (members are users);
* an anonymous connection has no patterns, so it may use public channels only.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Final

PRIVATE_PREFIX: Final = "private-"
PRESENCE_PREFIX: Final = "presence-"

MAX_USER_ID_LENGTH: Final = 128
MAX_PATTERNS: Final = 50
MAX_PATTERN_LENGTH: Final = 128
MAX_NAME_LENGTH: Final = 128
#: The JSON-encoded pattern list travels in the authorizer context, and API Gateway caps the
#: whole authorizer result at 8 KB; this cap keeps the result well under it.
MAX_PATTERNS_JSON_BYTES: Final = 4096

#: Context keys the authorizer sets; principalId is added by API Gateway from the policy.
CONTEXT_USER_ID: Final = "userId"
CONTEXT_CHANNELS: Final = "channels"
CONTEXT_NAME: Final = "name"
ANONYMOUS_PRINCIPAL: Final = "anonymous"


class ChannelKind(enum.Enum):
    """What kind of authorization a channel name calls for."""

    PUBLIC = "public"
    PRIVATE = "private"
    PRESENCE = "presence"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is behind a connection.

    Attributes:
        user_id: The token's ``sub``; ``None`` for an anonymous connection.
        channels: Glob patterns of the private/presence channels the user may use.
        name: Display name from the token's ``name`` claim, if any.
    """

    user_id: str | None = None
    channels: tuple[str, ...] = ()
    name: str | None = None

    @property
    def is_anonymous(self) -> bool:
        """True when no user id is known."""
        return self.user_id is None

    @property
    def info(self) -> dict[str, str]:
        """Display info shown to other members (``{"name": ...}``, or empty)."""
        return {} if self.name is None else {"name": self.name}


ANONYMOUS: Final = Identity()


def channel_kind(channel: str) -> ChannelKind:
    """Classifies a channel name by its reserved prefix.

    Args:
        channel: A channel name (already validated by the protocol layer).

    Returns:
        The kind of authorization the channel needs.
    """
    if channel.startswith(PRESENCE_PREFIX):
        return ChannelKind.PRESENCE
    if channel.startswith(PRIVATE_PREFIX):
        return ChannelKind.PRIVATE
    return ChannelKind.PUBLIC


def matches_any(channel: str, patterns: Iterable[str]) -> bool:
    """True when at least one glob pattern matches the channel name (case-sensitive)."""
    return any(fnmatchcase(channel, pattern) for pattern in patterns)


def may_access(channel: str, identity: Identity | None) -> bool:
    """Decides whether a connection may subscribe or publish to a channel.

    Args:
        channel: The channel name.
        identity: The connection's identity; ``None`` means anonymous.

    Returns:
        True when allowed; False means the caller answers ``forbidden``.
    """
    kind = channel_kind(channel)
    if kind is ChannelKind.PUBLIC:
        return True
    if identity is None or identity.is_anonymous:
        return False
    return matches_any(channel, identity.channels)


def authorizer_context(identity: Identity) -> dict[str, str]:
    """Encodes an identity as an API Gateway authorizer context (string values only).

    Args:
        identity: The identity to encode.

    Returns:
        ``{"userId", "channels", "name"}``; ``channels`` is a JSON list, and ``userId``/``name``
        are empty strings when unknown.
    """
    return {
        CONTEXT_USER_ID: identity.user_id or "",
        CONTEXT_CHANNELS: json.dumps(list(identity.channels), separators=(",", ":")),
        CONTEXT_NAME: identity.name or "",
    }


def identity_from_authorizer(authorizer: Mapping[str, Any] | None) -> Identity:
    """Rebuilds the identity from an event's ``requestContext.authorizer``.

    Tolerant by design: a missing authorizer (auth not configured, or an emulator without one),
    missing keys or malformed values give an anonymous identity or no patterns, never an
    exception. Malformed values fail closed: they never grant access.

    Args:
        authorizer: ``principalId`` plus the context keys set by :func:`authorizer_context`.

    Returns:
        The identity; :data:`ANONYMOUS` when there is no user id.
    """
    if not authorizer:
        return ANONYMOUS
    user_id = _bounded_str(authorizer.get(CONTEXT_USER_ID), MAX_USER_ID_LENGTH)
    if user_id is None:
        return ANONYMOUS
    return Identity(
        user_id=user_id,
        channels=_decode_patterns(authorizer.get(CONTEXT_CHANNELS)),
        name=_bounded_str(authorizer.get(CONTEXT_NAME), MAX_NAME_LENGTH),
    )


def _bounded_str(value: object, max_length: int) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= max_length:
        return value
    return None


def _decode_patterns(value: object) -> tuple[str, ...]:
    decoded: object = value
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return ()
    if not isinstance(decoded, list):
        return ()
    return tuple(p for p in decoded[:MAX_PATTERNS] if isinstance(p, str) and 0 < len(p) <= MAX_PATTERN_LENGTH)
