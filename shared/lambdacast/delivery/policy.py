"""What a management-API answer means, and how long to wait before trying again (no I/O).

The same semantics as the core's boto3 path: 2xx delivered; 410 gone (the caller deletes that
connection's rows); 429 ``LimitExceededException``, 5xx and connection errors retried with
exponential backoff and full jitter, a bounded number of times; anything else (403, 400, ...)
failed at once, because trying again cannot help.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass


class Verdict(enum.Enum):
    """The fate of one attempt."""

    DELIVERED = "delivered"
    GONE = "gone"
    RETRY = "retry"
    FAIL = "fail"


_RETRYABLE_ERROR_TYPES = frozenset(
    {"LimitExceededException", "ThrottlingException", "TooManyRequestsException"}
)


def classify(status: int, error_type: str = "") -> Verdict:
    """Map an HTTP status (and the ``x-amzn-ErrorType`` header, if any) to a verdict."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 410:
        return Verdict.GONE
    if status == 429 or status >= 500 or error_type.split(":", 1)[0] in _RETRYABLE_ERROR_TYPES:
        return Verdict.RETRY
    return Verdict.FAIL


def describe(status: int, error_type: str, body: bytes) -> str:
    """A short human reason for a failed post, e.g. ``HTTP 403 ForbiddenException: Forbidden``."""
    message = ""
    try:
        decoded = json.loads(body) if body else None
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        raw = decoded.get("message", decoded.get("Message", ""))
        message = raw if isinstance(raw, str) else ""
    elif body:
        message = body[:200].decode("utf-8", "replace")
    kind = error_type.split(":", 1)[0]
    return " ".join(part for part in (f"HTTP {status}", kind and f"{kind}:", message) if part).rstrip(":")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter.

    Attributes:
        max_attempts: Attempts per recipient, the first one included (1 = never retry).
        base_delay: Seconds; the cap of the first backoff.
        max_delay: Seconds; no backoff is longer.
    """

    max_attempts: int = 4
    base_delay: float = 0.05
    max_delay: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("backoff delays must not be negative")

    def delay(self, attempt: int, jitter: float) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        Args:
            attempt: The attempt that just failed.
            jitter: A uniform random number in [0, 1): full jitter scales the whole backoff.
        """
        return float(jitter * min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1)))
