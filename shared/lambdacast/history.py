"""Message history: every accepted publish is stored for history paging and recovery.

Item layout (docs/architecture.md)::

    HIST#<ch>  <seq, 16 digits zero-padded>   frame (the message frame as sent), ttl

The history lives in its own partition, off the subscriber partition ``CHAN#<ch>`` that fan-out
reads, so a long history never slows a broadcast. With the sequence counter this is the second
and last write of a publish. DynamoDB deletes expired items lazily (hours to days after ``ttl``),
so every read also filters on ``ttl``: retention is exact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_dynamodb.client import DynamoDBClient

HIST: Final = "HIST#"
SEQ_DIGITS: Final = 16
#: The most messages a recovery replays; a longer gap answers ``recovered: false``.
MAX_RECOVERY: Final = 100
#: How long recovery waits before its one re-read when the replay has a hole (a publish whose
#: ``seq`` is taken but whose history write has not landed yet).
REREAD_DELAY_SECONDS: Final = 0.05


def seq_key(seq: int) -> str:
    """The sort key of a message: its ``seq`` zero-padded so string order is numeric order."""
    return str(seq).zfill(SEQ_DIGITS)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message frame from the history, with its ``seq``."""

    seq: int
    frame: str


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a client that last saw ``since`` missed.

    Attributes:
        recovered: Whether ``messages`` is the complete gap (else the client refetches with history).
        messages: The missed messages in ``seq`` order (empty when not recovered).
    """

    recovered: bool
    messages: list[StoredMessage]


class HistoryStore:
    """Stores and reads message frames in the ``HIST#<channel>`` partition.

    Args:
        client_source: An object with a ``client`` (the DynamoDB client) and ``table_name``,
            normally the :class:`~lambdacast.channels.ChannelStore`, so one client serves both.
        sleep: Waits before recovery's re-read (``time.sleep`` by default; tests inject).
    """

    def __init__(self, client_source: Any, *, sleep: Callable[[float], None] | None = None) -> None:
        self._source = client_source
        self._sleep = sleep if sleep is not None else time.sleep

    @property
    def _client(self) -> DynamoDBClient:
        client: DynamoDBClient = self._source.client
        return client

    def append(self, channel: str, seq: int, frame: str, *, ttl_epoch: int) -> None:
        """Store one message frame under its ``seq`` (a repeat overwrites the same item).

        Args:
            channel: The channel.
            seq: The message's sequence number.
            frame: The message frame exactly as posted to subscribers.
            ttl_epoch: When the message leaves the history, seconds since epoch.
        """
        self._client.put_item(
            TableName=self._source.table_name,
            Item={
                "pk": {"S": HIST + channel},
                "sk": {"S": seq_key(seq)},
                "frame": {"S": frame},
                "ttl": {"N": str(ttl_epoch)},
            },
        )

    def page(self, channel: str, *, limit: int, before: int | None, now_epoch: int) -> list[StoredMessage]:
        """The newest ``limit`` live messages with ``seq < before``, returned in ``seq`` order.

        Args:
            channel: The channel.
            limit: The most messages to return.
            before: Only messages older than this ``seq``; ``None`` for the newest.
            now_epoch: The current time, seconds since epoch (expired items are skipped).
        """
        upper = seq_key(before - 1) if before is not None else "9" * SEQ_DIGITS
        if before is not None and before <= 1:
            return []
        found: list[StoredMessage] = []
        kwargs: dict[str, Any] = {
            "TableName": self._source.table_name,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND sk <= :upper",
            "FilterExpression": "#ttl > :now",
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": {
                ":pk": {"S": HIST + channel},
                ":upper": {"S": upper},
                ":now": {"N": str(now_epoch)},
            },
            "ScanIndexForward": False,
            "Limit": limit,
        }
        while len(found) < limit:
            response = self._client.query(**kwargs)
            found.extend(_stored(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
            kwargs["Limit"] = limit - len(found)
        found = found[:limit]
        found.reverse()
        return found

    def since(self, channel: str, *, since: int, upto: int, now_epoch: int) -> Recovery:
        """The messages a client that last saw ``since`` missed, up to ``upto`` (the current ``seq``).

        Recovered only when the gap is at most :data:`MAX_RECOVERY` messages and every ``seq``
        from ``since + 1`` to ``upto`` is in the history. A hole may be a publish still in flight
        (its ``seq`` taken, its history write not landed yet), so a replay with a hole is read once
        more after :data:`REREAD_DELAY_SECONDS`; a hole still there (an expired message or a failed
        history write) answers ``recovered: false`` with nothing replayed.

        Args:
            channel: The channel.
            since: The last ``seq`` the client saw.
            upto: The channel's current ``seq``, read after the subscription was committed.
            now_epoch: The current time, seconds since epoch.
        """
        if since == upto:
            return Recovery(recovered=True, messages=[])
        if since > upto or upto - since > MAX_RECOVERY:
            return Recovery(recovered=False, messages=[])
        messages = self._range(channel, since + 1, upto, now_epoch)
        if not _contiguous(messages, since + 1, upto):
            self._sleep(REREAD_DELAY_SECONDS)
            messages = self._range(channel, since + 1, upto, now_epoch)
            if not _contiguous(messages, since + 1, upto):
                return Recovery(recovered=False, messages=[])
        return Recovery(recovered=True, messages=messages)

    def _range(self, channel: str, low: int, high: int, now_epoch: int) -> list[StoredMessage]:
        """The live messages with ``low <= seq <= high``, in ``seq`` order."""
        kwargs: dict[str, Any] = {
            "TableName": self._source.table_name,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "FilterExpression": "#ttl > :now",
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": {
                ":pk": {"S": HIST + channel},
                ":low": {"S": seq_key(low)},
                ":high": {"S": seq_key(high)},
                ":now": {"N": str(now_epoch)},
            },
        }
        messages: list[StoredMessage] = []
        while True:
            response = self._client.query(**kwargs)
            messages.extend(_stored(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return messages
            kwargs["ExclusiveStartKey"] = last


def _contiguous(messages: list[StoredMessage], low: int, high: int) -> bool:
    """Whether ``messages`` are exactly the seqs ``low..high`` in order."""
    return [m.seq for m in messages] == list(range(low, high + 1))


def _stored(item: dict[str, Any]) -> StoredMessage:
    return StoredMessage(seq=int(item["sk"]["S"]), frame=str(item["frame"]["S"]))
