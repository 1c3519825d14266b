"""``DELETE /connections/{id}``, ``DELETE /users/{sub}/connections`` (IAM): see lambdacast.admin_api."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from lambdacast.admin_api import on_admin_request
from lambdacast.observability import logger, metrics, trace_handler


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@trace_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return on_admin_request(event, context)
