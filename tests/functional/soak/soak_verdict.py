"""The soak's invariants, checked after quiescence, and its figures.

Every check appends a sentence to ``violations`` when it fails; the test asserts there are none and
prints the figures (``make soak`` copies them into docs/fanout.md).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from soak_client import SoakClient
from soak_logs import LoggedError
from soak_workload import Soak

# What a function may log at ERROR when the soak's faults explain it: DynamoDB failing past botocore's
# retries (throttles, 500s, replies lost), a post given up after its retries, numbering giving up.
EXPLAINED_EXCEPTIONS = frozenset(
    {
        "ClientError",
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "InternalServerError",
        "ConnectionClosedError",
        "NotNumbered",
        "DeliveryFailed",
        "TransactionCanceledException",
    }
)


@dataclass
class Verdict:
    """What the checks found."""

    violations: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def check(self, ok: bool, sentence: str) -> None:
        if not ok:
            self.violations.append(sentence)


def check_acks(soak: Soak, verdict: Verdict) -> dict[str, tuple[str, int]]:
    """Per channel the acked seqs are exactly 1..n in one epoch; every resend of a msgId got its first seq.

    Returns:
        channel -> (epoch, n).
    """
    tops: dict[str, tuple[str, int]] = {}
    for channel in soak.channels:
        acks = [a for a in soak.acks.values() if a.channel == channel]
        epochs = {a.epoch for a in acks}
        seqs = sorted(a.seq for a in acks)
        verdict.check(len(epochs) == 1, f"{channel}: acks in {len(epochs)} epochs {sorted(epochs)}")
        verdict.check(
            seqs == list(range(1, len(acks) + 1)),
            f"{channel}: acked seqs are not 1..{len(acks)}: {_ranges(seqs)}",
        )
        expected = soak.scale.publishers_per_channel * soak.scale.messages_per_publisher
        verdict.check(len(acks) == expected, f"{channel}: {len(acks)} msgIds acked, {expected} published")
        for ack in acks:
            for again in ack.resend_acks:
                verdict.check(
                    (again["epoch"], again["seq"]) == (ack.epoch, ack.seq) and again.get("duplicate") is True,
                    f"{channel}: msgId {ack.msg_id} acked {ack.seq}, its resend {again}",
                )
        tops[channel] = (next(iter(epochs)) if epochs else "", len(acks))
    return tops


def check_table(soak: Soak, tops: dict[str, tuple[str, int]], items: Any, verdict: Verdict) -> None:
    """The counter says n in the acks' epoch; the history holds seq 1..n, each with the msgId acked for it."""
    by_seq = {(a.channel, a.seq): a.msg_id for a in soak.acks.values()}
    for channel, (epoch, n) in tops.items():
        counter = items(f"CHAN#{channel}", "SEQ")
        verdict.check(
            bool(counter) and counter[0]["epoch"]["S"] == epoch and int(counter[0]["seq"]["N"]) == n,
            f"{channel}: the counter item is {counter}, the acks say {n} in {epoch}",
        )
        history = items(f"HIST#{channel}")
        stored = {int(i["sk"]["S"].rsplit("#", 1)[1]): i.get("msgId", {}).get("S") for i in history}
        verdict.check(
            sorted(stored) == list(range(1, n + 1)) and all(i["sk"]["S"].startswith(epoch) for i in history),
            f"{channel}: history holds seqs {_ranges(sorted(stored))} (1..{n} expected)",
        )
        wrong = [s for s, m in stored.items() if by_seq.get((channel, s)) != m]
        verdict.check(not wrong, f"{channel}: history seqs {wrong[:10]} hold another msgId than acked")


def check_streams(soak: Soak, tops: dict[str, tuple[str, int]], verdict: Verdict) -> dict[str, int]:
    """What each subscriber handed its application, against the acks.

    A client whose socket never dropped (other than on purpose) must hold every message exactly once and
    in order; a recovering client every message, or a gap for exactly what history no longer had.
    """
    expired = {(e.channel, s) for e in soak.expiries for s in range(1, e.upto + 1)}
    by_seq = {(a.channel, a.seq): a for a in soak.acks.values()}
    counts: Counter[str] = Counter()
    for client in [*soak.publishers, *soak.steady, *soak.recovering]:
        steady = client.drops == 0 and client not in soak.recovering
        for channel in client.wanted:
            epoch, n = tops[channel]
            stream = client.streams[channel]
            where = f"{client.name} on {channel}"
            seqs = [d.seq for d in stream.delivered]
            gap_seqs = [s for g in stream.gaps for s in g.seqs()]
            counts["messages handed over"] += len(seqs)
            counts["gap seqs"] += len(gap_seqs)
            counts["late deliveries"] += sum(d.late for d in stream.delivered)
            counts["from history (live holes and recoveries)"] += sum(
                d.source == "history" for d in stream.delivered
            )
            counts["app duplicates"] += len(seqs) - len(set(seqs))
            counts["true duplicates dropped"] += stream.duplicates_dropped
            counts["stale frames dropped"] += stream.stale_dropped
            counts["resets"] += stream.resets
            lost = set(range(1, n + 1)) - set(seqs) - set(gap_seqs)
            counts["losses"] += len(lost)
            verdict.check(not lost, f"{where}: seqs {_ranges(sorted(lost))} neither delivered nor reported")
            verdict.check(len(seqs) == len(set(seqs)), f"{where}: delivered a seq twice")
            verdict.check(
                all(d.epoch == epoch for d in stream.delivered) and stream.resets == 0,
                f"{where}: epochs {sorted({d.epoch for d in stream.delivered})}, {stream.resets} resets",
            )
            mismatched = [
                d.seq
                for d in stream.delivered
                if (a := by_seq.get((channel, d.seq))) is None or (d.msg_id, d.data) != (a.msg_id, a.data)
            ]
            verdict.check(not mismatched, f"{where}: seqs {mismatched[:10]} carry another message than acked")
            msg_ids = [d.msg_id for d in stream.delivered]
            verdict.check(len(msg_ids) == len(set(msg_ids)), f"{where}: one msgId delivered under two seqs")
            never_live = sum(
                d.source == "history" and client.raw[(channel, d.epoch, d.seq)] == 0 for d in stream.delivered
            )
            if steady:
                counts["steady streams"] += 1
                # A post that failed every retry: the live hole was filled from history.
                counts["steady: filled from history, never arrived live"] += never_live
                verdict.check(
                    seqs == list(range(1, n + 1)) and not gap_seqs,
                    f"{where}: steady, got {_ranges(seqs)} (gaps {_ranges(gap_seqs)}), 1..{n} expected",
                )
            else:
                counts["recovering streams"] += 1
                unexplained = {s for s in gap_seqs if (channel, s) not in expired}
                verdict.check(
                    not unexplained, f"{where}: gaps {_ranges(sorted(unexplained))} history still had"
                )
                in_order = [d.seq for d in stream.delivered if not d.late]
                verdict.check(in_order == sorted(in_order), f"{where}: delivered out of order")
    return dict(counts)


