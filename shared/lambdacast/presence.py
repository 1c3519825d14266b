"""Presence: who is in a ``presence-`` channel. Members are users; a user's connections are one member.

Item layout (docs/architecture.md)::

    PRES#<ch>  USER#<userId>   userId, info (JSON), conns (string set of connection ids), ttl
    PRES#<ch>  COUNT           members (number of member items), ttl

A connection joins and leaves in the **same transaction** as its subscription rows
(:meth:`ChannelStore.subscribe` / :meth:`~ChannelStore.unsubscribe` with ``extra`` items), and
every step is conditional, so two tabs of one user joining or leaving at once cannot both
announce (or both miss) the member:

* join, user already a member: ``ADD conns :c`` on the member item, condition
  ``attribute_exists(pk)``; no announcement.
* join, new member: ``Put`` the member item, condition ``attribute_not_exists(pk)``, and
  ``ADD members 1`` on ``COUNT`` while below the cap; announce ``member_joined``. If another tab
  created the member item first, the condition fails and the join is retried as the first case.
* leave, other connections remain: ``DELETE conns :c``, condition ``contains(conns, :c) AND
  size(conns) > 1``; no announcement.
* leave, last connection: ``Delete`` the member item, condition ``contains(conns, :c) AND
  size(conns) = 1``, and ``ADD members -1``; announce ``member_left``.

The member count can drift above the truth when a member item expires by TTL (its connections
vanished without ``$disconnect`` or a 410). It is repaired when it matters: a join refused by the
cap recounts the live member items and, if the counter was high, corrects it and tries again.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Final

from lambdacast.channels import CONDITION_FAILED, ChannelStore, ExtraConditionFailed
from lambdacast.errors import TooManyMembers

log = logging.getLogger(__name__)

PRES: Final = "PRES#"
USER: Final = "USER#"
COUNT: Final = "COUNT"
ATTEMPTS: Final = 4


@dataclass(frozen=True, slots=True)
class Member:
    """A presence member: a user and their display info."""

    user_id: str
    info: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The member as it appears in frames: ``{"userId", "info"}``."""
        return {"userId": self.user_id, "info": self.info}


@dataclass(frozen=True, slots=True)
class Change:
    """A membership change to announce: ``member_joined`` or ``member_left`` of ``member`` in ``channel``."""

    kind: str
    channel: str
    member: Member


def _member_key(channel: str, user_id: str) -> dict[str, Any]:
    return {"pk": {"S": PRES + channel}, "sk": {"S": USER + user_id}}


def _count_key(channel: str) -> dict[str, Any]:
    return {"pk": {"S": PRES + channel}, "sk": {"S": COUNT}}


class PresenceStore:
    """Joins, leaves and lists presence members, transactionally with the subscription rows.

    Args:
        store: The channel store (its client, table and transaction helper are shared).
    """

    def __init__(self, store: ChannelStore) -> None:
        self.store = store

    # -- join --------------------------------------------------------------------------------------

    def _existing_member(self, conn: str, channel: str, member: Member, ttl: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.store.table_name,
                "Key": _member_key(channel, member.user_id),
                "UpdateExpression": "ADD conns :c SET info = :info, #ttl = :ttl",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": {
                    ":c": {"SS": [conn]},
                    ":info": {"S": json.dumps(member.info, separators=(",", ":"))},
                    ":ttl": {"N": str(ttl)},
                },
            }
        }

    def _new_member(
        self, conn: str, channel: str, member: Member, ttl: int, cap: int
    ) -> list[dict[str, Any]]:
        return [
            {
                "Put": {
                    "TableName": self.store.table_name,
                    "Item": {
                        **_member_key(channel, member.user_id),
                        "userId": {"S": member.user_id},
                        "info": {"S": json.dumps(member.info, separators=(",", ":"))},
                        "conns": {"SS": [conn]},
                        "ttl": {"N": str(ttl)},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self.store.table_name,
                    "Key": _count_key(channel),
                    # if_not_exists: a late-connected joiner never shortens the count's TTL;
                    # _refresh_count extends it after every join.
                    "UpdateExpression": "ADD members :one SET #ttl = if_not_exists(#ttl, :ttl)",
                    "ConditionExpression": "attribute_not_exists(members) OR members < :cap",
                    "ExpressionAttributeNames": {"#ttl": "ttl"},
                    "ExpressionAttributeValues": {
                        ":one": {"N": "1"},
                        ":cap": {"N": str(cap)},
                        ":ttl": {"N": str(ttl)},
                    },
                }
            },
        ]

    def subscribe(
        self,
        conn: str,
        channel: str,
        member: Member,
        *,
        max_channels: int,
        ttl_epoch: int,
        cap: int,
        now_epoch: int,
    ) -> Change | None:
        """Subscribe ``conn`` to a presence channel and make its user a member, in one transaction.

        Args:
            conn: The connection id.
            channel: The presence channel.
            member: The connection's user and display info.
            max_channels: The connection's subscription limit.
            ttl_epoch: Expiry of the connection's items.
            cap: The most members the channel may have.
            now_epoch: The current time, seconds since epoch (for the recount).

        Returns:
            The ``member_joined`` change when this is the user's first connection, else ``None``.

        Raises:
            TooManyMembers: The user is not a member and the channel is full.
            TooManyChannels: The connection's subscription limit is reached.
            UnknownConnection: The connection is not recorded.
        """
        recounted = False
        for _ in range(ATTEMPTS):
            try:
                self.store.subscribe(
                    conn,
                    channel,
                    max_channels=max_channels,
                    ttl_epoch=ttl_epoch,
                    extra=[self._existing_member(conn, channel, member, ttl_epoch)],
                )
            except ExtraConditionFailed:
                pass  # not a member yet: join as a new one
            else:
                self._refresh_count(channel, ttl_epoch, now_epoch)
                return None
            try:
                new = self.store.subscribe(
                    conn,
                    channel,
                    max_channels=max_channels,
                    ttl_epoch=ttl_epoch,
                    extra=self._new_member(conn, channel, member, ttl_epoch, cap),
                )
            except ExtraConditionFailed as exc:
                if exc.reasons[0] == CONDITION_FAILED:
                    continue  # another tab of this user joined meanwhile: join as an existing member
                if recounted or not self._repair_count(channel, now_epoch):
                    raise TooManyMembers(
                        f"{channel!r} already has {cap} members, the limit; try again later."
                    ) from None
                recounted = True
                continue
            self._refresh_count(channel, ttl_epoch, now_epoch)
            return Change("member_joined", channel, member) if new else None
        raise RuntimeError(f"presence join on {channel!r} kept conflicting")

    def _refresh_count(self, channel: str, ttl_epoch: int, now_epoch: int) -> None:
        """Keep the COUNT item alive as long as its members: extend its TTL to ``ttl_epoch``.

        A COUNT that expired while members remained (its TTL used to be set only on a new
        member's join), or that a join has just recreated at 1, is corrected from a recount of the
        live members, so the count cannot drift low. Best-effort:
        a failure is logged (the cap check recounts a high count when it is hit).
        """
        client = self.store.client
        try:
            client.update_item(
                TableName=self.store.table_name,
                Key=_count_key(channel),
                UpdateExpression="SET #ttl = :ttl",
                ConditionExpression="attribute_exists(members) AND #ttl < :ttl",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={":ttl": {"N": str(ttl_epoch)}},
            )
            return
        except client.exceptions.ConditionalCheckFailedException:
            pass  # already alive long enough, or gone
        except Exception:
            log.warning("could not extend the member count's TTL on %s", channel, exc_info=True)
            return
        try:
            item = client.get_item(
                TableName=self.store.table_name, Key=_count_key(channel), ConsistentRead=True
            ).get("Item")
            item = item or {}
            alive = int(item.get("ttl", {}).get("N", "0")) > now_epoch
            counted = int(item["members"]["N"]) if "members" in item else 0
            # A count of 1 may have just been recreated by this join after the old one expired.
            if alive and counted > 1:
                return
            live = len(self.members(channel, now_epoch=now_epoch))
            if alive and counted == live:
                return
            client.update_item(
                TableName=self.store.table_name,
                Key=_count_key(channel),
                UpdateExpression="SET members = :live, #ttl = :ttl",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={":live": {"N": str(live)}, ":ttl": {"N": str(ttl_epoch)}},
            )
        except Exception:
            log.warning("could not recount the members of %s", channel, exc_info=True)

    def _repair_count(self, channel: str, now_epoch: int) -> bool:
        """Recount live members; correct a counter that drifted. Returns whether it was too high."""
        live = len(self.members(channel, now_epoch=now_epoch))
        item = self.store.client.get_item(
            TableName=self.store.table_name, Key=_count_key(channel), ConsistentRead=True
        ).get("Item")
        counted = int(item["members"]["N"]) if item and "members" in item else 0
        if counted == live:
            return False
        client = self.store.client
        # A concurrent change makes the condition fail: the retry then reads the new value.
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
            client.update_item(
                TableName=self.store.table_name,
                Key=_count_key(channel),
                UpdateExpression="SET members = :live",
                ConditionExpression="members = :counted",
                ExpressionAttributeValues={":live": {"N": str(live)}, ":counted": {"N": str(counted)}},
            )
        return counted > live

    # -- leave -------------------------------------------------------------------------------------

    def _leave_items(self, conn: str, channel: str, user_id: str, *, last: bool) -> list[dict[str, Any]]:
        values: dict[str, Any] = {":c": {"S": conn}, ":one": {"N": "1"}}
        if not last:
            return [
                {
                    "Update": {
                        "TableName": self.store.table_name,
                        "Key": _member_key(channel, user_id),
                        "UpdateExpression": "DELETE conns :cs",
                        "ConditionExpression": "contains(conns, :c) AND size(conns) > :one",
                        "ExpressionAttributeValues": {**values, ":cs": {"SS": [conn]}},
                    }
                }
            ]
        return [
            {
                "Delete": {
                    "TableName": self.store.table_name,
                    "Key": _member_key(channel, user_id),
                    "ConditionExpression": "contains(conns, :c) AND size(conns) = :one",
                    "ExpressionAttributeValues": values,
                }
            },
            {
                "Update": {
                    "TableName": self.store.table_name,
                    "Key": _count_key(channel),
                    "UpdateExpression": "ADD members :minus",
                    "ExpressionAttributeValues": {":minus": {"N": "-1"}},
                }
            },
        ]

    def unsubscribe(self, conn: str, channel: str, user_id: str) -> Change | None:
        """Unsubscribe ``conn`` and drop it from its user's membership, in one transaction.

        Returns:
            The ``member_left`` change when this was the user's last connection, else ``None``.
        """
        member = self._member_of(channel, user_id)
        for _ in range(ATTEMPTS):
            for last in (False, True):
                try:
                    removed = self.store.unsubscribe(
                        conn, channel, extra=self._leave_items(conn, channel, user_id, last=last)
                    )
                except ExtraConditionFailed:
                    continue
                if removed and last:
                    return Change("member_left", channel, member)
                return None
        # The membership does not hold this connection (it expired): still drop the subscription.
        self.store.unsubscribe(conn, channel)
        return None

    def leave(self, conn: str, channel: str, user_id: str) -> Change | None:
        """Drop ``conn`` from its user's membership when its subscription rows are already gone.

        Used by ``$disconnect`` and the 410 cleanup (which delete the rows in batches).

        Returns:
            The ``member_left`` change when this was the user's last connection, else ``None``.
        """
        member = self._member_of(channel, user_id)
        for _ in range(ATTEMPTS):
            for last in (False, True):
                if self.store.transact(self._leave_items(conn, channel, user_id, last=last)):
                    continue
                return Change("member_left", channel, member) if last else None
        return None

    def _member_of(self, channel: str, user_id: str) -> Member:
        """The member as stored (read before leaving, so ``member_left`` carries the same info)."""
        item = self.store.client.get_item(
            TableName=self.store.table_name, Key=_member_key(channel, user_id), ConsistentRead=True
        ).get("Item")
        return Member(user_id=user_id, info=_info(item or {}))

    # -- list --------------------------------------------------------------------------------------

    def members(self, channel: str, *, now_epoch: int) -> list[Member]:
        """The channel's live members (strongly consistent; expired items are skipped), by user id."""
        found: list[Member] = []
        kwargs: dict[str, Any] = {
            "TableName": self.store.table_name,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :user)",
            "FilterExpression": "#ttl > :now",
            "ProjectionExpression": "userId, info",
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": {
                ":pk": {"S": PRES + channel},
                ":user": {"S": USER},
                ":now": {"N": str(now_epoch)},
            },
        }
        while True:
            response = self.store.client.query(**kwargs)
            found.extend(Member(user_id=i["userId"]["S"], info=_info(i)) for i in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        found.sort(key=lambda m: m.user_id)
        return found


def _info(item: dict[str, Any]) -> dict[str, Any]:
    try:
        info = json.loads(item.get("info", {}).get("S", "{}"))
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}
