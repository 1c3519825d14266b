"""Server-side publish, ``POST /channels/{channel}/messages``: see :mod:`lambdacast.publish.http_api`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from lambdacast.observability import logger, metrics, trace_handler
from lambdacast.publish.http_api import on_http_publish


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@trace_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return on_http_publish(event, context)
