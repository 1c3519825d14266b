"""The queue fan-out's world in memory: a clock that moves only when told, a management API behind it,
the deployed engine over that API, and Lambda's SQS event source in a few lines over moto.

Time is virtual: each request to the management API costs ``latency_s`` of the clock, a request to
a connection that hangs costs its whole timeout, and the engine's backoff sleeps advance the clock
instead of waiting. Deadlines are read against the same clock, so which records and recipients a
deadline cuts is decided by counts, never by how busy the machine is.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lambdacast.delivery.broadcaster import DirectBroadcaster
from lambdacast.delivery.exchange import Reply
from lambdacast.delivery.queue import FanoutBatch, make_batches
from lambdacast.delivery.transport import ATTEMPT_TIMEOUT_S

ROOT = Path(__file__).resolve().parents[3]


def _core_support() -> Any:
    """tests/unit/core/core_support.py (the template's table definition, the recording transport)."""
    module = sys.modules.get("core_support")
    if module is None:
        spec = importlib.util.spec_from_file_location(
            "core_support", ROOT / "tests/unit/core/core_support.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["core_support"] = module
        spec.loader.exec_module(module)
    return module


core = _core_support()
ENDPOINT = "https://k3xq9w2m7d.execute-api.eu-west-1.amazonaws.com/dev"
FRAME = json.dumps({"type": "message", "channel": "big", "seq": 3, "data": {"n": 1}})


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message on the queue (received and deleted)."""
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(message)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


class Clock:
    """A monotonic clock that moves only when told (``advance``, or a backoff ``sleep``)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)  # let the other posts of the page run, as a real sleep would


@dataclass
class ManagementApi:
    """The in-memory ``@connections`` API (:class:`core.RecordingTransport`) behind a virtual clock.

    Every request is counted per connection id (``attempts``) and logged with the clock's time
    (``log``). Connections in ``hanging`` never answer: each request to them runs to its timeout
    (the attempt's 4 s, or what is left of the deadline) and fails as a timeout.
    """

    clock: Clock
    transport: core.RecordingTransport = field(default_factory=core.RecordingTransport)
    latency_s: float = 0.01
    hanging: set[str] = field(default_factory=set)
    attempts: Counter[str] = field(default_factory=Counter)
    log: list[tuple[float, str]] = field(default_factory=list)

    async def exchange(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float | None
    ) -> Reply:
        connection_id = unquote(url.rsplit("/@connections/", 1)[1])
        self.attempts[connection_id] += 1
        self.log.append((self.clock(), connection_id))
        if connection_id in self.hanging:
            self.clock.advance(min(ATTEMPT_TIMEOUT_S, ATTEMPT_TIMEOUT_S if timeout is None else timeout))
            raise TimeoutError("no answer before the timeout")
        self.clock.advance(self.latency_s)
        return await self.transport.exchange(method, url, headers, body, timeout)

    def first_request_at(self, connection_id: str) -> float:
        return next(at for at, cid in self.log if cid == connection_id)

    def delivered(self, connection_id: str) -> int:
        """How many frames reached the connection."""
        return sum(1 for cid, _ in self.transport.posts if cid == connection_id)


class Engines:
    """The deployed engine (``DirectBroadcaster``) per endpoint on the clocked API, as ``Runtime.direct``."""

    def __init__(self, api: ManagementApi, on_gone: Callable[[str], object], concurrency: int = 4) -> None:
        self.api = api
        self.on_gone = on_gone
        self.concurrency = concurrency
        self.built: dict[str, DirectBroadcaster] = {}

    def __call__(self, endpoint: str) -> DirectBroadcaster:
        engine = self.built.get(endpoint)
        if engine is None:
            engine = self.built[endpoint] = DirectBroadcaster(
                endpoint,
                concurrency=self.concurrency,
                on_gone=self.on_gone,
                exchange=self.api.exchange,
                monotonic=self.api.clock,
                sleep=self.api.clock.sleep,
                jitter=lambda: 0.5,
            )
        return engine

    def close(self) -> None:
        for engine in self.built.values():
            engine.close()


def batch_of(
    recipients: list[str], *, attempt: int = 0, name: str = "b1", endpoint: str = ENDPOINT
) -> FanoutBatch:
    """One batch of ``recipients`` (of FRAME), ``attempt`` re-enqueues along."""
    (batch,) = make_batches(
        recipients, channel="big", seq=3, endpoint=endpoint, frame=FRAME, broadcast_id=name
    )
    for _ in range(attempt):
        batch = batch.remainder(batch.recipients)
    return batch


@dataclass(frozen=True)
class LambdaContext:
    """The context Lambda passes: only the remaining time matters here."""

    remaining_ms: int = 60_000
    function_name: str = "lambdacast-FanoutFunction"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:lambdacast-FanoutFunction"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "7e1b2c3d-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
    log_group_name: str = "/aws/lambda/lambdacast-FanoutFunction"
    log_stream_name: str = "2026/12/03/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The event Lambda builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:FanoutQueue",
                "awsRegion": "eu-west-1",
            }
            for m in messages
        ]
    }


Function = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class EventSource:
    """Lambda's SQS event source mapping, in a few lines over moto.

    ``poll`` receives up to ``batch_size`` messages, invokes the function with them and deletes
    those it did not report as failed. Every message received is kept (``received``) with its
    ``ApproximateReceiveCount``: a count above 1 is a receive spent on an earlier failure.
    """

    sqs: Any
    queue_url: str
    function: Function
    batch_size: int = 4
    received: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)

    def receive(self) -> list[dict[str, Any]]:
        reply = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, AttributeNames=["All"]
        )
        return list(reply.get("Messages", []))

    def poll(self, *, remaining_ms: int = 60_000) -> dict[str, Any] | None:
        """One invocation with what is visible now; ``None`` when nothing is."""
        messages = self.receive()
        if not messages:
            return None
        return self.invoke(messages, remaining_ms=remaining_ms)

    def invoke(self, messages: list[dict[str, Any]], *, remaining_ms: int = 60_000) -> dict[str, Any]:
        self.received.extend(messages)
        result = self.function(sqs_event(messages), LambdaContext(remaining_ms))
        self.results.append(result)
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return result

    def receive_counts(self) -> list[int]:
        return [int(m["Attributes"]["ApproximateReceiveCount"]) for m in self.received]


class SqsClock:
    """Moves moto's SQS clock forward (delays and visibility timeouts run on it), never back."""

    def __init__(self, monkeypatch: Any) -> None:
        import moto.sqs.models as sqs_models

        real = sqs_models.unix_time_millis
        self.offset_s = 0.0
        monkeypatch.setattr(sqs_models, "unix_time_millis", lambda: real() + self.offset_s * 1000)

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds
