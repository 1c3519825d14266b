"""``$connect`` REQUEST authorizer: verifies ``?token=`` and answers with an IAM policy.

All logic lives in :mod:`lambdacast.auth.authorizer`; see docs/auth.md.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from lambdacast.auth.authorizer import default_authorizer

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Returns the authorizer result for this ``$connect``."""
    return default_authorizer().authorize(event)
