"""Management API adapter: post to, read and delete connections through ``apigatewaymanagementapi``.

* The endpoint comes from ``MANAGEMENT_ENDPOINT`` (set by the template, so custom domains work),
  falling back to ``https://{domainName}/{stage}`` from the event.
* botocore's own retries are switched off and replaced by :class:`RetryPolicy`: 429 / throttling
  and 5xx (and connection-level errors) are retried with exponential backoff and full jitter,
  a bounded number of times; 410 becomes :class:`~lambdacast.errors.ConnectionGone`.
* The HTTP pool is sized to the fan-out concurrency: botocore's default of 10 would silently cap it.
* Clients are cached per (endpoint, pool size) for the life of the Lambda container.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from lambdacast.errors import ConnectionGone, DeliveryFailed

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi.client import ApiGatewayManagementApiClient

GONE_CODES: Final = frozenset({"GoneException"})
THROTTLE_CODES: Final = frozenset(
    {"LimitExceededException", "ThrottlingException", "TooManyRequestsException", "Throttling"}
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter.

    Attributes:
        max_attempts: Total attempts per post (the first try included).
        base_delay: Delay ceiling of the first retry, in seconds.
        max_delay: Largest delay ceiling, in seconds.
    """

    max_attempts: int = 4
    base_delay: float = 0.05
    max_delay: float = 1.0

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Return the sleep before retry number ``retry`` (0-based): uniform in [0, ceiling)."""
        return rand() * min(self.max_delay, self.base_delay * (2.0**retry))


def resolve_endpoint(configured: str | None, *, domain_name: str, stage: str) -> str:
    """Return the management endpoint: the configured one, else ``https://{domainName}/{stage}``.

    Args:
        configured: ``MANAGEMENT_ENDPOINT``, if set.
        domain_name: ``requestContext.domainName`` of the event.
        stage: ``requestContext.stage`` of the event.
    """
    if configured:
        return configured.rstrip("/")
    return f"https://{domain_name}/{stage}"


def _classify(exc: Exception) -> str:
    """Return ``"gone"``, ``"retry"`` or ``"fail"`` for an exception raised by a post."""
    # Deferred: botocore is loaded by the client anyway, but not at import time.
    from botocore.exceptions import ClientError, HTTPClientError  # noqa: PLC0415
    from botocore.exceptions import ConnectionError as BotoConnectionError  # noqa: PLC0415

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in GONE_CODES or status == 410:
            return "gone"
        if code in THROTTLE_CODES or status == 429 or status >= 500:
            return "retry"
        return "fail"
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return "retry"
    return "fail"


def _gone(connection_id: str) -> ConnectionGone:
    return ConnectionGone(f"connection {connection_id} is gone", connection_id=connection_id)


class ManagementGateway:
    """Posts frames to connections with the retry policy above.

    Args:
        client: An ``apigatewaymanagementapi`` client.
        retry: The retry policy.
        sleep: Sleep function (replaceable in tests).
        rand: Random source in [0, 1) for the jitter (replaceable in tests).
    """

    def __init__(
        self,
        client: ApiGatewayManagementApiClient,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rand = rand

    def post(self, connection_id: str, data: bytes) -> int:
        """Post one frame to one connection.

        Args:
            connection_id: The recipient.
            data: The frame, UTF-8 encoded.

        Returns:
            The number of retries it took (0 when the first attempt succeeded).

        Raises:
            ConnectionGone: 410, the connection is closed.
            DeliveryFailed: Retries exhausted, or a status that retrying cannot fix (403, 413...).
        """
        attempts = self.retry.max_attempts
        for attempt in range(attempts):
            try:
                self.client.post_to_connection(ConnectionId=connection_id, Data=data)
            except Exception as exc:
                kind = _classify(exc)
                if kind == "gone":
                    raise _gone(connection_id) from exc
                if kind == "fail" or attempt == attempts - 1:
                    raise DeliveryFailed(
                        f"post to {connection_id} failed after {attempt + 1} attempt(s): {exc}",
                        connection_id=connection_id,
                    ) from exc
                self._sleep(self.retry.delay(attempt, self._rand))
            else:
                return attempt
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, connection_id: str) -> dict[str, Any]:
        """Return the management API's view of a connection.

        Raises:
            ConnectionGone: The connection is closed.
        """
        try:
            return dict(self.client.get_connection(ConnectionId=connection_id))
        except Exception as exc:
            if _classify(exc) == "gone":
                raise _gone(connection_id) from exc
            raise

    def delete(self, connection_id: str) -> None:
        """Close a connection (a closed one is not an error)."""
        try:
            self.client.delete_connection(ConnectionId=connection_id)
        except Exception as exc:
            if _classify(exc) != "gone":
                raise


_clients: dict[tuple[str, int], ApiGatewayManagementApiClient] = {}
_clients_lock = threading.Lock()


def client_for(endpoint: str, *, max_pool_connections: int) -> ApiGatewayManagementApiClient:
    """Return the cached management API client for an endpoint, creating it on first use.

    Args:
        endpoint: ``https://{api}.execute-api.{region}.amazonaws.com/{stage}`` or a custom domain.
        max_pool_connections: HTTP pool size; match it to the fan-out concurrency.
    """
    key = (endpoint, max_pool_connections)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            import boto3  # noqa: PLC0415 - deferred: a large share of cold start
            from botocore.config import Config  # noqa: PLC0415

            config = Config(
                max_pool_connections=max_pool_connections,
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=3,
                read_timeout=5,
                tcp_keepalive=True,
            )
            client = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint, config=config)
            _clients[key] = client
        return client
