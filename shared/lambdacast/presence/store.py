"""Joining, leaving and listing presence members, transactionally with the subscription rows.

A connection joins and leaves in the **same transaction** as its subscription rows (extra items
of :meth:`ChannelStore.subscribe`, or after :meth:`ChannelStore.unsubscribe_items`). Each attempt
reads the tally and the user's member item (strongly consistent), writes conditionally on what it
read (:mod:`~lambdacast.presence.members`, :mod:`~lambdacast.presence.tally`), and reads again
after any condition failure:

* join, the user a live member: add the connection (the member's and the tally's TTL only go
  forward). No change.
* join, the user not a member: put the member item, with the tally's compare-and-set (refused by
  the cap when the tally already counts ``cap``). ``member_joined`` at the next version.
* leave, other connections remain: drop the connection. No change.
* leave, the last connection: delete the member item, with the tally's compare-and-set.
  ``member_left`` at the next version.

A member item whose connections all vanished without ``$disconnect`` or a 410 expires by TTL: it
is left out of the list at once, and removed (``member_left``) when the channel is listed or full.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from lambdacast.channels import ChannelStore, ExtraConditionFailed
from lambdacast.errors import TooManyChannels, TooManyMembers, UnknownConnection
from lambdacast.presence import members as items
from lambdacast.presence import tally as tallies
from lambdacast.presence.members import MEMBER_JOINED, MEMBER_LEFT, Change, Member, Record, Snapshot
from lambdacast.presence.tally import CountWrite, Tally
from lambdacast.table import CONDITION_FAILED

log = logging.getLogger(__name__)

#: Membership changes of one channel are serialized through its tally: in a burst of joins all but
#: one attempt per round re-read and retry, so the bound is generous (with jittered backoff).
ATTEMPTS: Final = 32


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Attempts:
    """One request's membership-changing attempts: token -> the change it makes if it commits."""

    kind: str
    channel: str
    pending: dict[str, Member] = field(default_factory=dict)

    def new(self, member: Member) -> str:
        token = tallies.new_token()
        self.pending[token] = member
        return token

    def committed(self, tally: Tally) -> Change | None:
        """The change one of the attempts committed, as the tally records it."""
        for token, member in self.pending.items():
            v = tally.committed(token)
            if v is not None:
                return Change(self.kind, self.channel, member, v)
        return None


