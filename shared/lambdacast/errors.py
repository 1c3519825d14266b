"""The exception tree and the one registry that turns an exception into an error frame.

Every failure a client can cause is a :class:`RequestError` subclass carrying a human sentence.
:func:`error_for` walks the exception's MRO through :data:`REGISTRY`, so a subclass added later
(for example by the auth work) inherits its parent's wire code unless it registers its own.
Anything unregistered is an ``internal_error``: the details are logged, never sent.

Tree::

    LambdacastError
    ├── RequestError               the client's frame cannot be served (an error frame says why)
    │   ├── ProtocolError          the frame itself is malformed            -> invalid_frame
    │   │   ├── InvalidJson                                                 -> invalid_json
    │   │   ├── UnknownAction                                               -> unknown_action
    │   │   ├── InvalidChannel                                              -> invalid_channel
    │   │   └── TooLarge                                                    -> too_large
    │   ├── NotSubscribed                                                   -> not_subscribed
    │   ├── Forbidden                                                       -> forbidden
    │   ├── TooManyChannels                                                 -> too_many_channels
    │   ├── TooManyMembers         a presence channel is full               -> too_many_members
    │   └── RateLimited            too fast for a rate limit (retryAfterMs) -> rate_limited
    ├── NotNumbered                a publish could not be numbered          -> internal_error
    ├── Banned                     $connect of a banned user                (403 at the handshake)
    ├── UnknownConnection          no META item for this connection         -> internal_error
    └── DeliveryError              a post to one connection failed
        ├── ConnectionGone         410: the connection no longer exists
        └── DeliveryFailed         retries exhausted or a non-retryable status
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """The ``code`` of an error frame (protocol v1)."""

    INVALID_JSON = "invalid_json"
    INVALID_FRAME = "invalid_frame"
    UNKNOWN_ACTION = "unknown_action"
    INVALID_CHANNEL = "invalid_channel"
    NOT_SUBSCRIBED = "not_subscribed"
    FORBIDDEN = "forbidden"
    TOO_LARGE = "too_large"
    TOO_MANY_CHANNELS = "too_many_channels"
    TOO_MANY_MEMBERS = "too_many_members"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"


INTERNAL_ERROR_MESSAGE = (
    "The server failed to handle this frame; the failure has been logged. Try again later."
)


class LambdacastError(Exception):
    """Base of every lambdacast exception.

    Args:
        message: A human sentence: what was wrong and what is allowed.
        frame_id: The ``id`` of the client frame this error answers, when known.
    """

    def __init__(self, message: str, *, frame_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.frame_id = frame_id

    @property
    def fields(self) -> dict[str, object]:
        """Extra fields of the error frame (none by default)."""
        return {}


class RequestError(LambdacastError):
    """A client frame that cannot be served; the client receives an error frame."""


class ProtocolError(RequestError):
    """The frame is not a valid protocol v1 frame (wrong shape, missing or wrong-typed field, bad id)."""


class InvalidJson(ProtocolError):
    """The frame is not JSON text."""


class UnknownAction(ProtocolError):
    """The ``action`` is not one this server knows."""


class InvalidChannel(ProtocolError):
    """The channel name breaks the naming rules."""


class TooLarge(ProtocolError):
    """The serialized ``data`` is larger than the configured limit."""


class NotSubscribed(RequestError):
    """The connection published to a channel it is not subscribed to."""


class Forbidden(RequestError):
    """The connection may not use this channel (reserved prefix, or not authorized)."""


class TooManyChannels(RequestError):
    """The connection already holds the maximum number of subscriptions."""


class TooManyMembers(RequestError):
    """The presence channel already has the maximum number of members."""


class RateLimited(RequestError):
    """The connection (or its user) publishes or acts faster than its rate limit allows.

    Args:
        message: A human sentence naming the limit and the wait.
        retry_after_ms: When the client may try again, in milliseconds (sent as ``retryAfterMs``).
        frame_id: The ``id`` of the client frame this error answers, when known.
    """

    def __init__(self, message: str, *, retry_after_ms: int, frame_id: str | None = None) -> None:
        super().__init__(message, frame_id=frame_id)
        self.retry_after_ms = max(0, int(retry_after_ms))

    @property
    def fields(self) -> dict[str, object]:
        """``retryAfterMs`` for the error frame."""
        return {"retryAfterMs": self.retry_after_ms}


class NotNumbered(LambdacastError):
    """A publish could not be numbered (DynamoDB kept failing): nothing was stored or sent.

    Answered as ``internal_error``: a retry with the same ``msgId`` is safe.
    """


class Banned(LambdacastError):
    """The connecting user is banned (``DELETE /users/{sub}/connections?ban=...``): ``$connect`` refuses."""


class UnknownConnection(LambdacastError):
    """The connection has no record in the table (expired, or ``$connect`` never stored it)."""


class DeliveryError(LambdacastError):
    """A post to one connection did not happen.

    Args:
        message: What happened.
        connection_id: The recipient.
    """

    def __init__(self, message: str, *, connection_id: str) -> None:
        super().__init__(message)
        self.connection_id = connection_id


class ConnectionGone(DeliveryError):
    """The management API answered 410: the connection is closed; its rows should go."""


class DeliveryFailed(DeliveryError):
    """Retries were exhausted, or the management API refused the post for good."""


REGISTRY: dict[type[BaseException], ErrorCode] = {
    ProtocolError: ErrorCode.INVALID_FRAME,
    InvalidJson: ErrorCode.INVALID_JSON,
    UnknownAction: ErrorCode.UNKNOWN_ACTION,
    InvalidChannel: ErrorCode.INVALID_CHANNEL,
    TooLarge: ErrorCode.TOO_LARGE,
    NotSubscribed: ErrorCode.NOT_SUBSCRIBED,
    Forbidden: ErrorCode.FORBIDDEN,
    TooManyChannels: ErrorCode.TOO_MANY_CHANNELS,
    TooManyMembers: ErrorCode.TOO_MANY_MEMBERS,
    RateLimited: ErrorCode.RATE_LIMITED,
    # Registered so the client hears "reconnect" rather than the generic sentence.
    UnknownConnection: ErrorCode.INTERNAL_ERROR,
}


def register(exc_type: type[BaseException], code: ErrorCode) -> None:
    """Map an exception type (and, through the MRO, its subclasses) to an error code.

    Args:
        exc_type: The exception class.
        code: The wire code its error frames carry.
    """
    REGISTRY[exc_type] = code


def error_for(exc: BaseException) -> tuple[ErrorCode, str]:
    """Return the error frame code and message for an exception.

    The first class in the exception's MRO found in :data:`REGISTRY` decides the code. The
    exception's own message is used only for registered :class:`LambdacastError` types (their
    messages are written for clients); anything else gets a generic sentence so internals
    never leak.

    Args:
        exc: The exception raised while serving a frame.

    Returns:
        The code and the human message for the error frame.
    """
    for klass in type(exc).__mro__:
        code = REGISTRY.get(klass)
        if code is not None:
            message = exc.message if isinstance(exc, LambdacastError) else INTERNAL_ERROR_MESSAGE
            return code, message
    return ErrorCode.INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE
