"""Numbering a publish exactly once: the channel's counter, its epoch, the history item and the msgId.

Item layout (docs/architecture.md)::

    CHAN#<ch>    SEQ                    seq, epoch (random, set when the counter is created)
    HIST#<ch>    <epoch>#<seq>          frame, ttl, tok          (lambdacast.history)
    MSGID#<ch>   <msgId>                seq, epoch, tok, ttl, done?

One ``TransactWriteItems`` numbers a message: a compare-and-set of the counter from ``s`` to
``s + 1`` in its epoch, the history item of ``s + 1`` (absent before), the ``msgId`` record (absent
or expired before) and the caller's conditions (its subscription, its rate-limit windows). So a
message has a ``seq`` exactly when it is in the history, a refused publish changes nothing, and:

* **Retries are idempotent.** Each attempt carries a random token, sent as the transaction's
  ``ClientRequestToken`` (DynamoDB answers a repeat of a committed request with success, for
  10 minutes) and written into the counter, the history item and the msgId record. When botocore
  retries a request whose first attempt committed but whose reply was lost, and the repeat fails
  its own conditions (moto has no request tokens, and neither has a resend after the token's
  window), the items read back with ``ReturnValuesOnConditionCheckFailure`` carry this attempt's
  token: it was ours.
* **Contention is a retry, not a skip.** A counter moved by another publisher fails the
  compare-and-set; the failure returns the counter's current value, and the next attempt starts
  from it (the per-container cache usually makes the first attempt right).
* **A lost counter starts a new epoch.** When the counter item is gone (a new table, a restarted
  ``make dev``), it is created again with a new random epoch, so no client can mistake the new
  numbering for the old one.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from lambdacast.errors import NotNumbered
from lambdacast.history import history_pk, seq_key

if TYPE_CHECKING:
    from lambdacast.channels import ChannelStore

CHAN: Final = "CHAN#"
SEQ: Final = "SEQ"
MSGID: Final = "MSGID#"
CONDITION_FAILED: Final = "ConditionalCheckFailed"
#: How long a ``msgId`` is remembered: a publish resent within this window gets its first ``seq``.
MSGID_WINDOW_SECONDS: Final = 600
#: Compare-and-set rounds before a publish gives up (a channel published to from many places at
#: once); each lost round learns the counter's value, so this bounds contention, not staleness.
MAX_ROUNDS: Final = 24
#: The ceiling of the jittered wait after the second and later lost rounds, in seconds: losers
#: spread out instead of colliding again on the next value.
MAX_BACKOFF_S: Final = 0.05
#: Counters remembered per container (least recently used dropped).
CACHE_SIZE: Final = 4096


def new_epoch() -> str:
    """A new channel epoch: 12 random hex characters."""
    return secrets.token_hex(6)


@dataclass(frozen=True, slots=True)
class Counter:
    """A channel's numbering state: the last ``seq`` taken in ``epoch``.

    Attributes:
        seq: The last ``seq`` taken (0: none yet).
        epoch: The epoch.
        stored: Whether the counter item exists (``False``: a numbering creates it).
    """

    seq: int
    epoch: str
    stored: bool = field(default=True, compare=False)


@dataclass(frozen=True, slots=True)
class Numbered:
    """A publish's number.

    Attributes:
        seq: Its ``seq``.
        epoch: Its epoch.
        ts: When it was numbered (ms since epoch); for a duplicate, unknown (0).
        frame: The message frame as stored and sent (empty for a duplicate).
        duplicate: Its ``msgId`` had been numbered before: nothing new was stored.
        done: For a duplicate, whether the first publish's fan-out finished.
    """

    seq: int
    epoch: str
    ts: int = 0
    frame: str = ""
    duplicate: bool = False
    done: bool = True


@dataclass(frozen=True, slots=True)
class Refusal:
    """A transaction item whose failed condition refuses the publish, and what to raise then.

    Attributes:
        item: The transaction item (a ``ConditionCheck`` or an ``Update`` with a condition).
        refuse: Builds the exception to raise when its condition fails (nothing was written).
    """

    item: dict[str, Any]
    refuse: Callable[[], Exception]


@dataclass
class _Cache:
    size: int = CACHE_SIZE
    items: OrderedDict[str, Counter] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, channel: str) -> Counter | None:
        with self.lock:
            counter = self.items.get(channel)
            if counter is not None:
                self.items.move_to_end(channel)
            return counter

    def put(self, channel: str, counter: Counter) -> None:
        with self.lock:
            old = self.items.get(channel)
            if old is not None and old.epoch == counter.epoch and old.seq > counter.seq:
                return  # never move backwards within an epoch
            self.items[channel] = counter
            self.items.move_to_end(channel)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


class Numbering:
    """Reads channel counters and numbers publishes (one per container; thread-safe).

    Args:
        store: The channel store (its client and table).
        sleep: Waits between rounds lost to a transaction conflict (tests inject).
        token: Makes attempt tokens (tests inject).
    """

    def __init__(
        self,
        store: ChannelStore,
        *,
        sleep: Callable[[float], None] = time.sleep,
        token: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        self.store = store
        self._sleep = sleep
        self._token = token
        self._cache = _Cache()

    # -- the counter -------------------------------------------------------------------------------

    def peek(self, channel: str) -> Counter | None:
        """The channel's counter (strongly consistent); ``None`` when nothing ever numbered on it."""
        item = self.store.client.get_item(
            TableName=self.store.table_name, Key=_key(CHAN + channel, SEQ), ConsistentRead=True
        ).get("Item")
        if item is None or "epoch" not in item:
            return None
        counter = Counter(seq=int(item["seq"]["N"]), epoch=item["epoch"]["S"])
        self._cache.put(channel, counter)
        return counter

    def current(self, channel: str) -> Counter:
        """The channel's counter (strongly consistent), created with a new epoch when it has none."""
        for _ in range(3):
            counter = self.peek(channel) or self._create(channel)
            if counter is not None:
                return counter
        raise NotNumbered(f"the counter of {channel!r} could not be read or created")

    def _create(self, channel: str) -> Counter | None:
        """Create the counter with a new epoch; ``None`` when another caller created it first."""
        client = self.store.client
        counter = Counter(seq=0, epoch=new_epoch())
        try:
            client.put_item(
                TableName=self.store.table_name,
                Item={**_key(CHAN + channel, SEQ), "seq": {"N": "0"}, "epoch": {"S": counter.epoch}},
                ConditionExpression="attribute_not_exists(epoch)",
            )
        except client.exceptions.ConditionalCheckFailedException:
            return None
        self._cache.put(channel, counter)
        return counter

    # -- numbering ---------------------------------------------------------------------------------

    def number(
        self,
        channel: str,
        *,
        build_frame: Callable[[int, str, int], str],
        clock: Callable[[], int],
        history_ttl_seconds: int,
        msg_id: str | None = None,
        refusals: Sequence[Refusal] = (),
    ) -> Numbered:
        """Number one message exactly once and store it in the history, atomically.

        Args:
            channel: The channel.
            build_frame: ``(seq, epoch, ts) -> frame``: the message frame as it will be sent.
            clock: Milliseconds since epoch.
            history_ttl_seconds: How long the message stays in the history (0: not kept).
            msg_id: The publisher's id of this message; a repeat within
                :data:`MSGID_WINDOW_SECONDS` answers the first one's number (``duplicate``).
            refusals: More conditions of the same transaction (subscription, rate limits); the
                first that fails is raised and nothing is written.

        Returns:
            The number and frame, or a duplicate's original number.

        Raises:
            Exception: A refusal's exception.
            NotNumbered: DynamoDB kept failing or conflicting; nothing was numbered.
        """
        counter = self._cache.get(channel) or self.peek(channel) or Counter(0, new_epoch(), stored=False)
        for round_ in range(MAX_ROUNDS):
            token = self._token()
            ts = clock()
            seq = counter.seq + 1
            frame = build_frame(seq, counter.epoch, ts)
            plan = self._plan(
                channel,
                counter,
                frame,
                token=token,
                ts=ts,
                history_ttl_seconds=history_ttl_seconds,
                msg_id=msg_id,
            )
            try:
                reasons = self._transact([*plan.items, *(r.item for r in refusals)], token)
            except NotNumbered:
                if self._committed(channel, counter.epoch, seq, token, kept=plan.history is not None):
                    reasons = []
                else:
                    raise
            if not reasons:
                return self._done(channel, Counter(seq, counter.epoch), ts, frame)
            codes = [code for code, _ in reasons]
            olds = [old for _, old in reasons]
            if plan.ours(olds, token, seq):  # an earlier attempt of ours committed; its reply was lost
                return self._done(channel, Counter(seq, counter.epoch), ts, frame)
            for refusal, code in zip(refusals, codes[len(plan.items) :], strict=True):
                if code == CONDITION_FAILED:
                    raise refusal.refuse()
            first = olds[plan.msgid] if plan.msgid is not None else None
            if plan.msgid is not None and codes[plan.msgid] == CONDITION_FAILED and first:
                return _duplicate(first)
            if round_ > 0 or any(code not in ("None", CONDITION_FAILED) for code in codes):
                # A first loss retries at once from the value it learned; later ones (or a
                # conflict, a throttle) wait a jittered, growing while.
                self._sleep(random.uniform(0, min(MAX_BACKOFF_S, 0.002 * 2**round_)))
            counter = (
                self._learn(channel, olds[0]) or self.peek(channel) or Counter(0, new_epoch(), stored=False)
            )
        raise NotNumbered(f"publishing to {channel!r} kept conflicting with other publishes")

    def _plan(
        self,
        channel: str,
        counter: Counter,
        frame: str,
        *,
        token: str,
        ts: int,
        history_ttl_seconds: int,
        msg_id: str | None,
    ) -> _Plan:
        """The transaction items numbering ``counter.seq + 1``: counter, history item, msgId record."""
        table = self.store.table_name
        seq = counter.seq + 1
        # Compare-and-set from the counter as known; a counter not stored yet is created here,
        # so a publish that is refused leaves no counter behind.
        values: dict[str, Any] = {
            ":next": {"N": str(seq)},
            ":epoch": {"S": counter.epoch},
            ":tok": {"S": token},
        }
        if counter.stored:
            condition = "seq = :seq AND epoch = :epoch"
            values[":seq"] = {"N": str(counter.seq)}
        else:
            condition = "attribute_not_exists(epoch)"
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": table,
                    "Key": _key(CHAN + channel, SEQ),
                    # The attempt's token: a retry whose first attempt committed recognizes it.
                    "UpdateExpression": "SET seq = :next, epoch = :epoch, tok = :tok",
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": values,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        ]
        history_index = None
        if history_ttl_seconds > 0:  # no history kept: no history write at all
            history: dict[str, Any] = {
                "pk": history_pk(channel),
                "sk": {"S": seq_key(counter.epoch, seq)},
                "frame": {"S": frame},
                "tok": {"S": token},
                "ttl": {"N": str(ts // 1000 + history_ttl_seconds)},
            }
            if msg_id is not None:
                history["msgId"] = {"S": msg_id}
            history_index = len(items)
            items.append(
                {
                    "Put": {
                        "TableName": table,
                        "Item": history,
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        msgid_index = None
        if msg_id is not None:
            msgid_index = len(items)
            items.append(
                {
                    "Put": {
                        "TableName": table,
                        "Item": {
                            **_key(MSGID + channel, msg_id),
                            "seq": {"N": str(seq)},
                            "epoch": {"S": counter.epoch},
                            "tok": {"S": token},
                            "ttl": {"N": str(ts // 1000 + MSGID_WINDOW_SECONDS)},
                        },
                        "ConditionExpression": "attribute_not_exists(pk) OR #ttl < :now",
                        "ExpressionAttributeNames": {"#ttl": "ttl"},
                        "ExpressionAttributeValues": {":now": {"N": str(ts // 1000)}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        return _Plan(items=items, history=history_index, msgid=msgid_index)

    def _transact(self, items: list[dict[str, Any]], token: str) -> list[tuple[str, dict[str, Any] | None]]:
        """Run the transaction; ``[]`` on success, else each item's (code, old item) when cancelled.

        Raises:
            NotNumbered: The request failed otherwise (throttled or 5xx past botocore's retries,
                a timeout): whether it committed is then settled by :meth:`_committed`.
        """
        client = self.store.client
        try:
            client.transact_write_items(TransactItems=items, ClientRequestToken=token)  # type: ignore[arg-type]
        except client.exceptions.TransactionCanceledException as exc:
            reasons: list[Any] = exc.response.get("CancellationReasons", [])
            return [(str(r.get("Code") or "None"), r.get("Item")) for r in reasons]
        except Exception as exc:
            raise NotNumbered(f"numbering failed: {type(exc).__name__}: {exc}") from exc
        return []

    def _committed(self, channel: str, epoch: str, seq: int, token: str, *, kept: bool) -> bool:
        """Whether the attempt with ``token`` committed ``seq``.

        Its history item holds the token; without history, the counter does until the next
        publish moves it (a publish that raced in between leaves it undecided: not numbered, and
        a resend with the same ``msgId`` is then answered as the duplicate it is).
        """
        key = (
            {"pk": history_pk(channel), "sk": {"S": seq_key(epoch, seq)}}
            if kept
            else _key(CHAN + channel, SEQ)
        )
        try:
            item = self.store.client.get_item(
                TableName=self.store.table_name, Key=key, ConsistentRead=True
            ).get("Item")
        except Exception as exc:
            raise NotNumbered(f"could not tell whether {channel!r} #{seq} was numbered") from exc
        if not kept and (item or {}).get("seq", {}).get("N") != str(seq):
            return False
        return _token_of(item) == token

    def _learn(self, channel: str, old: dict[str, Any] | None) -> Counter | None:
        """The counter as a failed compare-and-set returned it (``None``: the item is gone)."""
        if not old or "epoch" not in old or "seq" not in old:
            return None
        counter = Counter(seq=int(old["seq"]["N"]), epoch=old["epoch"]["S"])
        self._cache.put(channel, counter)
        return counter

    def _done(self, channel: str, counter: Counter, ts: int, frame: str) -> Numbered:
        self._cache.put(channel, counter)
        return Numbered(seq=counter.seq, epoch=counter.epoch, ts=ts, frame=frame)

    def mark_done(self, channel: str, msg_id: str) -> None:
        """Record that the fan-out of ``msg_id``'s message finished (a resend then posts nothing)."""
        self.store.client.update_item(
            TableName=self.store.table_name,
            Key=_key(MSGID + channel, msg_id),
            UpdateExpression="SET done = :yes",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":yes": {"BOOL": True}},
        )

    def stored_frame(self, channel: str, epoch: str, seq: int) -> str | None:
        """The frame the history holds for ``seq`` (``None``: not kept, or expired and deleted)."""
        item = self.store.client.get_item(
            TableName=self.store.table_name,
            Key={"pk": history_pk(channel), "sk": {"S": seq_key(epoch, seq)}},
            ConsistentRead=True,
        ).get("Item")
        frame = (item or {}).get("frame", {}).get("S")
        return str(frame) if frame is not None else None


@dataclass(frozen=True, slots=True)
class _Plan:
    """A numbering transaction's items, and where its history item and msgId record are."""

    items: list[dict[str, Any]]
    history: int | None
    msgid: int | None

    def ours(self, olds: list[dict[str, Any] | None], token: str, seq: int) -> bool:
        """Whether a cancelled attempt found the items an earlier attempt with ``token`` wrote."""
        counter = olds[0] or {}
        if _token_of(counter) == token and counter.get("seq", {}).get("N") == str(seq):
            return True
        return any(
            index is not None and _token_of(olds[index]) == token for index in (self.history, self.msgid)
        )


def _token_of(item: dict[str, Any] | None) -> str | None:
    return str(item["tok"]["S"]) if item and "tok" in item else None


def _duplicate(old: dict[str, Any]) -> Numbered:
    return Numbered(
        seq=int(old["seq"]["N"]),
        epoch=old["epoch"]["S"],
        duplicate=True,
        done=bool(old.get("done", {}).get("BOOL", False)),
    )
