"""``FanoutFunction``: posts the batches a large publish queued (lambdacast.delivery.queue_worker)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from lambdacast.delivery.queue_worker import on_fanout_event
from lambdacast.observability import logger, metrics, trace_handler


@logger.inject_lambda_context(clear_state=True)
@trace_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return on_fanout_event(event, context)
