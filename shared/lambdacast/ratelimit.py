"""Per-connection rate limits: a token bucket per connection, in this container's memory.

Two budgets: ``publish`` (configurable) and the other actions that touch DynamoDB
(:data:`ACTION_RATE_PER_SECOND`, :data:`ACTION_BURST`).

Pure (no I/O): the clock is passed in. A bucket holds up to ``burst`` tokens and refills at
``rate`` tokens per second; each publish takes one, and a publish finding the bucket empty is
refused (``rate_limited``) before it touches DynamoDB.

These buckets are the first line (docs/protocol.md, "Rate limit"): they cost no DynamoDB call,
so a flood is refused cheaply, but they are per warm container: API Gateway may route one
connection's frames to several concurrent containers, each with its own bucket. The limits that
hold across containers are :mod:`lambdacast.quotas`' windows in the table, checked inside the
publish's numbering transaction.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

#: The budget of the other actions that touch DynamoDB (subscribe, unsubscribe, history,
#: presence), a bucket per connection separate from the publish one: generous enough for a
#: client subscribing to all its ``maxChannels`` (100) at once, small enough that a flapping or
#: flooding client cannot turn one connection into unbounded table traffic and presence fan-outs.
ACTION_RATE_PER_SECOND: Final = 20.0
ACTION_BURST: Final = 120

#: Buckets kept per container; the least recently used is dropped beyond this (a dropped
#: connection simply starts again with a full bucket).
MAX_BUCKETS: Final = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_ms: int


class RateLimiter:
    """Token buckets keyed by connection id.

    Args:
        rate: Tokens added per second.
        burst: Bucket capacity (the most publishes allowed at once).
        max_buckets: Buckets kept before the least recently used is dropped.
    """

    def __init__(self, *, rate: float, burst: int, max_buckets: int = MAX_BUCKETS) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._max = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()  # forget() runs on fan-out threads (410 cleanup)

    def allow(self, key: str, now_ms: int) -> bool:
        """Take one token from ``key``'s bucket if it has one.

        Args:
            key: The connection id.
            now_ms: The current time, ms since epoch.

        Returns:
            ``True`` when the publish may go ahead, ``False`` when it must be refused.
        """
        with self._lock:
            return self._take(key, now_ms)

    def _take(self, key: str, now_ms: int) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated_ms=now_ms)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0, now_ms - bucket.updated_ms) / 1000
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated_ms = max(bucket.updated_ms, now_ms)
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def retry_after_ms(self, key: str) -> int:
        """How long until ``key``'s bucket holds a token again (0 if it holds one now)."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.tokens >= 1:
            return 0
        return math.ceil((1 - bucket.tokens) * 1000 / self.rate)

    def forget(self, key: str) -> None:
        """Drop ``key``'s bucket (the connection left)."""
        with self._lock:
            self._buckets.pop(key, None)
