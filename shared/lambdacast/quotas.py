"""Rate limits that hold across containers: per-connection and per-user windows kept in the table.

Item layout (docs/architecture.md)::

    RATE#c#<connection>  W<window start>   n (publishes), b (bytes posted), ttl
    RATE#u#<user>        W<window start>   n (publishes), ttl

A window lasts ``ceil(burst / rate)`` seconds and admits ``burst`` publishes, so the sustained
rate is ``rate`` and a full burst fits in one window. The check is one ``Update`` inside the
publish's own numbering transaction (:mod:`lambdacast.numbering`): ``ADD n 1`` only while the
window has room (and, for a connection, while the bytes it caused to be posted in this window are
under its byte limit), so a refused publish writes nothing and two containers cannot both take
the last slot. Bytes are charged after the fan-out, when the recipients are known
(:meth:`Quotas.charge_bytes`): a publish that crosses the byte limit is still delivered (it was
numbered), the next ones in that window are refused.

The per-container buckets of :mod:`lambdacast.ratelimit` stay in front: they refuse a flood
without any DynamoDB call. Cost: each check is a transactional write of a small item (2 write
units), a byte charge a plain one (1 write unit); docs/cost.md has the figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from lambdacast.errors import RateLimited
from lambdacast.numbering import Refusal

if TYPE_CHECKING:
    from lambdacast.channels import ChannelStore
    from lambdacast.config import Settings

RATE: Final = "RATE#"
#: Seconds a window item outlives its window (DynamoDB deletes it later still).
WINDOW_TTL_SLACK_S: Final = 60


@dataclass(frozen=True, slots=True)
class Window:
    """A fixed window of a rate: ``limit`` events per ``seconds``."""

    seconds: int
    limit: int

    @classmethod
    def of(cls, rate: float, burst: int) -> Window:
        """The window admitting ``burst`` events at a sustained ``rate`` per second."""
        return cls(seconds=max(1, math.ceil(burst / rate)), limit=burst)

    def start(self, now_ms: int) -> int:
        """The start (epoch seconds) of the window holding ``now_ms``."""
        now_s = now_ms // 1000
        return now_s - now_s % self.seconds

    def retry_after_ms(self, now_ms: int) -> int:
        """Milliseconds until the next window opens."""
        return (self.start(now_ms) + self.seconds) * 1000 - now_ms


class Quotas:
    """Builds the rate-limit conditions of a publish and charges what it posted.

    Args:
        store: The channel store (its table).
        settings: The limits.
    """

    def __init__(self, store: ChannelStore, settings: Settings) -> None:
        self.store = store
        self.connection = Window.of(settings.publish_rate_per_second, settings.publish_burst)
        self.user = Window.of(settings.user_publish_rate_per_second, settings.user_publish_burst)
        self.bytes_per_window = settings.posted_bytes_per_second * self.connection.seconds

    def _key(self, kind: str, owner: str, start: int) -> dict[str, Any]:
        return {"pk": {"S": f"{RATE}{kind}#{owner}"}, "sk": {"S": f"W{start}"}}

    def refusals(
        self, *, connection_id: str | None, user_id: str | None, now_ms: int, frame_id: str | None
    ) -> list[Refusal]:
        """The conditions a publish by this connection (and user) must meet in its transaction."""
        found: list[Refusal] = []
        if connection_id is not None:
            window = self.connection
            found.append(
                self._refusal(
                    "c",
                    connection_id,
                    window,
                    now_ms,
                    frame_id,
                    limit_bytes=True,
                    sentence=f"This connection may publish {window.limit} messages per {window.seconds} s "
                    f"and cause {self.bytes_per_window} bytes of posts per {window.seconds} s "
                    "(across every server)",
                )
            )
        if user_id is not None:
            window = self.user
            found.append(
                self._refusal(
                    "u",
                    user_id,
                    window,
                    now_ms,
                    frame_id,
                    limit_bytes=False,
                    sentence=f"This user may publish {window.limit} messages per {window.seconds} s "
                    "across all of its connections",
                )
            )
        return found

    def _refusal(
        self,
        kind: str,
        owner: str,
        window: Window,
        now_ms: int,
        frame_id: str | None,
        *,
        limit_bytes: bool,
        sentence: str,
    ) -> Refusal:
        """``ADD n 1`` on the owner's current window while it has room (and, for bytes, budget)."""
        start = window.start(now_ms)
        condition = "attribute_not_exists(n) OR n < :max"
        values = {
            ":one": {"N": "1"},
            ":max": {"N": str(window.limit)},
            ":ttl": {"N": str(start + window.seconds + WINDOW_TTL_SLACK_S)},
        }
        if limit_bytes:
            condition = f"({condition}) AND (attribute_not_exists(b) OR b < :bytes)"
            values[":bytes"] = {"N": str(self.bytes_per_window)}
        item = {
            "Update": {
                "TableName": self.store.table_name,
                "Key": self._key(kind, owner, start),
                "UpdateExpression": "ADD n :one SET #ttl = :ttl",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": values,
            }
        }
        wait = window.retry_after_ms(now_ms)

        def refuse() -> Exception:
            message = f"{sentence}; wait {wait} ms before publishing again."
            return RateLimited(message, retry_after_ms=wait, frame_id=frame_id)

        return Refusal(item=item, refuse=refuse)

    def charge_bytes(self, connection_id: str, posted: int, now_ms: int) -> None:
        """Add ``posted`` bytes to the connection's current window (a later publish sees them)."""
        if posted <= 0:
            return
        window = self.connection
        start = window.start(now_ms)
        self.store.client.update_item(
            TableName=self.store.table_name,
            Key=self._key("c", connection_id, start),
            UpdateExpression="ADD b :bytes SET #ttl = :ttl",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={
                ":bytes": {"N": str(posted)},
                ":ttl": {"N": str(start + window.seconds + WINDOW_TTL_SLACK_S)},
            },
        )
