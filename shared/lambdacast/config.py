"""Settings from the environment, read once and frozen."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

DEFAULT_MAX_DATA_BYTES = 30720  # the publish envelope must fit in one 32 KB API Gateway frame
DEFAULT_MAX_CHANNELS = 100
DEFAULT_FANOUT_CONCURRENCY = 64
DEFAULT_CONNECTION_TTL_SECONDS = 7500
DEFAULT_PRESENCE_MAX_MEMBERS = 100
DEFAULT_HISTORY_TTL_SECONDS = 86400
DEFAULT_PUBLISH_RATE_PER_SECOND = 10
DEFAULT_PUBLISH_BURST = 20
DEFAULT_QUEUE_FANOUT_THRESHOLD = 2000
DEFAULT_USER_PUBLISH_RATE_PER_SECOND = 20
DEFAULT_USER_PUBLISH_BURST = 40
DEFAULT_POSTED_BYTES_PER_SECOND = 1_048_576
DEFAULT_SENDER_IDENTITY = "user"
#: API Gateway closes every connection after 2 hours: connection items must outlive that, or
#: DynamoDB's TTL could delete the rows of a connection that is still open (it would stop
#: receiving, silently).
MIN_CONNECTION_TTL_SECONDS = 7200
SENDER_IDENTITIES = ("user", "connection", "none")


class ConfigError(ValueError):
    """An environment variable holds a value the backend cannot use."""


def _int(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    """An integer variable of at least ``minimum`` (``default`` when unset or blank)."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    kind = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be {kind}, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be {kind}, got {value}")
    return value


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    return _int(environ, name, default)


def _non_negative_int(environ: Mapping[str, str], name: str, default: int) -> int:
    return _int(environ, name, default, minimum=0)


