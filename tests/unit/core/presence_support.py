"""Faults and schedules for the presence race tests: atomic moto requests, interleavings, lost replies."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

#: Every DynamoDB operation the store sends.
OPERATIONS = (
    "transact_write_items",
    "update_item",
    "put_item",
    "get_item",
    "query",
    "delete_item",
    "batch_write_item",
)


def one_request_at_a_time(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto apply each request atomically, as DynamoDB does (moto itself takes no lock).

    Requests from different threads still interleave freely between one another; only a single
    request (a whole transaction) can no longer be torn by another thread's request.
    """
    lock = threading.Lock()
    for name in OPERATIONS:
        original = getattr(client, name)

        def locked(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(*args, **kwargs)

        monkeypatch.setattr(client, name, locked)


@dataclass
class Interleaving:
    """Runs ``intruder`` once, just before the ``at``-th DynamoDB request (0-based) of the code under test.

    The intruder's own requests are not counted. :attr:`fired` says whether the code under test
    sent that many requests at all (an ``at`` beyond its last request changes nothing).
    """

    at: int
    intruder: Callable[[], object]
    seen: int = 0
    fired: bool = False
    _inside: bool = False

    def before_request(self) -> None:
        if self._inside:
            return
        if self.seen == self.at and not self.fired:
            self._inside = True
            try:
                self.intruder()
            finally:
                self._inside = False
            self.fired = True
        self.seen += 1


def interleave(client: Any, monkeypatch: pytest.MonkeyPatch, schedule: Interleaving) -> None:
    """Route every DynamoDB request of ``client`` through ``schedule`` (single-threaded use)."""
    for name in OPERATIONS:
        original = getattr(client, name)

        def hooked(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            schedule.before_request()
            return _original(*args, **kwargs)

        monkeypatch.setattr(client, name, hooked)


def every_interleaving(run: Callable[[int], Interleaving], *, limit: int = 60) -> Iterator[int]:
    """Run ``run(at)`` for at = 0, 1, 2... until the intruder no longer fires; yield each ``at`` run."""
    for at in range(limit):
        if not run(at).fired:
            return
        yield at
    raise AssertionError(f"the code under test sent more than {limit} requests")


SEND = "before-send.dynamodb.TransactWriteItems"


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


@dataclass
class LostReplies:
    """DynamoDB applies a chosen TransactWriteItems, then the client gets a 500 instead of its reply.

    Registered first on botocore's ``before-send`` event: the request is passed on to moto (which
    applies it) and the 500 is returned in place of moto's answer, so botocore's own retry policy
    (the store's: standard mode, 4 attempts) sends it again, as it would after a lost reply.
    moto ignores ``ClientRequestToken``, so the retry is applied afresh and fails the conditions
    the first attempt met (as on any store without DynamoDB's idempotency window).

    Attributes:
        chosen: Picks the transactions to lose the reply of, from their ``TransactItems``.
        times: How many replies to lose in all.
        lost: The ``TransactItems`` whose reply was lost.
        sent: How many chosen TransactWriteItems requests were sent (retries included).
        tokens: The ``ClientRequestToken`` of each of them.
    """

    chosen: Callable[[list[dict[str, Any]]], bool]
    times: int = 1
    lost: list[list[dict[str, Any]]] = field(default_factory=list)
    sent: int = 0
    tokens: list[str] = field(default_factory=list)
    _client: Any = None
    _inside: bool = False

    def install(self, client: Any) -> LostReplies:
        self._client = client
        client.meta.events.register_first(SEND, self._send)
        return self

    def _send(self, request: Any, **_: Any) -> AWSResponse | None:
        if self._inside:
            return None  # the nested emit below: let moto answer
        body = json.loads(request.body)
        items = body["TransactItems"]
        if not self.chosen(items):
            return None
        self.sent += 1
        self.tokens.append(body.get("ClientRequestToken", ""))
        if len(self.lost) >= self.times:
            return None
        self._inside = True
        try:
            answers = self._client.meta.events.emit(SEND, request=request)
        finally:
            self._inside = False
        applied = next(answer for _, answer in answers if answer is not None)
        if applied.status_code != 200:
            return applied  # not applied: nothing to lose
        self.lost.append(items)
        body = b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"reply lost"}'
        return AWSResponse(request.url, 500, {"x-amzn-ErrorType": "InternalServerError"}, _Body(body))


def touches(op: str, sk: str) -> Callable[[list[dict[str, Any]]], bool]:
    """Chooses the transactions with an ``op`` ("Put", "Delete"...) on an item whose sort key is ``sk``."""

    def chosen(items: list[dict[str, Any]]) -> bool:
        for item in items:
            body = item.get(op)
            if body is None:
                continue
            key = body.get("Item") or body.get("Key") or {}
            if key.get("sk", {}).get("S") == sk:
                return True
        return False

    return chosen
