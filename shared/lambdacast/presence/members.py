"""A presence channel's member items: what they hold, and the conditional writes that change them.

Item layout (docs/architecture.md)::

    PRES#<ch>  USER#<userId>   userId, info (JSON), conns (string set of connection ids), ttl

A member item's ``ttl`` is the latest of its connections' expiries: it never moves back, so a
member whose newest tab is alive is never dropped by DynamoDB's TTL. Every write below is a
transaction item whose condition holds only if the item is still as the writer read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from lambdacast.presence.tally import PRES, USER

MEMBER_JOINED: Final = "member_joined"
MEMBER_LEFT: Final = "member_left"


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
    """A membership change to announce: ``member_joined`` or ``member_left`` (``kind``) at version ``v``."""

    kind: str
    channel: str
    member: Member
    v: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The member list at a version: every change after ``v`` is announced with a higher ``v``.

    Attributes:
        v: The presence version read before the list (0: no change ever recorded).
        members: The live members, by user id.
        expired: How many member items have expired but are still stored.
    """

    v: int
    members: list[Member]
    expired: int


@dataclass(frozen=True, slots=True)
class Record:
    """A member item as read."""

    user_id: str
    info: dict[str, Any]
    conns: frozenset[str]
    ttl: int

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Record:
        """The record from its item."""
        return cls(
            user_id=item["userId"]["S"],
            info=_info(item),
            conns=frozenset(item.get("conns", {}).get("SS", [])),
            ttl=int(item.get("ttl", {"N": "0"})["N"]),
        )

    @property
    def member(self) -> Member:
        """The member it records."""
        return Member(self.user_id, self.info)


def member_key(channel: str, user_id: str) -> dict[str, Any]:
    """The key of a user's member item."""
    return {"pk": {"S": PRES + channel}, "sk": {"S": USER + user_id}}


def records_query(table: str, channel: str, *, holding: str | None = None) -> dict[str, Any]:
    """The Query of a channel's stored member items (expired ones too); of those holding a connection."""
    query: dict[str, Any] = {
        "TableName": table,
        "ConsistentRead": True,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :user)",
        "ExpressionAttributeNames": {"#ttl": "ttl"},
        "ProjectionExpression": "userId, info, conns, #ttl",
        "ExpressionAttributeValues": {":pk": {"S": PRES + channel}, ":user": {"S": USER}},
    }
    if holding is not None:
        query["FilterExpression"] = "contains(conns, :c)"
        query["ExpressionAttributeValues"][":c"] = {"S": holding}
    return query


def put(
    table: str, channel: str, member: Member, conn: str, *, ttl: int, now: int, replace: bool
) -> dict[str, Any]:
    """A new member item holding ``conn``: where none is, or (``replace``) over the user's expired one."""
    item: dict[str, Any] = {
        "TableName": table,
        "Item": {
            **member_key(channel, member.user_id),
            "userId": {"S": member.user_id},
            "info": {"S": _dumps(member.info)},
            "conns": {"SS": [conn]},
            "ttl": {"N": str(ttl)},
        },
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    if replace:  # its connections are all gone: start over
        item["ConditionExpression"] = "#ttl <= :now"
        item["ExpressionAttributeNames"] = {"#ttl": "ttl"}
        item["ExpressionAttributeValues"] = {":now": {"N": str(now)}}
    return {"Put": item}


def add_connection(
    table: str, channel: str, member: Member, conn: str, *, ttl: int, now: int, extend: bool
) -> dict[str, Any]:
    """Add ``conn`` to a live member; its expiry becomes ``ttl`` only when that is later (``extend``)."""
    return {
        "Update": {
            "TableName": table,
            "Key": member_key(channel, member.user_id),
            "UpdateExpression": "ADD conns :c SET info = :info" + (", #ttl = :ttl" if extend else ""),
            "ConditionExpression": "#ttl > :now AND " + ("#ttl < :ttl" if extend else "#ttl >= :ttl"),
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": {
                ":c": {"SS": [conn]},
                ":info": {"S": _dumps(member.info)},
                ":ttl": {"N": str(ttl)},
                ":now": {"N": str(now)},
            },
        }
    }


def remove_connection(table: str, channel: str, user_id: str, conn: str) -> dict[str, Any]:
    """Drop ``conn`` from a member that keeps other connections."""
    return {
        "Update": {
            "TableName": table,
            "Key": member_key(channel, user_id),
            "UpdateExpression": "DELETE conns :cs",
            "ConditionExpression": "contains(conns, :c) AND size(conns) > :one",
            "ExpressionAttributeValues": {":c": {"S": conn}, ":cs": {"SS": [conn]}, ":one": {"N": "1"}},
        }
    }


def delete_last(table: str, channel: str, user_id: str, conn: str) -> dict[str, Any]:
    """Delete a member whose only connection is ``conn``."""
    return {
        "Delete": {
            "TableName": table,
            "Key": member_key(channel, user_id),
            "ConditionExpression": "contains(conns, :c) AND size(conns) = :one",
            "ExpressionAttributeValues": {":c": {"S": conn}, ":one": {"N": "1"}},
        }
    }


def delete_expired(table: str, channel: str, user_id: str, *, now: int) -> dict[str, Any]:
    """Delete a member item that is still expired (a tab of that user joining meanwhile keeps it)."""
    return {
        "Delete": {
            "TableName": table,
            "Key": member_key(channel, user_id),
            "ConditionExpression": "#ttl <= :now",
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": {":now": {"N": str(now)}},
        }
    }


def _dumps(info: dict[str, Any]) -> str:
    return json.dumps(info, separators=(",", ":"))


def _info(item: dict[str, Any]) -> dict[str, Any]:
    try:
        info = json.loads(item.get("info", {}).get("S", "{}"))
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}
