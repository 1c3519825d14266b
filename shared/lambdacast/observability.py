"""Powertools Logger, Metrics and Tracer for every function, and the metric names we emit.

Configuration comes from the Powertools environment variables the template sets
(``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_LOG_LEVEL``).
"""

from __future__ import annotations

import os
from typing import Final

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE: Final = os.environ.get("POWERTOOLS_SERVICE_NAME") or "lambdacast"
NAMESPACE: Final = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "lambdacast"

# Explicit defaults: a metrics flush without a namespace would raise out of the handler.
logger: Final = Logger(service=SERVICE)
metrics: Final = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer: Final = Tracer(service=SERVICE)

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
