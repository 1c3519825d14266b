"""``POST /channels/{channel}/messages`` (HTTP API, AWS_IAM): server-side publish (lambdacast.publish_api)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from lambdacast.observability import logger, metrics, trace_handler
from lambdacast.publish_api import on_http_publish


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@trace_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return on_http_publish(event, context)
