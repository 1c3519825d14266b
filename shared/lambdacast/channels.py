"""DynamoDB store: connections and subscriptions (both sides); counters live in lambdacast.numbering.

Item layout (docs/architecture.md)::

    CONN#<id>  META        connectedAt, sourceIp, userId, subs, closing (once it is being removed), ttl
    CHAN#<ch>  CONN#<id>   fan-out side of a subscription, ttl
    CONN#<id>  CHAN#<ch>   cleanup side of a subscription, ttl
    USER#<sub> CONN#<id>   a user's connection (for the admin API), ttl
    USER#<sub> BAN         the user is refused new connections until ttl

The table calls themselves (client, retried queries and transactions, batch deletes) are
:class:`lambdacast.table.Table`'s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from lambdacast.errors import Banned, TooManyChannels, UnknownConnection
from lambdacast.table import CONDITION_FAILED, Table, attr_n, attr_s, item_key

CONN: Final = "CONN#"
CHAN: Final = "CHAN#"
META: Final = "META"
USER: Final = "USER#"
BAN: Final = "BAN"


class ExtraConditionFailed(Exception):
    """A condition on one of the ``extra`` transaction items failed; nothing was written.

    Args:
        reasons: The cancellation codes of the extra items, in order.
    """

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__(f"extra transaction item condition failed: {list(reasons)}")
        self.reasons = list(reasons)


@dataclass(frozen=True, slots=True)
class Connection:
    """A recorded connection (its META item)."""

    connection_id: str
    connected_at: int
    source_ip: str | None
    user_id: str | None
    subs: int
    ttl: int
    closing: bool = False
    """Its removal has begun: no subscription may be added to it any more."""


def _connection(connection_id: str, item: dict[str, Any]) -> Connection:
    """A connection from its META item."""
    return Connection(
        connection_id=connection_id,
        connected_at=int(item["connectedAt"]["N"]),
        source_ip=item.get("sourceIp", {}).get("S"),
        user_id=item.get("userId", {}).get("S"),
        subs=int(item.get("subs", {"N": "0"})["N"]),
        ttl=int(item["ttl"]["N"]),
        closing=item.get("closing", {}).get("BOOL", False),
    )


class ChannelStore(Table):
    """Connections, subscriptions and counters in one table (constructed as :class:`Table` is)."""

    # -- connections -------------------------------------------------------------------------------

    def put_connection(
        self,
        connection_id: str,
        *,
        connected_at: int,
        source_ip: str | None,
        user_id: str | None,
        ttl: int,
        now_epoch: int | None = None,
    ) -> None:
        """Record a connection (``$connect``).

        A connection with a user is also listed under its user (``USER#<sub>`` / ``CONN#<id>``, for
        the admin API's per-user disconnect), in one transaction that holds only while the user
        is not banned.

        Args:
            connection_id: API Gateway's connection id.
            connected_at: When it connected, ms since epoch.
            source_ip: The client's address.
            user_id: The authorized user, if any.
            ttl: Expiry of every item of this connection, seconds since epoch.
            now_epoch: The current time, seconds since epoch (a ban past its end is no ban).

        Raises:
            Banned: The user is banned; nothing was written.
        """
        item: dict[str, Any] = {
            **item_key(CONN + connection_id, META),
            "connectedAt": attr_n(connected_at),
            "subs": attr_n(0),
            "ttl": attr_n(ttl),
        }
        if source_ip:
            item["sourceIp"] = attr_s(source_ip)
        if not user_id:
            self.client.put_item(TableName=self.table_name, Item=item)
            return
        item["userId"] = attr_s(user_id)
        now = now_epoch if now_epoch is not None else connected_at // 1000
        reasons = self._transact(
            [
                {
                    "ConditionCheck": {
                        "TableName": self.table_name,
                        "Key": item_key(USER + user_id, BAN),
                        "ConditionExpression": "attribute_not_exists(pk) OR #ttl <= :now",
                        "ExpressionAttributeNames": {"#ttl": "ttl"},
                        "ExpressionAttributeValues": {":now": attr_n(now)},
                    }
                },
                {"Put": {"TableName": self.table_name, "Item": item}},
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": {**item_key(USER + user_id, CONN + connection_id), "ttl": attr_n(ttl)},
                    }
                },
            ]
        )
        if reasons:
            raise Banned(f"user {user_id!r} is banned")

    def user_connections(self, user_id: str) -> list[str]:
        """The connections recorded for a user (strongly consistent)."""
        return [
            item["sk"]["S"][len(CONN) :]
            for page in self._query_pages(USER + user_id, CONN, projection="sk")
            for item in page
        ]

    def ban_user(self, user_id: str, *, until_epoch: int) -> None:
        """Refuse the user's new connections until ``until_epoch`` (seconds since epoch)."""
        self.client.put_item(
            TableName=self.table_name,
            Item={**item_key(USER + user_id, BAN), "ttl": attr_n(until_epoch)},
        )

    def get_connection(self, connection_id: str) -> Connection | None:
        """Read a connection's META item (strongly consistent); ``None`` when it is not recorded."""
        item = self.client.get_item(
            TableName=self.table_name, Key=item_key(CONN + connection_id, META), ConsistentRead=True
        ).get("Item")
        return None if item is None else _connection(connection_id, item)

    def close_connection(self, connection_id: str) -> Connection | None:
        """Mark a connection as being removed, and return its META item; ``None`` when not recorded.

        From this write on, :meth:`subscribe` refuses the connection (its transaction's META
        condition), so the subscriptions read afterwards (:meth:`connection_channels`) are all
        it will ever have: a subscribe racing the removal cannot leave rows (or a presence
        membership) behind. Idempotent.
        """
        client = self.client
        try:
            item = client.update_item(
                TableName=self.table_name,
                Key=item_key(CONN + connection_id, META),
                UpdateExpression="SET closing = :yes",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":yes": {"BOOL": True}},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except client.exceptions.ConditionalCheckFailedException:
            return None
        return _connection(connection_id, item)

    def connection_channels(self, connection_id: str) -> list[str]:
        """The channels a connection is subscribed to (strongly consistent)."""
        return [
            item["sk"]["S"][len(CHAN) :]
            for page in self._query_pages(CONN + connection_id, CHAN, projection="sk")
            for item in page
        ]

    def remove_connection(
        self, connection_id: str, channels: Sequence[str] | None = None, *, user_id: str | None = None
    ) -> list[str]:
        """Delete every subscription of a connection, both sides, and then its META item.

        Deletes in batches of 25, retrying unprocessed items with backoff. META goes last: while
        any row of the connection remains, so does the record of who it was (its user id, which
        a presence leave needs), so an interrupted removal can be run again. Safe to repeat.

        Args:
            connection_id: The connection.
            channels: Its subscriptions, when the caller has just read them after
                :meth:`close_connection` (no subscription can be added since); read here otherwise.
            user_id: Its user, whose listing of it goes too.

        Returns:
            The channels it was subscribed to.
        """
        if channels is None:
            channels = self.connection_channels(connection_id)
        keys: list[dict[str, Any]] = []
        for channel in channels:
            keys.append(item_key(CONN + connection_id, CHAN + channel))
            keys.append(item_key(CHAN + channel, CONN + connection_id))
        if user_id:
            keys.append(item_key(USER + user_id, CONN + connection_id))
        self._batch_delete(keys)
        self.client.delete_item(TableName=self.table_name, Key=item_key(CONN + connection_id, META))
        return list(channels)

    # -- subscriptions -----------------------------------------------------------------------------

    def subscribe(
        self,
        connection_id: str,
        channel: str,
        *,
        max_channels: int,
        ttl_epoch: int,
        extra: Sequence[dict[str, Any]] = (),
    ) -> bool:
        """Subscribe a connection to a channel, atomically and idempotently.

        Both subscription rows and the connection's ``subs`` counter change in one transaction.
        The rows are written only if absent (so a repeat changes nothing) and the counter only
        while below ``max_channels`` (so concurrent subscribes cannot overshoot the limit).

        Args:
            connection_id: The connection.
            channel: The channel.
            max_channels: The most subscriptions a connection may hold.
            ttl_epoch: Expiry of both rows, seconds since epoch (the connection's own expiry).
            extra: More transaction items committed with the subscription (presence membership).

        Returns:
            ``True`` if the subscription is new, ``False`` if it already existed.

        Raises:
            TooManyChannels: The connection already holds ``max_channels`` subscriptions.
            UnknownConnection: The connection is not recorded.
            ExtraConditionFailed: A condition of an ``extra`` item failed (nothing was written).
        """
        ttl = attr_n(ttl_epoch)
        absent = "attribute_not_exists(pk)"
        reasons = self._transact(
            [
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": {**item_key(CHAN + channel, CONN + connection_id), "ttl": ttl},
                        "ConditionExpression": absent,
                    }
                },
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": {**item_key(CONN + connection_id, CHAN + channel), "ttl": ttl},
                        "ConditionExpression": absent,
                    }
                },
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": item_key(CONN + connection_id, META),
                        "UpdateExpression": "ADD subs :one",
                        # A connection being removed takes no new subscription (close_connection).
                        "ConditionExpression": (
                            "attribute_exists(pk) AND subs < :max AND attribute_not_exists(closing)"
                        ),
                        "ExpressionAttributeValues": {":one": attr_n(1), ":max": attr_n(max_channels)},
                    }
                },
                *extra,
            ]
        )
        if not reasons:
            return True
        if CONDITION_FAILED in reasons[:2]:
            return False
        if reasons[2] != CONDITION_FAILED and CONDITION_FAILED in reasons[3:]:
            raise ExtraConditionFailed(reasons[3:])
        record = self.get_connection(connection_id)
        if record is None or record.closing:
            raise UnknownConnection("This connection is not registered (it may have expired); reconnect.")
        raise TooManyChannels(
            f"This connection is already subscribed to {max_channels} channels, the limit; "
            "unsubscribe from one first."
        )

    def unsubscribe(self, connection_id: str, channel: str, *, extra: Sequence[dict[str, Any]] = ()) -> bool:
        """Remove a subscription (both sides) and decrement the counter, atomically and idempotently.

        Args:
            connection_id: The connection.
            channel: The channel.
            extra: More transaction items committed with the removal (presence membership).

        Returns:
            ``True`` if a subscription was removed, ``False`` if there was none.

        Raises:
            ExtraConditionFailed: A condition of an ``extra`` item failed (nothing was written).
        """
        reasons = self._transact([*self.unsubscribe_items(connection_id, channel), *extra])
        if not reasons:
            return True
        if reasons[0] == CONDITION_FAILED:
            return False
        if CONDITION_FAILED in reasons[3:]:
            raise ExtraConditionFailed(reasons[3:])
        # No counter to decrement (the META item expired): still drop both rows.
        self._batch_delete(
            [item_key(CHAN + channel, CONN + connection_id), item_key(CONN + connection_id, CHAN + channel)]
        )
        return True

    def unsubscribe_items(self, connection_id: str, channel: str) -> list[dict[str, Any]]:
        """The three transaction items that remove a subscription (see :meth:`unsubscribe`).

        In order: the fan-out row (condition: it exists), the cleanup row, the ``subs`` decrement
        (condition: META exists and ``subs > 0``). For callers that read the cancellation codes
        themselves (presence: a lost reply must not be mistaken for "not subscribed").
        """
        return [
            {
                "Delete": {
                    "TableName": self.table_name,
                    "Key": item_key(CHAN + channel, CONN + connection_id),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {"Delete": {"TableName": self.table_name, "Key": item_key(CONN + connection_id, CHAN + channel)}},
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": item_key(CONN + connection_id, META),
                    "UpdateExpression": "ADD subs :minus",
                    "ConditionExpression": "attribute_exists(pk) AND subs > :zero",
                    "ExpressionAttributeValues": {":minus": attr_n(-1), ":zero": attr_n(0)},
                }
            },
        ]

    def is_subscribed(self, connection_id: str, channel: str) -> bool:
        """Return whether the connection is subscribed to the channel (strongly consistent read)."""
        item = self.client.get_item(
            TableName=self.table_name,
            Key=item_key(CHAN + channel, CONN + connection_id),
            ConsistentRead=True,
            ProjectionExpression="pk",
        ).get("Item")
        return item is not None

    def subscription_condition(self, connection_id: str, channel: str) -> dict[str, Any]:
        """A transaction item that holds only while ``connection_id`` is subscribed to ``channel``."""
        return {
            "ConditionCheck": {
                "TableName": self.table_name,
                "Key": item_key(CHAN + channel, CONN + connection_id),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }

    def subscriber_pages(self, channel: str, *, page_size: int | None = None) -> Iterator[list[str]]:
        """Yield the channel's subscribers, one Query page at a time.

        A strongly consistent Query on ``CHAN#<channel>`` with ``begins_with(sk, 'CONN#')``: never a
        Scan, never a GSI, so a subscription acknowledged before the publish is always seen.

        Args:
            channel: The channel.
            page_size: The Query ``Limit`` (DynamoDB's 1 MB page when omitted).

        Yields:
            Lists of connection ids.
        """
        for page in self._query_pages(CHAN + channel, CONN, projection="sk", page_size=page_size):
            yield [item["sk"]["S"][len(CONN) :] for item in page]
