"""The cost of a million published messages at a given fan-out, from this run's measured numbers.

Prices are AWS's public on-demand list prices for us-east-1 (:data:`PRICES`, with the date they were
taken); the quantities per publish are measured: DynamoDB units by :mod:`bench.dynamodb_cost`, the
``$default`` duration by :mod:`bench.emulator_bench`, CPU per post by :mod:`bench.fanout_bench`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

LAMBDA_MEMORY_MB = 512
"""``Globals.Function.MemorySize`` in template.yaml (checked against the template by the bench)."""
FULL_VCPU_MB = 1769
"""Lambda gives a function one full vCPU at 1,769 MB and CPU in proportion to memory below it."""


@dataclass(frozen=True)
class Prices:
    """us-east-1 on-demand list prices, USD."""

    taken: str
    apigw_per_million_messages: float = 1.00
    """WebSocket messages, first billion a month (0.80 after); metered in 32 KB units, both directions."""
    apigw_per_million_connection_minutes: float = 0.25
    lambda_per_gb_second_arm64: float = 0.0000133334
    """First 7.5 billion GB-s a month; duration billed in 1 ms steps."""
    lambda_per_million_requests: float = 0.20
    dynamodb_per_million_wru: float = 0.625
    """On-demand write request units (1 KB each), after the November 2024 reduction."""
    dynamodb_per_million_rru: float = 0.125
    """On-demand read request units (4 KB strongly consistent, 8 KB eventually consistent)."""
    sqs_per_million_requests: float = 0.40
    """Standard queue, after the first million a month; every 64 KB of a request is one request."""


PRICES = Prices(
    taken="the list prices as published on AWS's pricing pages at the end of 2024 (DynamoDB after its "
    "1 November 2024 on-demand reduction), written down from the maintainers' knowledge on 2026-11-25 "
    "because this machine cannot reach aws.amazon.com"
)


@dataclass(frozen=True)
class Inputs:
    """What one publish to ``recipients`` connections takes, as measured."""

    recipients: int
    duration_ms: float
    """Median ``$default`` duration (emulator, management latency injected)."""
    read_units: float
    write_units: float
    reads: int
    writes: int
    cpu_ms_per_post: float | None = None
    """The shipped engine's publisher CPU per post (fan-out bench), for the CPU-bound estimate."""


@dataclass(frozen=True)
class CostRow:
    """USD per million published messages at one fan-out."""

    inputs: Inputs
    apigw_messages: int
    apigw: float
    lambda_requests: float
    lambda_compute: float
    lambda_compute_cpu_bound: float | None
    cpu_bound_ms: float | None
    dynamodb: float

    @property
    def total(self) -> float:
        return self.apigw + self.lambda_requests + self.lambda_compute + self.dynamodb

    @property
    def per_million_deliveries(self) -> float:
        return self.total / max(self.inputs.recipients, 1)


def gb_seconds(duration_ms: float, memory_mb: int = LAMBDA_MEMORY_MB) -> float:
    """Billed GB-seconds of one invocation (duration rounded up to the millisecond)."""
    return math.ceil(duration_ms) / 1000 * memory_mb / 1024


def cost_row(inputs: Inputs, prices: Prices = PRICES, memory_mb: int = LAMBDA_MEMORY_MB) -> CostRow:
    """Per million publishes: a frame in, ``recipients`` frames out, the ack back to the publisher."""
    messages = inputs.recipients + 2  # every message up to 32 KB counts once
    compute = gb_seconds(inputs.duration_ms, memory_mb) * prices.lambda_per_gb_second_arm64 * 1e6
    cpu_bound_ms: float | None = None
    cpu_bound: float | None = None
    if inputs.cpu_ms_per_post is not None:
        # At 512 MB a function gets 512/1769 of a vCPU: CPU work stretches by the inverse.
        cpu_bound_ms = inputs.recipients * inputs.cpu_ms_per_post * FULL_VCPU_MB / memory_mb
        longer = max(inputs.duration_ms, cpu_bound_ms)
        cpu_bound = gb_seconds(longer, memory_mb) * prices.lambda_per_gb_second_arm64 * 1e6
    return CostRow(
        inputs=inputs,
        apigw_messages=messages,
        apigw=messages * prices.apigw_per_million_messages,
        lambda_requests=prices.lambda_per_million_requests,
        lambda_compute=compute,
        lambda_compute_cpu_bound=cpu_bound,
        cpu_bound_ms=cpu_bound_ms,
        dynamodb=inputs.read_units * prices.dynamodb_per_million_rru
        + inputs.write_units * prices.dynamodb_per_million_wru,
    )


def inputs_from(
    dynamodb: Sequence[dict[str, Any]], durations: dict[int, float], cpu_ms_per_post: float | None
) -> list[Inputs]:
    """Join the suites' results on the fan-out (sizes measured by both)."""
    rows: list[Inputs] = []
    for cost in dynamodb:
        size = int(cost["subscribers"])
        if size in durations:
            rows.append(
                Inputs(
                    recipients=size,
                    duration_ms=durations[size],
                    read_units=float(cost["read_units"]),
                    write_units=float(cost["write_units"]),
                    reads=int(cost["reads"]),
                    writes=int(cost["writes"]),
                    cpu_ms_per_post=cpu_ms_per_post,
                )
            )
    return rows


@dataclass(frozen=True)
class QueuePath:
    """The SQS path for channels beyond one Lambda, as the template and the code configure it."""

    threshold: int
    """``QueueFanoutThreshold``: recipients the publishing function posts to itself."""
    per_message: int
    """Recipients per queued SQS message (``lambdacast.delivery.queue.DEFAULT_BATCH_RECIPIENTS``)."""
    esm_batch: int
    """Messages per ``FanoutFunction`` invocation (the event source mapping's ``BatchSize``)."""
    id_bytes: int = 16
    """API Gateway connection ids are 16 characters (``BFHPhfCWIAMCKlQ=``)."""


@dataclass(frozen=True)
class QueueCost:
    """The SQS path's share of one publish to ``recipients``, modelled from its configuration."""

    recipients: int
    queued: int
    messages: int
    sqs_requests: int
    invocations: int


def queue_cost(recipients: int, path: QueuePath, frame_bytes: int = 300) -> QueueCost:
    """SQS requests and ``FanoutFunction`` invocations of one publish (0 below the threshold).

    ``SendMessageBatch`` sends 10 messages per call and is billed per started 64 KB of the call;
    each invocation's receive and delete count once each (the event source mapping's polls that
    find nothing are left out).
    """
    queued = max(0, recipients - path.threshold)
    messages = math.ceil(queued / path.per_message)
    message_bytes = path.per_message * (path.id_bytes + 3) + frame_bytes + 512
    send = sum(
        math.ceil(min(10, messages - start) * message_bytes / 65_536) for start in range(0, messages, 10)
    )
    invocations = math.ceil(messages / path.esm_batch)
    return QueueCost(recipients, queued, messages, send + 2 * invocations, invocations)


def connection_minutes_per_month(connections: int, days: float = 30.0) -> float:
    """Connection minutes of ``connections`` clients connected all month."""
    return connections * days * 24 * 60
