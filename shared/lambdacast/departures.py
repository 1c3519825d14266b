"""Removing a connection that left, and announcing the presence members it took with it.

A connection leaves through ``$disconnect``, a 410 during a fan-out, or a 410 on its own reply.
:meth:`Departures.remove` runs, in this order: mark the connection closing (from then on no
subscribe can add to it), read its subscriptions, leave each presence channel it was in, delete
its subscription rows, and delete its record last. Each step is idempotent, and nothing the later
steps need (the rows that lead a fan-out to the connection, the record of its user) is deleted
before the presence leaves succeeded: a removal that fails midway is finished by the next 410.

The resulting ``member_left`` changes are queued and drained by :func:`announce` *after* the
fan-out that found the 410 has finished: announcing from inside a fan-out worker would wait on
the same bounded pool.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Final

from lambdacast.auth.access import PRESENCE_PREFIX
from lambdacast.presence import Change, PresenceStore
from lambdacast.wire.frames import member_frame

if TYPE_CHECKING:
    from lambdacast.channels import ChannelStore
    from lambdacast.delivery.broadcaster import Broadcaster
    from lambdacast.ratelimit import RateLimiter

log = logging.getLogger(__name__)

#: Rounds of announcements per drain: an announcement may find more gone connections, whose
#: own departures are announced in the next round; the bound keeps one invocation finite.
MAX_ROUNDS: Final = 5


class Departures:
    """Removes departed connections and queues their presence changes (thread-safe).

    Args:
        store: The channel store.
        limiter: The rate limiter whose bucket for the connection is dropped, if any.
    """

    def __init__(self, store: ChannelStore, limiter: RateLimiter | None = None) -> None:
        self.store = store
        self.presence = PresenceStore(store, on_change=self.defer)
        self.limiter = limiter
        self._pending: list[Change] = []
        self._lock = threading.Lock()

    def remove(self, connection_id: str) -> list[str]:
        """Remove the connection: leave its presence channels (queuing ``member_left``), delete its items.

        Returns:
            The channels it was subscribed to.
        """
        try:
            record = self.store.close_connection(connection_id)
        except Exception:
            # Still remove it; its presence memberships are found from the connection id.
            log.warning("could not mark %s as closing", connection_id, exc_info=True)
            record = None
        channels = self.store.connection_channels(connection_id)
        if self.limiter is not None:
            self.limiter.forget(connection_id)
        # A recorded anonymous connection has no presence channel; an unrecorded one is looked up.
        user_id = record.user_id if record is not None else None
        settled = True
        for channel in channels:
            if not channel.startswith(PRESENCE_PREFIX) or (record is not None and user_id is None):
                continue
            try:
                change = self.presence.leave(connection_id, channel, user_id)
            except Exception:
                log.warning("presence leave of %s from %s failed", connection_id, channel, exc_info=True)
                settled = False
                continue
            if change is not None:
                self.defer(change)
        if not settled:
            # Keep the rows and the record: a fan-out to the channel meets this connection's 410
            # and runs the removal again (each step is idempotent); else they expire by TTL.
            log.warning("keeping %s's items until its presence leave succeeds", connection_id)
            return channels
        # Unmarked (no record, or the mark failed), a subscribe may have landed since: read again.
        self.store.remove_connection(connection_id, channels if record is not None else None, user_id=user_id)
        return channels

    def defer(self, change: Change) -> None:
        """Queue a membership change for the next :func:`announce`."""
        with self._lock:
            self._pending.append(change)

    def drain(self) -> list[Change]:
        """Return and clear the queued changes."""
        with self._lock:
            pending, self._pending = self._pending, []
        return pending


def announce(changes: list[Change], departures: Departures, fanout: Broadcaster, store: ChannelStore) -> int:
    """Post each change to its channel's subscribers, then any changes the posts uncovered.

    Args:
        changes: The changes to announce first.
        departures: Where further departures (410s met while announcing) are queued.
        fanout: The broadcaster.
        store: The channel store (subscriber pages).

    Returns:
        The number of posts delivered.
    """
    delivered = 0
    for _ in range(MAX_ROUNDS):
        # Versions in order within a channel (fan-out threads may have queued them out of order).
        changes = sorted(changes + departures.drain(), key=lambda c: (c.channel, c.v))
        if not changes:
            break
        for change in changes:
            frame = member_frame(
                change.kind,
                channel=change.channel,
                user_id=change.member.user_id,
                info=change.member.info,
                v=change.v,
            )
            delivered += fanout.broadcast(store.subscriber_pages(change.channel), frame.encode()).delivered
        changes = []
    return delivered
