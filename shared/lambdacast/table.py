"""One DynamoDB table through the low-level client: the calls every store module shares.

The lazily created client, strongly consistent paginated queries retried with backoff,
``TransactWriteItems`` retried on conflicts (cancellation codes returned when a condition
failed), batch deletes retrying unprocessed items, and the attribute-value codec.
:class:`lambdacast.channels.ChannelStore` is built on it (and the sibling stores share its
client and calls): the stores say what is written, this module how.

The low-level client is used (not the resource layer): fewer objects per call on the hot path.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = ["CONDITION_FAILED", "Table", "attr_n", "attr_s", "item_key"]

BATCH_WRITE_MAX: Final = 25
UNPROCESSED_RETRIES: Final = 8
TRANSACTION_RETRIES: Final = 5
#: Extra tries of a failed page read (after botocore's), see :meth:`Table._query`.
QUERY_RETRIES: Final = 3
CONDITION_FAILED: Final = "ConditionalCheckFailed"


def attr_s(value: str) -> dict[str, Any]:
    """A DynamoDB string value."""
    return {"S": value}


def attr_n(value: int) -> dict[str, Any]:
    """A DynamoDB number value."""
    return {"N": str(value)}


def item_key(pk: str, sk: str) -> dict[str, Any]:
    """A DynamoDB key."""
    return {"pk": attr_s(pk), "sk": attr_s(sk)}


class Table:
    """One DynamoDB table: the shared client, retried reads, transactions and batch deletes.

    Args:
        table_name: The table.
        client: A DynamoDB client; one is created (and kept) on first use when omitted.
        sleep: Sleep function for the unprocessed-items backoff (replaceable in tests).
        max_pool_connections: HTTP pool of the client created here; 410 cleanups run on the
            fan-out threads, so match the fan-out concurrency.
    """

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_pool_connections: int = 10,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self._sleep = sleep
        self._max_pool_connections = max_pool_connections
        self._lock = threading.Lock()

    @property
    def client(self) -> DynamoDBClient:
        """The DynamoDB client (created lazily: importing boto3 is a large share of a cold start)."""
        if self._client is not None:
            return self._client
        with self._lock:
            if self._client is None:
                import boto3  # noqa: PLC0415 - deferred on purpose, see above
                from botocore.config import Config  # noqa: PLC0415

                config = Config(
                    max_pool_connections=self._max_pool_connections,
                    retries={"mode": "standard", "total_max_attempts": 4},
                    connect_timeout=3,
                    read_timeout=5,
                )
                self._client = boto3.client("dynamodb", config=config)
            return self._client

    def _query_pages(
        self, pk: str, sk_prefix: str | None, *, projection: str, page_size: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "ConsistentRead": True,
            "ProjectionExpression": projection,
            "ExpressionAttributeValues": {":pk": attr_s(pk)},
        }
        if sk_prefix is None:
            kwargs["KeyConditionExpression"] = "pk = :pk"
        else:
            kwargs["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :prefix)"
            kwargs["ExpressionAttributeValues"][":prefix"] = attr_s(sk_prefix)
        if page_size is not None:
            kwargs["Limit"] = page_size
        while True:
            response = self._query(kwargs)
            yield response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def _query(self, kwargs: dict[str, Any]) -> Any:
        """One Query, tried again a few times with jittered backoff when it fails (it is a read).

        botocore's own retries come first; these cover a burst of throttling or errors longer
        than they last, so that a publish's subscriber read (after its message was numbered:
        nothing can be undone then) seldom gives up and leaves the live fan-out short.
        """
        for attempt in range(QUERY_RETRIES + 1):
            try:
                return self.client.query(**kwargs)
            except Exception:
                if attempt == QUERY_RETRIES:
                    raise
                self._sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))
        raise AssertionError("unreachable")  # pragma: no cover

    def transact(self, items: list[Any]) -> list[str]:
        """Run one TransactWriteItems (see :meth:`_transact`); for the sibling store modules."""
        return self._transact(items)

    def query_pages(
        self, pk: str, sk_prefix: str | None, *, projection: str, page_size: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the items of one partition page by page (strongly consistent); for sibling modules."""
        return self._query_pages(pk, sk_prefix, projection=projection, page_size=page_size)

    def _transact(self, items: list[Any]) -> list[str]:
        """Run one TransactWriteItems.

        A cancellation caused by a concurrent transaction on the same item (``TransactionConflict``,
        e.g. a client subscribing to several channels at once: every subscribe updates its META
        item) is retried with jittered backoff; boto3's retry modes do not retry it.

        Returns:
            ``[]`` on success, else the per-item cancellation codes when a condition failed.

        Raises:
            TransactionCanceledException: Cancelled for another reason, or conflicts persisted.
        """
        client = self.client
        for attempt in range(TRANSACTION_RETRIES + 1):
            try:
                client.transact_write_items(TransactItems=items)
            except client.exceptions.TransactionCanceledException as exc:
                reasons = [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])]
                if CONDITION_FAILED in reasons:
                    return reasons
                if "TransactionConflict" not in reasons or attempt == TRANSACTION_RETRIES:
                    raise
                self._sleep(random.uniform(0, min(0.5, 0.02 * 2**attempt)))
            else:
                return []
        raise AssertionError("unreachable")  # pragma: no cover

    def _batch_delete(self, keys: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(keys), BATCH_WRITE_MAX):
            chunk = keys[start : start + BATCH_WRITE_MAX]
            requests: list[Any] = [{"DeleteRequest": {"Key": k}} for k in chunk]
            for attempt in range(UNPROCESSED_RETRIES + 1):
                response = self.client.batch_write_item(RequestItems={self.table_name: requests})
                requests = list(response.get("UnprocessedItems", {}).get(self.table_name, []))
                if not requests:
                    break
                if attempt == UNPROCESSED_RETRIES:
                    raise RuntimeError(f"{len(requests)} deletes stayed unprocessed after retries")
                self._sleep(random.uniform(0, min(1.0, 0.025 * 2**attempt)))
