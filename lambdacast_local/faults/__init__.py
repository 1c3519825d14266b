"""Fault injection (``lambdacast local --faults SPEC --fault-seed N``).

``spec`` parses the grammar, ``plan`` decides per call from seeded streams and counts (both pure);
``dynamodb`` puts the DynamoDB faults on the wire; ``invocations`` words the Lambda ones. The
``@connections`` faults are answered in ``lambdacast_local.management.api``, the Lambda ones realised in
``lambdacast_local.lambda_pool``: each hook is a few lines around a ``Faults.decide`` call.
"""

from lambdacast_local.faults.plan import NO_FAULT, Decision, Faults, TargetCounts, choose
from lambdacast_local.faults.spec import (
    CONNECTIONS,
    DYNAMODB,
    KINDS,
    LAMBDA,
    LATENCY,
    VARIANTS,
    FaultSpec,
    FaultSpecError,
    TargetSpec,
    parse_spec,
)

__all__ = [
    "CONNECTIONS",
    "DYNAMODB",
    "KINDS",
    "LAMBDA",
    "LATENCY",
    "NO_FAULT",
    "VARIANTS",
    "Decision",
    "FaultSpec",
    "FaultSpecError",
    "Faults",
    "TargetCounts",
    "TargetSpec",
    "choose",
    "parse_spec",
]
