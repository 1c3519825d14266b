"""Removing a connection that left, and announcing the presence members it took with it.

A connection leaves through ``$disconnect``, a 410 during a fan-out, or a 410 on its own reply.
:meth:`Departures.remove` deletes its rows (:meth:`ChannelStore.remove_connection`), drops it from
the membership of each presence channel it was in, and queues the resulting ``member_left``
changes. The queue is drained by :func:`announce` *after* the fan-out that found the 410 has
finished: announcing from inside a fan-out worker would wait on the same bounded pool.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Final

from lambdacast.authz import PRESENCE_PREFIX
from lambdacast.presence import Change, PresenceStore
from lambdacast.protocol import member_frame

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
        self.presence = PresenceStore(store)
        self.limiter = limiter
        self._pending: list[Change] = []
        self._lock = threading.Lock()

    def remove(self, connection_id: str) -> list[str]:
        """Delete the connection's rows and leave its presence channels; queue ``member_left`` changes.

        Returns:
            The channels it was subscribed to.
        """
        try:
            record = self.store.get_connection(connection_id)
        except Exception:
            # Still remove the rows; its presence memberships then expire by TTL.
            log.warning("could not read %s before removing it; presence is left to the TTL", connection_id)
            record = None
        channels = self.store.remove_connection(connection_id)
        if self.limiter is not None:
            self.limiter.forget(connection_id)
        user_id = record.user_id if record else None
        if user_id is None:
            return channels
        for channel in channels:
            if not channel.startswith(PRESENCE_PREFIX):
                continue
            try:
                change = self.presence.leave(connection_id, channel, user_id)
            except Exception:
                log.warning("presence leave of %s from %s failed; it expires by TTL", user_id, channel)
                continue
            if change is not None:
                with self._lock:
                    self._pending.append(change)
        return channels

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
        changes = changes + departures.drain()
        if not changes:
            break
        for change in changes:
            frame = member_frame(
                change.kind,
                channel=change.channel,
                user_id=change.member.user_id,
                info=change.member.info,
            )
            delivered += fanout.broadcast(store.subscriber_pages(change.channel), frame.encode()).delivered
        changes = []
    return delivered