def _choice(environ: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = environ.get(name, "").strip().lower() or default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _boolean(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"true", "1", "yes"}:
        return True
    if raw in {"false", "0", "no"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    """What the functions need to know about their deployment.

    Attributes:
        table_name: The DynamoDB table (``TABLE_NAME``).
        management_endpoint: The ``@connections`` endpoint (``MANAGEMENT_ENDPOINT``); ``None`` means
            derive it from each event's ``https://{domainName}/{stage}``.
        max_data_bytes: Largest serialized ``data`` a client may publish (``MAX_DATA_BYTES``).
        max_channels: Most subscriptions per connection (``MAX_CHANNELS_PER_CONNECTION``).
        fanout_concurrency: Concurrent posts per publish (``FANOUT_CONCURRENCY``).
        connection_ttl_seconds: Lifetime of connection-scoped items (``CONNECTION_TTL_SECONDS``).
        presence_max_members: Most members (users) of one presence channel (``PRESENCE_MAX_MEMBERS``).
        history_ttl_seconds: How long published messages are kept for history and recovery
            (``HISTORY_TTL_SECONDS``); 0 keeps no history (no recovery, no ``history``).
        publish_rate_per_second: Sustained publishes per connection per second
            (``PUBLISH_RATE_PER_SECOND``).
        publish_burst: Publishes a connection may make at once before the rate applies
            (``PUBLISH_BURST``).
        fanout_queue_url: The SQS fan-out queue (``FANOUT_QUEUE_URL``); ``None`` means every
            recipient is posted by the publishing function.
        queue_fanout_threshold: Recipients a publishing function posts to itself; the rest go
            through the fan-out queue (``QUEUE_FANOUT_THRESHOLD``).
        user_publish_rate_per_second: Sustained publishes per user (token ``sub``), across all
            of the user's connections (``USER_PUBLISH_RATE_PER_SECOND``).
        user_publish_burst: The user's burst (``USER_PUBLISH_BURST``).
        posted_bytes_per_second: Bytes one connection may cause to be posted per second, its
            messages' sizes times their recipients plus its replays (``POSTED_BYTES_PER_SECOND``).
        shared_rate_limits: Whether the limits above are enforced across containers with
            counters in the table (``SHARED_RATE_LIMITS``, default ``true``); ``false`` keeps only
            the per-container buckets (no DynamoDB cost, a flooder gets them once per container).
        sender_identity: What ``message`` frames say about the sender (``SENDER_IDENTITY``):
            ``user`` (the user id only), ``connection`` (also the connection id) or ``none``.
        direct_replies: Whether replies to the caller are the ``$default`` route's response
            (``DIRECT_REPLIES``, default ``true``: the route has a route response); ``false`` posts
            them to the caller's connection, for a route without one.
    """

    table_name: str
    management_endpoint: str | None = None
    max_data_bytes: int = DEFAULT_MAX_DATA_BYTES
    max_channels: int = DEFAULT_MAX_CHANNELS
    fanout_concurrency: int = DEFAULT_FANOUT_CONCURRENCY
    connection_ttl_seconds: int = DEFAULT_CONNECTION_TTL_SECONDS
    presence_max_members: int = DEFAULT_PRESENCE_MAX_MEMBERS
    history_ttl_seconds: int = DEFAULT_HISTORY_TTL_SECONDS
    publish_rate_per_second: int = DEFAULT_PUBLISH_RATE_PER_SECOND
    publish_burst: int = DEFAULT_PUBLISH_BURST
    fanout_queue_url: str | None = None
    queue_fanout_threshold: int = DEFAULT_QUEUE_FANOUT_THRESHOLD
    user_publish_rate_per_second: int = DEFAULT_USER_PUBLISH_RATE_PER_SECOND
    user_publish_burst: int = DEFAULT_USER_PUBLISH_BURST
    posted_bytes_per_second: int = DEFAULT_POSTED_BYTES_PER_SECOND
    shared_rate_limits: bool = True
    sender_identity: str = DEFAULT_SENDER_IDENTITY
    direct_replies: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables.

        Args:
            environ: The variables to read; ``os.environ`` by default.

        Returns:
            The settings.

        Raises:
            ConfigError: ``TABLE_NAME`` is missing or a number is not a positive integer.
        """
        env = os.environ if environ is None else environ
        table_name = env.get("TABLE_NAME", "").strip()
        if not table_name:
            raise ConfigError("TABLE_NAME must name the DynamoDB table")
        return cls(
            table_name=table_name,
            management_endpoint=env.get("MANAGEMENT_ENDPOINT", "").strip().rstrip("/") or None,
            max_data_bytes=_positive_int(env, "MAX_DATA_BYTES", DEFAULT_MAX_DATA_BYTES),
            max_channels=_positive_int(env, "MAX_CHANNELS_PER_CONNECTION", DEFAULT_MAX_CHANNELS),
            fanout_concurrency=_positive_int(env, "FANOUT_CONCURRENCY", DEFAULT_FANOUT_CONCURRENCY),
            connection_ttl_seconds=_connection_ttl(env),
            presence_max_members=_positive_int(env, "PRESENCE_MAX_MEMBERS", DEFAULT_PRESENCE_MAX_MEMBERS),
            history_ttl_seconds=_non_negative_int(env, "HISTORY_TTL_SECONDS", DEFAULT_HISTORY_TTL_SECONDS),
            publish_rate_per_second=_positive_int(
                env, "PUBLISH_RATE_PER_SECOND", DEFAULT_PUBLISH_RATE_PER_SECOND
            ),
            publish_burst=_positive_int(env, "PUBLISH_BURST", DEFAULT_PUBLISH_BURST),
            fanout_queue_url=env.get("FANOUT_QUEUE_URL", "").strip() or None,
            queue_fanout_threshold=_positive_int(
                env, "QUEUE_FANOUT_THRESHOLD", DEFAULT_QUEUE_FANOUT_THRESHOLD
            ),
            user_publish_rate_per_second=_positive_int(
                env, "USER_PUBLISH_RATE_PER_SECOND", DEFAULT_USER_PUBLISH_RATE_PER_SECOND
            ),
            user_publish_burst=_positive_int(env, "USER_PUBLISH_BURST", DEFAULT_USER_PUBLISH_BURST),
            posted_bytes_per_second=_positive_int(
                env, "POSTED_BYTES_PER_SECOND", DEFAULT_POSTED_BYTES_PER_SECOND
            ),
            shared_rate_limits=_boolean(env, "SHARED_RATE_LIMITS", default=True),
            sender_identity=_choice(env, "SENDER_IDENTITY", DEFAULT_SENDER_IDENTITY, SENDER_IDENTITIES),
            direct_replies=_boolean(env, "DIRECT_REPLIES", default=True),
        )


def _connection_ttl(environ: Mapping[str, str]) -> int:
    value = _positive_int(environ, "CONNECTION_TTL_SECONDS", DEFAULT_CONNECTION_TTL_SECONDS)
    if value < MIN_CONNECTION_TTL_SECONDS:
        raise ConfigError(
            f"CONNECTION_TTL_SECONDS must be at least {MIN_CONNECTION_TTL_SECONDS} (API Gateway keeps a "
            f"connection open for up to 2 hours; a shorter TTL deletes live connections' rows), got {value}"
        )
    return value


@cache
def get_settings() -> Settings:
    """Return the process's settings, read from ``os.environ`` on first use.

    Returns:
        The settings (the same object on every call; tests call ``get_settings.cache_clear()``).
    """
    return Settings.from_env()
