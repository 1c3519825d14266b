"""``$default``: every client action (see lambdacast.handlers.on_message)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from lambdacast.handlers import on_message
from lambdacast.observability import logger, metrics, trace_handler


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@trace_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return on_message(event, context)
