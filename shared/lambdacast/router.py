"""Action registry and dispatch: frame text in, exactly one reply frame out, never an exception."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from lambdacast.errors import ErrorCode, LambdacastError, error_for
from lambdacast.wire.frames import error_frame
from lambdacast.wire.limits import Limits
from lambdacast.wire.parser import parse_frame
from lambdacast.wire.requests import Request

if TYPE_CHECKING:
    from lambdacast.channels import ChannelStore
    from lambdacast.config import Settings
    from lambdacast.delivery.broadcaster import Broadcaster, DirectBroadcaster
    from lambdacast.departures import Departures
    from lambdacast.numbering import Numbering
    from lambdacast.quotas import Quotas
    from lambdacast.ratelimit import RateLimiter

R = TypeVar("R", bound=Request)
ActionHandler = Callable[[Any, "Context"], str]
Decorator = Callable[[Callable[[R, "Context"], str]], Callable[[R, "Context"], str]]


@dataclass(frozen=True, slots=True)
class Caller:
    """The connection a frame came from.

    Attributes:
        connection_id: API Gateway's connection id.
        user_id: The authorized user (``requestContext.authorizer.userId``), if any.
        connected_at: When the connection opened, ms since epoch.
        authorizer: The whole authorizer context (for channel authorization later).
    """

    connection_id: str
    user_id: str | None = None
    connected_at: int = 0
    authorizer: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Context:
    """What an action handler may use: the caller and the services of this container.

    Attributes:
        caller: The connection the frame came from.
        settings: The settings.
        store: The channel store.
        fanout: The broadcaster.
        clock: Milliseconds since epoch.
        direct: Posts to one connection from this function (recovery replays), when available.
        limiter: The per-connection publish rate limiter (none: no limit).
        action_limiter: The per-connection limiter of subscribe, unsubscribe, history and presence
            (none: no limit).
        departures: Removes gone connections and queues their presence changes.
        deadline: A ``time.monotonic()`` time by which a fan-out must stop posting (from the
            Lambda context's remaining time less a margin); ``None``: no deadline.
        numbering: Reads channel counters and numbers publishes (built on the store when omitted).
        quotas: The rate limits shared across containers (none: only the in-memory ones).
    """

    caller: Caller
    settings: Settings
    store: ChannelStore
    fanout: Broadcaster
    clock: Callable[[], int]
    direct: DirectBroadcaster | None = None
    limiter: RateLimiter | None = None
    action_limiter: RateLimiter | None = None
    departures: Departures | None = None
    deadline: float | None = None
    numbering: Numbering = field(default=None)  # type: ignore[assignment]
    quotas: Quotas | None = None

    def __post_init__(self) -> None:
        if self.numbering is None:
            from lambdacast.numbering import Numbering  # noqa: PLC0415 - only for hand-built contexts

            object.__setattr__(self, "numbering", Numbering(self.store))

    @property
    def limits(self) -> Limits:
        """The protocol limits from the settings."""
        return Limits(max_data_bytes=self.settings.max_data_bytes, max_channels=self.settings.max_channels)

    @property
    def now_epoch(self) -> int:
        """The current time, seconds since epoch."""
        return self.clock() // 1000

    @property
    def ttl_epoch(self) -> int:
        """Expiry of the caller's items, seconds since epoch."""
        return self.caller.connected_at // 1000 + self.settings.connection_ttl_seconds


@dataclass(frozen=True, slots=True)
class Outcome:
    """The reply frame for one client frame, and the error code when it is an error frame."""

    frame: str
    error: ErrorCode | None = None
    exception: BaseException | None = None


class Router:
    """Maps request types to action handlers."""

    def __init__(self) -> None:
        self._routes: dict[type[Any], ActionHandler] = {}

    def route(self, request_type: type[R]) -> Decorator[R]:
        """Register the decorated function as the handler of ``request_type``."""

        def register(func: Callable[[R, Context], str]) -> Callable[[R, Context], str]:
            self._routes[request_type] = func
            return func

        return register

    def dispatch(self, text: str | None, ctx: Context, *, binary: bool = False) -> Outcome:
        """Parse a frame, run its action and return the reply frame.

        Never raises: a client's mistake becomes its error frame, anything unexpected becomes
        ``internal_error`` (the caller logs :attr:`Outcome.exception`).

        Args:
            text: The frame body.
            ctx: The caller and services.
            binary: The frame was binary.
        """
        frame_id: str | None = None
        try:
            request = parse_frame(text, ctx.limits, binary=binary)
            frame_id = request.id
            handler = self._routes.get(type(request))
            if handler is None:
                raise LookupError(f"no handler registered for {type(request).__name__}")
            return Outcome(frame=handler(request, ctx))
        except Exception as exc:
            code, message = error_for(exc)
            fields: dict[str, object] = {}
            if isinstance(exc, LambdacastError):
                if exc.frame_id is not None:
                    frame_id = exc.frame_id
                fields = exc.fields
            frame = error_frame(frame_id, code=code, message=message, **fields)
            return Outcome(frame=frame, error=code, exception=exc)
