"""Presence: who is in a ``presence-`` channel. Members are users; a user's connections are one member.

Item layout (docs/architecture.md)::

    PRES#<ch>  USER#<userId>   userId, info (JSON), conns (string set of connection ids), ttl
    PRES#<ch>  COUNT           members, v (presence version), recent (token -> v), ttl

* :mod:`~lambdacast.presence.members`: member items and their conditional writes;
* :mod:`~lambdacast.presence.tally`: the ``COUNT`` item, whose compare-and-set in every membership
  change's transaction numbers the changes (``v``) and keeps the count exact;
* :mod:`~lambdacast.presence.store`: joining, leaving, listing, and removing expired members.
"""

from lambdacast.presence.members import MEMBER_JOINED, MEMBER_LEFT, Change, Member, Snapshot
from lambdacast.presence.store import PresenceStore

__all__ = ["MEMBER_JOINED", "MEMBER_LEFT", "Change", "Member", "PresenceStore", "Snapshot"]