def raw_duplicates(clients: list[SoakClient]) -> dict[str, int]:
    """Message frames that reached a socket more than once (the application never saw them twice).

    Split by where the seq lies: inside a range a recovery replayed to that client (frames it already
    held beyond a hole, or received live during the replay, come again: docs/protocol.md says so), or
    elsewhere (a resend of a msgId whose first fan-out had not finished posts the stored frame again).
    """
    total: Counter[str] = Counter()
    for client in clients:
        for (channel, _, seq), n in client.raw.items():
            if n < 2:
                continue
            replayed = any(first <= seq <= last for first, last in client.replays.get(channel, []))
            total["inside a recovery's replay" if replayed else "elsewhere"] += n - 1
    return dict(total)


def check_presence(
    soak: Soak, members: list[dict[str, Any]], tally: dict[str, Any] | None, verdict: Verdict
) -> None:
    """After quiescence the list, every watcher's view and the table agree with the truth."""
    truth = soak.presence_truth()
    listed = {str(m["userId"]) for m in members}
    verdict.check(listed == truth, f"presence lists {sorted(listed)}, the truth is {sorted(truth)}")
    for watcher in soak.watchers:
        view = watcher.presence[soak.presence_channel].members
        verdict.check(view == truth, f"{watcher.name} sees {sorted(view)}, the truth is {sorted(truth)}")
    count = None if tally is None else int(tally["members"]["N"])
    verdict.check(count == len(truth), f"the table counts {count} members, the truth is {len(truth)}")


def check_invocations(invocations: list[Any], verdict: Verdict) -> dict[str, int]:
    """Every invocation that failed failed because a fault was injected (``[injected fault]``)."""
    failed: Counter[str] = Counter()
    for inv in invocations:
        if inv.ok:
            continue
        message = str((inv.error or {}).get("errorMessage", ""))
        if message.endswith("[injected fault]"):
            failed[f"{inv.label} {inv.status} (injected)"] += 1
        else:
            failed[f"{inv.label} {inv.status}: {message[:200]}"] += 1
            verdict.violations.append(f"{inv.function} {inv.label} failed on its own: {inv.error}")
    return dict(failed)


def check_logs(errors: list[LoggedError], disconnected: set[str], verdict: Verdict) -> dict[str, int]:
    """ERROR lines the faults explain are counted; any other exception is a bug.

    ``UnknownConnection`` (a frame of a connection whose rows are gone) is explained only for a
    connection that had disconnected: a frame still in flight when its socket closed (a client
    leaving, or ``connections:410``) finds ``$disconnect`` already removing it.
    """
    by_line: Counter[str] = Counter()
    for error in errors:
        exception = error.exception
        gone = exception == "UnknownConnection" and error.connection_id in disconnected
        suffix = " (its connection had disconnected)" if gone else ""
        by_line[f"{error.function}: {error.message} ({exception or 'no exception'}){suffix}"] += 1
        if exception and exception not in EXPLAINED_EXCEPTIONS and not gone:
            verdict.violations.append(
                f"{error.function} logged {error.message!r} with {exception} on connection "
                f"{error.connection_id}, which no fault explains:\n{error.traceback}"
            )
    return dict(by_line)


def _ranges(seqs: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``1-3,7`` (for messages that must stay short)."""
    out: list[str] = []
    for seq in seqs:
        if out and "-" in out[-1] and int(out[-1].split("-")[1]) == seq - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{seq}"
        elif out and "-" not in out[-1] and int(out[-1]) == seq - 1:
            out[-1] = f"{out[-1]}-{seq}"
        else:
            out.append(str(seq))
    text = ",".join(out)
    return text if len(text) < 300 else text[:300] + "..."
