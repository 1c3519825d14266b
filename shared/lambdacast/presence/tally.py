"""A presence channel's tally: its ``COUNT`` item (member count, presence version, recent changes).

Item layout (docs/architecture.md)::

    PRES#<ch>  COUNT  members (member items), v (presence version), recent (token -> v), ttl

Every membership change (a user's first connection in, last connection out, an expired member
removed) writes this item **inside the change's own transaction**, as a compare-and-set on what
was read just before: condition ``v = :read`` (or ``attribute_not_exists(v)`` when there is no
item yet), ``SET v = :read + 1, members = :read_members ± 1``. So:

* ``v`` goes up by exactly one per change, and the writer knows the version its change got
  (a transaction returns no values: an ``ADD`` could not tell it);
* ``members`` is exact: no write ever sets it from a stale read (the CAS refuses it);
* the change carries a random ``token``, kept in ``recent`` with the version it got. When a
  transaction's reply is lost and botocore's retry fails the conditions the first attempt
  satisfied (moto, or any store without DynamoDB's ``ClientRequestToken`` idempotency), or when
  botocore gives up after an attempt that was applied, reading the tally back tells whether that
  change committed, and at which version.

A new ``COUNT`` starts ``v`` at the current time in milliseconds, not at 1: a channel whose
``COUNT`` expired (after all its members did) and is created again continues above every version
it handed out before (changes are serialized through one item, so they cannot outpace the
millisecond clock), and clients holding an old version do not mistake new frames for stale ones.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

PRES: Final = "PRES#"
USER: Final = "USER#"
COUNT: Final = "COUNT"
#: How many recent changes keep their token on the tally: enough to outlast a retried request
#: (milliseconds to seconds) on the busiest channel, small enough to keep the item under 1 KB.
RECENT: Final = 16


def count_key(channel: str) -> dict[str, Any]:
    """The key of the channel's tally."""
    return {"pk": {"S": PRES + channel}, "sk": {"S": COUNT}}


def new_token() -> str:
    """A random token naming one membership-change attempt (72 bits)."""
    return secrets.token_urlsafe(9)


@dataclass(frozen=True, slots=True)
class Tally:
    """The ``COUNT`` item as read (strongly consistent).

    Attributes:
        channel: The presence channel.
        v: The presence version; ``None`` when there is no item (or one written before versions
            existed), which the next change creates.
        members: How many member items the channel has.
        ttl: The item's expiry: never earlier than any member's.
        recent: Tokens of the latest changes and the versions they got.
    """

    channel: str
    v: int | None = None
    members: int = 0
    ttl: int = 0
    recent: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_item(cls, channel: str, item: Mapping[str, Any] | None) -> Tally:
        """The tally from its item (``None``: no item)."""
        if not item or "v" not in item:
            return cls(channel)
        return cls(
            channel,
            v=int(item["v"]["N"]),
            members=int(item.get("members", {"N": "0"})["N"]),
            ttl=int(item.get("ttl", {"N": "0"})["N"]),
            recent={t: int(n["N"]) for t, n in item.get("recent", {}).get("M", {}).items()},
        )

    def committed(self, token: str) -> int | None:
        """The version the change of ``token`` got, if it committed (and is still recent)."""
        return self.recent.get(token)


@dataclass(frozen=True, slots=True)
class CountWrite:
    """A transaction item writing the tally, and the version the change gets when it commits."""

    item: dict[str, Any]
    v: int


def write(
    table: str, tally: Tally, *, members: int, ttl: int, token: str | None, first_v: int, bump: int = 1
) -> CountWrite:
    """The tally write of one change: a create when there is no tally, else a compare-and-set.

    Args:
        table: The table.
        tally: The tally as read before the transaction.
        members: The member count after the change.
        ttl: The tally's expiry after the change (the caller passes the latest it must cover); a
            concurrent extension beyond it fails the condition, so the expiry never goes back.
        token: The change's token, recorded in ``recent``; ``None`` when no membership changed
            (a count corrected, a tally recreated).
        first_v: The version of a tally created by this write (the current time, ms).
        bump: How much the version goes up when the tally exists (the number of changes).

    Returns:
        The transaction item (``{"Update": ...}``) and the version it commits.
    """
    values: dict[str, Any] = {":members": {"N": str(members)}, ":ttl": {"N": str(ttl)}}
    if tally.v is None:
        v = first_v
        condition = "attribute_not_exists(v)"
        recent: dict[str, int] = {}
    else:
        v = tally.v + bump
        condition = "v = :read AND #ttl <= :ttl"
        values[":read"] = {"N": str(tally.v)}
        recent = {t: n for t, n in tally.recent.items() if n > v - RECENT}
    if token is not None:
        recent[token] = v
    values[":v"] = {"N": str(v)}
    values[":recent"] = {"M": {t: {"N": str(n)} for t, n in recent.items()}}
    return CountWrite(
        item={
            "Update": {
                "TableName": table,
                "Key": count_key(tally.channel),
                "UpdateExpression": "SET members = :members, v = :v, recent = :recent, #ttl = :ttl",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": values,
            }
        },
        v=v,
    )


def extend(table: str, channel: str, ttl: int) -> dict[str, Any]:
    """The transaction item extending an existing tally's expiry to ``ttl`` (only forwards)."""
    return {
        "Update": {
            "TableName": table,
            "Key": count_key(channel),
            "UpdateExpression": "SET #ttl = :ttl",
            "ConditionExpression": "attribute_exists(v) AND #ttl < :ttl",
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": {":ttl": {"N": str(ttl)}},
        }
    }
