"""SQS in a template: queues to create and event source mappings to poll."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdacast_local.errors import TemplateError
from lambdacast_local.intrinsics import Resolver


@dataclass(frozen=True)
class Queue:
    """An SQS queue to create at start."""

    logical_id: str
    name: str
    arn: str
    attributes: dict[str, str]
    redrive_policy: dict[str, Any] | None = None


@dataclass(frozen=True)
class SqsEventSource:
    """An SQS event source mapping: a poller invokes ``function`` with batches from ``queue``."""

    logical_id: str
    function: str
    queue: str
    batch_size: int = 10
    report_batch_item_failures: bool = False


_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
)


def read_queues(resolver: Resolver) -> list[Queue]:
    """Read the template's SQS queues (attributes, redrive policy)."""
    queues: list[Queue] = []
    for lid, props in resolver.properties_of("AWS::SQS::Queue").items():
        resolved = resolver.resolve_property(lid, "Properties", props) or {}
        attributes = {
            key: str(resolved[key]).lower() if isinstance(resolved[key], bool) else str(resolved[key])
            for key in _QUEUE_ATTRIBUTES
            if key in resolved
        }
        redrive = resolved.get("RedrivePolicy")
        name = str(resolver.attribute(lid, "QueueName"))
        queues.append(Queue(lid, name, str(resolver.attribute(lid, "Arn")), attributes, redrive))
    return queues


def read_event_sources(resolver: Resolver, functions: set[str], queues: list[Queue]) -> list[SqsEventSource]:
    """Read the enabled SQS event source mappings.

    Raises:
        TemplateError: A mapping the emulator cannot run (named).
    """
    by_arn = {queue.arn: queue for queue in queues}
    sources: list[SqsEventSource] = []
    for lid, props in resolver.properties_of("AWS::Lambda::EventSourceMapping").items():
        arn = str(resolver.resolve_property(lid, "EventSourceArn", props.get("EventSourceArn")))
        if not arn.startswith("arn:aws:sqs:"):
            raise TemplateError(f"Resource {lid}: only SQS event sources are supported locally (got {arn}).")
        if arn not in by_arn:
            raise TemplateError(f"Resource {lid}: queue {arn} is not declared in this template.")
        enabled = (
            str(resolver.resolve_property(lid, "Enabled", props.get("Enabled", True))).lower() != "false"
        )
        function = str(resolver.resolve_property(lid, "FunctionName", props.get("FunctionName"))).rsplit(
            ":", 1
        )[-1]
        if function not in functions:
            raise TemplateError(
                f"Resource {lid}: function {function} is not a function lambdacast local can run."
            )
        if not enabled:
            continue
        response_types = (
            resolver.resolve_property(lid, "FunctionResponseTypes", props.get("FunctionResponseTypes")) or []
        )
        batch = int(resolver.resolve_property(lid, "BatchSize", props.get("BatchSize", 10)))
        sources.append(
            SqsEventSource(
                lid, function, by_arn[arn].name, batch, "ReportBatchItemFailures" in response_types
            )
        )
    return sources
