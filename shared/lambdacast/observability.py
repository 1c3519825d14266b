"""Powertools Logger, Metrics and Tracer for every function, and the metric names we emit.

Configuration comes from the Powertools environment variables the template sets
(``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_LOG_LEVEL``).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

Handler = TypeVar("Handler", bound=Callable[..., Any])

SERVICE: Final = os.environ.get("POWERTOOLS_SERVICE_NAME") or "lambdacast"
NAMESPACE: Final = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "lambdacast"

# Explicit defaults: a metrics flush without a namespace would raise out of the handler.
logger: Final = Logger(service=SERVICE)
metrics: Final = Metrics(namespace=NAMESPACE, service=SERVICE)

_tracer: Tracer | None = None
_tracer_lock = threading.Lock()


def get_tracer() -> Tracer:
    """Return the Powertools Tracer, created on first use.

    Creating a Tracer imports the X-Ray SDK, which builds a botocore X-Ray client at import
    (about as long as importing boto3 itself). Deferring it keeps handler import small; with
    ``POWERTOOLS_TRACE_DISABLED`` the cost is never paid.
    """
    global _tracer  # noqa: PLW0603 - one tracer per process, created lazily
    with _tracer_lock:
        if _tracer is None:
            _tracer = Tracer(service=SERVICE)
        return _tracer


def _tracing_disabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in {"1", "true"}


def trace_handler(func: Handler) -> Handler:
    """Trace a Lambda handler with Powertools' ``capture_lambda_handler``, creating the Tracer lazily.

    Args:
        func: The handler.

    Returns:
        The handler, traced (responses are not captured: they carry no information here).
    """
    traced: Callable[..., Any] | None = None

    @functools.wraps(func)
    def wrapper(event: Any, context: Any) -> Any:
        nonlocal traced
        if _tracing_disabled():
            return func(event, context)
        if traced is None:
            traced = get_tracer().capture_lambda_handler(func, capture_response=False)
        return traced(event, context)

    return wrapper  # type: ignore[return-value]


CONNECTIONS: Final = "Connections"
CONNECTIONS_REFUSED: Final = "ConnectionsRefused"
DISCONNECTIONS: Final = "Disconnections"
MESSAGES: Final = "Messages"
DELIVERIES: Final = "Deliveries"
GONE_CONNECTIONS: Final = "GoneConnections"
FAILED_DELIVERIES: Final = "FailedDeliveries"
FANOUT_DURATION: Final = "FanoutDuration"
FRAMES: Final = "Frames"
ERROR_FRAMES: Final = "ErrorFrames"
HTTP_PUBLISH_REQUESTS: Final = "HttpPublishRequests"
HTTP_PUBLISH_ERRORS: Final = "HttpPublishErrors"
RATE_LIMITED: Final = "RateLimited"
HISTORY_WRITE_FAILURES: Final = "HistoryWriteFailures"
PUBLISH_FANOUT_ERRORS: Final = "PublishFanoutErrors"
DUPLICATE_PUBLISHES: Final = "DuplicatePublishes"
REPLAYED_MESSAGES: Final = "ReplayedMessages"
ADMIN_CLOSED_CONNECTIONS: Final = "AdminClosedConnections"
ADMIN_REFUSED: Final = "AdminRefused"


def bind_request(*, connection_id: str, request_id: str, route: str) -> None:
    """Put the connection id and API Gateway request id on every log line of this invocation.

    Handlers use ``logger.inject_lambda_context(clear_state=True)``, so keys never leak from one
    invocation to the next.
    """
    logger.append_keys(connection_id=connection_id, api_request_id=request_id, route=route)


def count(name: str, value: float = 1) -> None:
    """Add a count metric (flushed as EMF when the handler returns)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def milliseconds(name: str, value: float) -> None:
    """Add a duration metric in milliseconds."""
    metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=value)
