"""A presence member list kept from ``member_joined`` / ``member_left`` in presence-version order.

protocol-v1-additions.md: apply frames in ``v`` order, ignore stale ones (``v`` <= held), and when a frame
skips a version, apply it and refetch the list. Pure: the client decides when to refetch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PresenceView:
    """One client's view of one presence channel."""

    v: int | None = None  # None until the first `presence` reply
    members: set[str] = field(default_factory=set)
    applied: int = 0
    stale_ignored: int = 0
    skips: int = 0  # frames that skipped a version (a refetch was asked for)
    _early: list[dict[str, Any]] = field(default_factory=list)

    def snapshot(self, reply: dict[str, Any]) -> None:
        """A ``presence`` reply: the list at version ``v``; buffered frames newer than it are applied."""
        v = int(reply["v"])
        if self.v is None or v >= self.v:
            self.v = v
            self.members = {str(m["userId"]) for m in reply["members"]}
        early, self._early = self._early, []
        for frame in sorted(early, key=lambda f: int(f["v"])):
            self.apply(frame)

    def apply(self, frame: dict[str, Any]) -> bool:
        """A member frame; returns whether a version was skipped (the caller should refetch)."""
        if self.v is None:
            self._early.append(frame)
            return False
        v = int(frame["v"])
        if v <= self.v:
            self.stale_ignored += 1
            return False
        skipped = v > self.v + 1
        self.skips += skipped
        user = str(frame["member"]["userId"])
        if frame["type"] == "member_joined":
            self.members.add(user)
        else:
            self.members.discard(user)
        self.v = v
        self.applied += 1
        return skipped
