"""Message history: every numbered message, kept for history paging and recovery.

Item layout (docs/architecture.md)::

    HIST#<ch>  <epoch>#<seq, 16 digits>   frame (the message frame as sent), ttl, tok, msgId?

The item is written in the same transaction that numbers the message (:mod:`lambdacast.numbering`),
so within an epoch the history has no holes: every ``seq`` up to the counter has its item until it
expires. With ``HistoryTtlSeconds`` 0 nothing is written here.

The history lives in its own partition, off the subscriber partition ``CHAN#<ch>`` that fan-out
reads, so a long history never slows a broadcast. DynamoDB deletes expired items lazily (hours to
days after ``ttl``), so reads skip them: retention is exact.

Reads are bounded by construction: a page or a replay reads one key range of at most
:data:`~lambdacast.wire.limits.MAX_HISTORY_LIMIT` (history) or :data:`MAX_RECOVERY` (recovery)
seqs, in small pages sized from the items already seen, and stops as soon as the reply's byte
budget is spent. Expired items inside the range cost their read once, never a Query each.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from lambdacast.wire.limits import MAX_REPLY_BYTES

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

HIST: Final = "HIST#"
SEQ_DIGITS: Final = 16
#: The most messages a recovery replays; a longer gap answers ``recovered: false``.
MAX_RECOVERY: Final = 100
#: The most bytes of message frames one recovery replays (posted before ``subscribed``); a
#: longer gap answers ``recovered: false`` and the client pages through ``history`` instead.
MAX_REPLAY_BYTES: Final = 256 * 1024
#: Items asked for by the first Query of a read; later pages are sized from the largest item seen.
FIRST_PAGE_ITEMS: Final = 5
#: The most items one Query asks for.
MAX_PAGE_ITEMS: Final = 50
#: Queries one read may make at most (a page of 100 small messages takes 3).
MAX_QUERIES: Final = 12


def seq_key(epoch: str, seq: int) -> str:
    """The sort key of a message: the epoch, then its ``seq`` zero-padded so string order is numeric."""
    return f"{epoch}#{str(seq).zfill(SEQ_DIGITS)}"


def history_pk(channel: str) -> dict[str, Any]:
    """The partition key value of a channel's history."""
    return {"S": HIST + channel}


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message frame from the history, with its ``seq``."""

    seq: int
    frame: str


@dataclass(frozen=True, slots=True)
class Page:
    """A ``history`` page: messages in ``seq`` order, and where an older page starts (if any).

    Attributes:
        messages: The messages, oldest first.
        before: When the page stopped before ``limit`` because its byte budget was spent, the
            ``before`` to ask for the rest; ``None`` when nothing older was left out.
    """

    messages: list[StoredMessage]
    before: int | None = None


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
    """Reads message frames from the ``HIST#<channel>`` partition (writes happen in numbering).

    Args:
        client_source: An object with a ``client`` (the DynamoDB client) and ``table_name``,
            normally the :class:`~lambdacast.channels.ChannelStore`, so one client serves both.
    """

    def __init__(self, client_source: Any) -> None:
        self._source = client_source

    @property
    def _client(self) -> DynamoDBClient:
        client: DynamoDBClient = self._source.client
        return client

    def page(
        self,
        channel: str,
        *,
        epoch: str,
        top: int,
        limit: int,
        before: int | None,
        now_epoch: int,
        max_bytes: int = MAX_REPLY_BYTES,
    ) -> Page:
        """The newest ``limit`` live messages with ``seq < before`` (and ``<= top``), in ``seq`` order.

        Args:
            channel: The channel.
            epoch: The channel's current epoch.
            top: The channel's current ``seq`` (the newest there can be).
            limit: The most messages to return.
            before: Only messages older than this ``seq``; ``None`` for the newest.
            now_epoch: The current time, seconds since epoch (expired items are skipped).
            max_bytes: The most bytes of frames to return; reading stops once they are reached.
        """
        high = top if before is None else min(top, before - 1)
        if high < 1:
            return Page(messages=[])
        low = max(1, high - limit + 1)
        found: list[StoredMessage] = []
        used = 0
        lowest = high + 1
        for item in self._range(channel, epoch, low, high, newest_first=True, budget=max_bytes):
            lowest = _seq_of(item)
            message = _stored(item, now_epoch)
            if message is None:
                continue
            size = len(message.frame.encode()) + 1
            if found and used + size > max_bytes:
                found.reverse()
                return Page(messages=found, before=found[0].seq)
            found.append(message)
            used += size
        found.reverse()
        # Reading stopped inside the range (its budget or query cap): say where to go on from.
        return Page(messages=found, before=lowest if lowest > low else None)

    def since(
        self,
        channel: str,
        *,
        epoch: str,
        since: int,
        upto: int,
        now_epoch: int,
        max_bytes: int = MAX_REPLAY_BYTES,
    ) -> Recovery:
        """The messages of ``epoch`` a client that last saw ``since`` missed, up to ``upto``.

        Recovered only when the gap is at most :data:`MAX_RECOVERY` messages and ``max_bytes``,
        and every ``seq`` from ``since + 1`` to ``upto`` is live in the history (one expired
        message, or no history kept, means ``recovered: false`` with nothing replayed).
        ``upto`` was read after the subscription was committed, and every ``seq`` up to it was
        stored in the transaction that numbered it, so nothing can still be "in flight".

        Args:
            channel: The channel.
            epoch: The epoch ``since`` and ``upto`` belong to.
            since: The last ``seq`` the client saw (0: from the epoch's start).
            upto: The channel's current ``seq``.
            now_epoch: The current time, seconds since epoch.
            max_bytes: The most bytes of frames a replay may hold.
        """
        if since == upto:
            return Recovery(recovered=True, messages=[])
        if since > upto or upto - since > MAX_RECOVERY:
            return Recovery(recovered=False, messages=[])
        messages: list[StoredMessage] = []
        used = 0
        expected = since + 1
        for item in self._range(channel, epoch, since + 1, upto, newest_first=False, budget=max_bytes):
            message = _stored(item, now_epoch)
            if message is None or message.seq != expected:
                return Recovery(recovered=False, messages=[])
            used += len(message.frame.encode())
            if used > max_bytes:
                return Recovery(recovered=False, messages=[])
            messages.append(message)
            expected += 1
        if expected != upto + 1:
            return Recovery(recovered=False, messages=[])
        return Recovery(recovered=True, messages=messages)

    def _range(
        self, channel: str, epoch: str, low: int, high: int, *, newest_first: bool, budget: int
    ) -> Iterator[dict[str, Any]]:
        """The items with ``low <= seq <= high`` of ``epoch``, read in small, adaptively sized pages.

        The first Query asks for :data:`FIRST_PAGE_ITEMS`; each later one for as many items of
        the largest size seen so far as the remaining ``budget`` holds, so a range of big
        messages is not read far past what the caller can use. At most :data:`MAX_QUERIES`.
        """
        kwargs: dict[str, Any] = {
            "TableName": self._source.table_name,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":pk": history_pk(channel),
                ":low": {"S": seq_key(epoch, low)},
                ":high": {"S": seq_key(epoch, high)},
            },
            "ScanIndexForward": not newest_first,
            "Limit": FIRST_PAGE_ITEMS,
        }
        left = budget
        largest = 1
        for _ in range(MAX_QUERIES):
            response = self._client.query(**kwargs)
            for item in response.get("Items", []):
                size = len(item.get("frame", {}).get("S", "").encode())
                largest = max(largest, size)
                left -= size
                yield item
            last = response.get("LastEvaluatedKey")
            if not last or left <= 0:
                return
            kwargs["ExclusiveStartKey"] = last
            kwargs["Limit"] = max(1, min(MAX_PAGE_ITEMS, left // largest + 1))


def _seq_of(item: dict[str, Any]) -> int:
    return int(item["sk"]["S"].rsplit("#", 1)[1])


def _stored(item: dict[str, Any], now_epoch: int) -> StoredMessage | None:
    """The message of a history item; ``None`` when it expired."""
    frame = item.get("frame", {}).get("S")
    if frame is None or int(item.get("ttl", {}).get("N", "0")) <= now_epoch:
        return None
    return StoredMessage(seq=_seq_of(item), frame=str(frame))
