"""One channel's stream as an application sees it: (epoch, seq) order, true duplicates dropped, gaps named.

This is the client logic of protocol-v1-additions.md in Python (pure: no sockets, no timers), so the
soak can state what an application would have been handed:

- frames are ordered by ``seq`` within the channel's epoch; one that arrives ahead of a missing ``seq``
  is held until the hole is filled (live, by a replay, or from ``history``) or given up as a gap;
- a ``seq`` already delivered in the epoch is a duplicate and dropped; a ``seq`` of a gap already given up
  that arrives later is still delivered, flagged ``late``;
- frames of an epoch the stream left are stale; a frame of an epoch it never held restarts the stream
  there (a reset: seq 1 of the new epoch comes next).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Delivered:
    """A message handed to the application."""

    epoch: str
    seq: int
    msg_id: str | None
    data: Any
    source: str  # "live", "replay" (posted by a recovery) or "history" (fetched by the client)
    late: bool = False


@dataclass(frozen=True, slots=True)
class Gap:
    """Seqs ``first``..``last`` of ``epoch`` given up: the application is told they are missing."""

    epoch: str
    first: int
    last: int

    def seqs(self) -> range:
        return range(self.first, self.last + 1)


@dataclass
class Orderer:
    """The stream of one channel on one client (survives reconnects: ``last`` is the recovery ``since``)."""

    epoch: str | None = None
    last: int | None = None  # highest seq delivered or given up in `epoch`; None before the first subscribe
    delivered: list[Delivered] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    duplicates_dropped: int = 0
    stale_dropped: int = 0
    before_baseline: int = 0
    resets: int = 0
    _held: dict[int, tuple[dict[str, Any], str]] = field(default_factory=dict)
    _early: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # before the first `subscribed`
    _missed: set[int] = field(default_factory=set)
    _past: set[str] = field(default_factory=set)

    # -- frames ------------------------------------------------------------------------------------

    def push(self, frame: dict[str, Any], source: str) -> None:
        """A message frame arrived (live, replayed, or from a ``history`` reply)."""
        if self.last is None or self.epoch is None:
            self._early.append((frame, source))
            return
        epoch, seq = str(frame["epoch"]), int(frame["seq"])
        if epoch != self.epoch:
            if epoch in self._past:
                self.stale_dropped += 1
                return
            self.restart(epoch)  # an epoch never held: a newer one (its `subscribed` is on its way)
        if seq <= self.last:
            if seq in self._missed:
                self._missed.discard(seq)
                self._deliver(frame, source, late=True)
            else:
                self.duplicates_dropped += 1
            return
        if seq in self._held:
            self.duplicates_dropped += 1
            return
        self._held[seq] = (frame, source)
        self._drain()

    # -- replies -----------------------------------------------------------------------------------

    def subscribed(self, reply: dict[str, Any], *, resubscribe: bool) -> None:
        """Apply a ``subscribed`` reply: a first subscribe sets the baseline; a resubscribe may reset."""
        epoch, seq = str(reply["epoch"]), int(reply["seq"])
        if not resubscribe or self.last is None:
            self.epoch, self.last = epoch, seq
        elif epoch != self.epoch:
            # `reset: true` in our own epoch means its frames arrived first and restarted the stream already
            # (the soak always sends its epoch with `since`).
            self.restart(epoch)
        early, self._early = self._early, []
        for frame, source in early:
            if str(frame["epoch"]) == self.epoch and int(frame["seq"]) <= self.last and not resubscribe:
                self.before_baseline += 1  # published at the very moment of the first subscribe
                continue
            self.push(frame, source)

    def give_up(self, upto: int) -> list[Gap]:
        """Deliver what is held up to ``upto`` in order, reporting every seq still missing as a gap."""
        assert self.last is not None
        assert self.epoch is not None
        found: list[Gap] = []
        start: int | None = None
        for seq in range(self.last + 1, upto + 1):
            held = self._held.pop(seq, None)
            if held is None:
                self._missed.add(seq)
                start = seq if start is None else start
                continue
            if start is not None:
                found.append(Gap(self.epoch, start, seq - 1))
                start = None
            self.last = seq
            self._deliver(*held)
        if start is not None:
            found.append(Gap(self.epoch, start, upto))
        self.last = max(self.last, upto)
        self.gaps += found
        self._drain()
        return found

    def restart(self, epoch: str) -> None:
        """Start over at seq 0 of ``epoch``; what the old epoch held is given up in order first."""
        if self.epoch is not None and self._held and self.last is not None:
            self.give_up(max(self._held))
        if self.epoch is not None:
            self._past.add(self.epoch)
        self.resets += 1
        self.epoch, self.last = epoch, 0
        self._held.clear()
        self._missed.clear()

    # -- state -------------------------------------------------------------------------------------

    @property
    def hole(self) -> tuple[int, int] | None:
        """The lowest run of missing seqs below a held frame (``first``, ``last``), if any."""
        if not self._held or self.last is None:
            return None
        return self.last + 1, min(self._held) - 1

    def _drain(self) -> None:
        assert self.last is not None
        while (held := self._held.pop(self.last + 1, None)) is not None:
            self.last += 1
            self._deliver(*held)

    def _deliver(self, frame: dict[str, Any], source: str, *, late: bool = False) -> None:
        self.delivered.append(
            Delivered(
                epoch=str(frame["epoch"]),
                seq=int(frame["seq"]),
                msg_id=frame.get("msgId"),
                data=frame.get("data"),
                source=source,
                late=late,
            )
        )