class PresenceStore:
    """Joins, leaves and lists presence members.

    Args:
        store: The channel store (its client, table and transaction helper are shared).
        on_change: Receives changes made on the way to another (members evicted to make room
            for a join), to be announced; they are logged and dropped when omitted.
        clock: Milliseconds since the epoch (the first version of a new tally).
        sleep: The backoff between attempts that lost a race.
    """

    def __init__(
        self,
        store: ChannelStore,
        *,
        on_change: Callable[[Change], None] | None = None,
        clock: Callable[[], int] = _now_ms,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self._table = store.table_name
        self._on_change = on_change
        self._clock = clock
        self._sleep = sleep

    # -- join --------------------------------------------------------------------------------------

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
            now_epoch: The current time, seconds since epoch.

        Returns:
            The ``member_joined`` change when this is the user's first connection, else ``None``.

        Raises:
            TooManyMembers: The user is not a member and the channel is full.
            TooManyChannels: The connection's subscription limit is reached.
            UnknownConnection: The connection is not recorded (or is being removed).
        """
        attempts = _Attempts(MEMBER_JOINED, channel)
        repaired = False
        for attempt in range(ATTEMPTS):
            self._backoff(attempt)
            tally = self._tally(channel)
            done = attempts.committed(tally)
            if done is not None:
                return done
            record = self._record(channel, member.user_id)
            live = record is not None and record.ttl > now_epoch
            if record is None and self._counted(channel, tally) >= cap:
                if repaired:
                    raise TooManyMembers(
                        f"{channel!r} already has {cap} members, the limit; try again later."
                    )
                self._repair(channel, now_epoch)
                repaired = True
                continue
            token = None if live else attempts.new(member)
            extra, write = self._join_items(
                conn,
                channel,
                member,
                record=record,
                tally=tally,
                token=token,
                ttl_epoch=ttl_epoch,
                now_epoch=now_epoch,
            )
            try:
                new = self.store.subscribe(
                    conn, channel, max_channels=max_channels, ttl_epoch=ttl_epoch, extra=extra
                )
            except ExtraConditionFailed:
                continue  # the member or the tally changed since they were read: read again
            except (TooManyChannels, UnknownConnection):
                raise
            except Exception:
                settled = self._settled(attempts, channel) if token else None
                if settled is None:
                    raise
                return settled
            if write is None:  # another tab: no change to announce
                return None
            if new:
                return Change(MEMBER_JOINED, channel, member, write.v)
            # The rows already existed, so this attempt wrote nothing: an earlier attempt of this
            # request committed (its reply was lost; botocore's retry failed the conditions it had
            # met), or this connection's own concurrent subscribe did. The tally tells which.
            return attempts.committed(self._tally(channel))
        raise RuntimeError(f"presence join on {channel!r} kept conflicting")

    def _join_items(
        self,
        conn: str,
        channel: str,
        member: Member,
        *,
        record: Record | None,
        tally: Tally,
        token: str | None,
        ttl_epoch: int,
        now_epoch: int,
    ) -> tuple[list[dict[str, Any]], CountWrite | None]:
        """The membership items of a join (``token``: it makes a new member), and the tally write."""
        table = self._table
        if token is not None:  # a new member; over the user's own expired item, counted already
            replace = record is not None
            write = self._count_write(
                channel, tally, member.user_id, delta=0 if replace else 1, ttl=ttl_epoch, token=token
            )
            put = items.put(table, channel, member, conn, ttl=ttl_epoch, now=now_epoch, replace=replace)
            return [put, write.item], write
        assert record is not None  # another tab of a live member: no change
        add = items.add_connection(
            table, channel, member, conn, ttl=ttl_epoch, now=now_epoch, extend=ttl_epoch > record.ttl
        )
        if tally.v is None:  # the tally is gone while members remain: recreate it
            write = self._count_write(channel, tally, member.user_id, delta=0, ttl=ttl_epoch, token=None)
            return [add, write.item], None
        if tally.ttl < ttl_epoch:
            return [add, tallies.extend(table, channel, ttl_epoch)], None
        return [add], None

    def _counted(self, channel: str, tally: Tally) -> int:
        return tally.members if tally.v is not None else len(self._records(channel))

    # -- leave -------------------------------------------------------------------------------------

    def unsubscribe(self, conn: str, channel: str, user_id: str) -> Change | None:
        """Unsubscribe ``conn`` and drop it from its user's membership, in one transaction.

        Returns:
            The ``member_left`` change when this was the user's last connection, else ``None``.
        """
        return self._leave(conn, channel, user_id, rows=True)

    def leave(self, conn: str, channel: str, user_id: str | None) -> Change | None:
        """Drop ``conn`` from its user's membership, leaving its subscription rows alone.

        Used by ``$disconnect`` and the 410 cleanup, which delete the rows afterwards. Idempotent:
        running it again (a retried cleanup) finds the connection gone and changes nothing.

        Args:
            conn: The connection.
            channel: The presence channel.
            user_id: The connection's user; ``None`` when its record is gone: the member item
                holding the connection is looked up.

        Returns:
            The ``member_left`` change when this was the user's last connection, else ``None``.
        """
        if user_id is None:
            holders = self._records(channel, holding=conn)
            if not holders:
                return None
            user_id = holders[0].user_id
        return self._leave(conn, channel, user_id, rows=False)

    def _leave(self, conn: str, channel: str, user_id: str, *, rows: bool) -> Change | None:
        attempts = _Attempts(MEMBER_LEFT, channel)
        for attempt in range(ATTEMPTS):
            self._backoff(attempt)
            record = self._record(channel, user_id)
            last = record is not None and record.conns == {conn}
            # The tally is needed to leave as the last connection, and to learn whether an earlier
            # attempt of this request committed (the record alone cannot tell who removed it).
            tally = self._tally(channel) if last or attempts.pending else Tally(channel)
            done = attempts.committed(tally)
            if done is not None:
                return done
            if record is None or conn not in record.conns:
                if rows:
                    self.store.unsubscribe(conn, channel)
                return None
            write: CountWrite | None = None
            if not last:
                change = [items.remove_connection(self._table, channel, user_id, conn)]
            else:
                token = attempts.new(record.member)
                write = self._count_write(channel, tally, user_id, delta=-1, ttl=tally.ttl, token=token)
                change = [items.delete_last(self._table, channel, user_id, conn), write.item]
            try:
                head = self.store.unsubscribe_items(conn, channel) if rows else []
                reasons = self.store.transact([*head, *change])
            except Exception:
                settled = self._settled(attempts, channel) if write else None
                if settled is None:
                    raise
                return settled
            if not reasons:
                return None if write is None else Change(MEMBER_LEFT, channel, record.member, write.v)
            if not rows:
                continue
            if reasons[0] == CONDITION_FAILED:
                # No subscription row any more (this request's own earlier attempt, whose reply
                # was lost, or a concurrent removal): settle the membership on its own.
                rows = False
            elif reasons[2] == CONDITION_FAILED and CONDITION_FAILED not in reasons[3:]:
                # The connection's record expired: leave the membership, then drop the rows.
                left = self._leave(conn, channel, user_id, rows=False)
                self.store.unsubscribe(conn, channel)
                return left
        raise RuntimeError(f"presence leave on {channel!r} kept conflicting")

    # -- expired members ---------------------------------------------------------------------------

    def evict(self, channel: str, now_epoch: int) -> list[Change]:
        """Remove the member items that expired (their connections vanished unannounced).

        Each removal is a membership change (``member_left`` at the next version).

        Returns:
            The changes, in version order.
        """
        changes: list[Change] = []
        for record in self._records(channel):
            if record.ttl <= now_epoch:
                change = self._evict(channel, record, now_epoch)
                if change is not None:
                    changes.append(change)
        return changes

    def _evict(self, channel: str, record: Record, now_epoch: int) -> Change | None:
        attempts = _Attempts(MEMBER_LEFT, channel)
        for attempt in range(ATTEMPTS):
            self._backoff(attempt)
            tally = self._tally(channel)
            done = attempts.committed(tally)
            if done is not None:
                return done
            token = attempts.new(record.member)
            write = self._count_write(channel, tally, record.user_id, delta=-1, ttl=tally.ttl, token=token)
            delete = items.delete_expired(self._table, channel, record.user_id, now=now_epoch)
            reasons = self.store.transact([delete, write.item])
            if not reasons:
                return Change(MEMBER_LEFT, channel, record.member, write.v)
            if reasons[0] == CONDITION_FAILED:
                # Gone, or alive again; unless this request's own earlier attempt removed it.
                return attempts.committed(self._tally(channel))
        raise RuntimeError(f"presence eviction on {channel!r} kept conflicting")

    def _repair(self, channel: str, now_epoch: int) -> None:
        """Make room in a full channel: evict expired members, correct a count left high.

        DynamoDB's TTL deletes expired member items without touching the tally: those members left
        unannounced, so the version moves on by as many (a client seeing the jump refetches the
        list) while the count comes down to the stored items.
        """
        for change in self.evict(channel, now_epoch):
            if self._on_change is None:
                log.info("%s evicted from %s unannounced (no listener)", change.member.user_id, channel)
            else:
                self._on_change(change)
        client = self.store.client
        for attempt in range(ATTEMPTS):
            self._backoff(attempt)
            tally = self._tally(channel)
            stored = len(self._records(channel))
            if tally.v is None or tally.members == stored:
                return
            write = tallies.write(
                self._table,
                tally,
                members=stored,
                ttl=tally.ttl,
                token=None,
                first_v=self._clock(),
                bump=max(0, tally.members - stored),
            )
            try:
                client.update_item(**write.item["Update"])
            except client.exceptions.ConditionalCheckFailedException:
                continue
            return

    # -- list --------------------------------------------------------------------------------------

    def snapshot(self, channel: str, *, now_epoch: int) -> Snapshot:
        """The live members with the version they are at least as new as.

        The tally is read before the member items, so a change committed between the two reads
        is in the list and also announced with a higher version: applying it again is harmless.
        """
        v = self._tally(channel).v or 0
        records = self._records(channel)
        live = sorted((r.member for r in records if r.ttl > now_epoch), key=lambda m: m.user_id)
        return Snapshot(v=v, members=live, expired=len(records) - len(live))

    def members(self, channel: str, *, now_epoch: int) -> list[Member]:
        """The channel's live members (strongly consistent; expired items are skipped), by user id."""
        return self.snapshot(channel, now_epoch=now_epoch).members

    # -- helpers -----------------------------------------------------------------------------------

    def _tally(self, channel: str) -> Tally:
        item = self.store.client.get_item(
            TableName=self._table, Key=tallies.count_key(channel), ConsistentRead=True
        ).get("Item")
        return Tally.from_item(channel, item)

    def _record(self, channel: str, user_id: str) -> Record | None:
        item = self.store.client.get_item(
            TableName=self._table, Key=items.member_key(channel, user_id), ConsistentRead=True
        ).get("Item")
        return Record.from_item(item) if item else None

    def _records(self, channel: str, *, holding: str | None = None) -> list[Record]:
        query: dict[str, Any] = items.records_query(self._table, channel, holding=holding)
        found: list[Record] = []
        while True:
            response = self.store.client.query(**query)
            found.extend(Record.from_item(i) for i in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return found
            query["ExclusiveStartKey"] = last

    def _count_write(
        self, channel: str, tally: Tally, user_id: str, *, delta: int, ttl: int, token: str | None
    ) -> CountWrite:
        """The tally write of a transaction moving the count by ``delta`` (-1, 0 or +1).

        ``user_id`` is a member after the transaction unless ``delta`` is -1. With no tally, the
        stored member items are counted (the tally expired after them, or was never written).
        """
        members, latest = tally.members + delta, max(tally.ttl, ttl)
        if tally.v is None:
            others = [r for r in self._records(channel) if r.user_id != user_id]
            members = len(others) + (delta >= 0)
            latest = max([ttl, *(r.ttl for r in others)])
        return tallies.write(
            self._table, tally, members=members, ttl=latest, token=token, first_v=self._clock()
        )

    def _settled(self, attempts: _Attempts, channel: str) -> Change | None:
        """After an error: the change an attempt committed, per the tally (``None``: none, or unknown)."""
        try:
            return attempts.committed(self._tally(channel))
        except Exception:
            log.warning("could not read the presence tally of %s back", channel, exc_info=True)
            return None

    def _backoff(self, attempt: int) -> None:
        if attempt:
            self._sleep(random.uniform(0, min(0.2, 0.004 * 2**attempt)))
