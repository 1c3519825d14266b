"""SQS event sources: pollers that invoke functions with batches, the way Lambda's event source mapping does.

A batch is deleted when the function succeeds; with ``ReportBatchItemFailures`` only the items it does not
report as failed are deleted. A failed invocation deletes nothing: the messages become visible again after
the queue's visibility timeout and, past the redrive policy's ``maxReceiveCount``, move to the DLQ (moto
applies the redrive policy).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from typing import Any

from lambdacast_local.lambda_pool import LambdaService
from lambdacast_local.sqs.model import Queue, SqsEventSource

_LOG = logging.getLogger(__name__)
_WAIT_S = 1  # long-poll seconds: short, so shutdown is quick


def _message_attributes(raw: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for name, value in raw.items():
        binary = value.get("BinaryValue")
        converted[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode() if isinstance(binary, bytes) else None,
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
    return converted


def sqs_event(messages: list[dict[str, Any]], queue: Queue, region: str) -> dict[str, Any]:
    """Build the SQS event Lambda passes to a function for one batch."""
    records = [
        {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": _message_attributes(message.get("MessageAttributes", {})),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue.arn,
            "awsRegion": region,
        }
        for message in messages
    ]
    return {"Records": records}


def failed_ids(result: Any) -> set[str] | None:
    """The message ids a ``ReportBatchItemFailures`` response reports; ``None`` when it is malformed."""
    if result is None:
        return set()
    if not isinstance(result, dict):
        return None
    failures = result.get("batchItemFailures", [])
    if not isinstance(failures, list) or not all(isinstance(f, dict) for f in failures):
        return None
    return {str(failure.get("itemIdentifier")) for failure in failures}


class SqsPollers:
    """One or more pollers per event source mapping, stopped with ``close``."""

    def __init__(self, client: Any, lambdas: LambdaService, region: str, pollers_per_source: int = 2) -> None:
        self._client = client
        self._lambdas = lambdas
        self._region = region
        self._per_source = pollers_per_source
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, sources: list[SqsEventSource], queues: list[Queue]) -> None:
        """Start polling every source."""
        by_name = {queue.name: queue for queue in queues}
        loop = asyncio.get_running_loop()
        for source in sources:
            queue = by_name[source.queue]
            url = self._client.get_queue_url(QueueName=queue.name)["QueueUrl"]
            for _ in range(self._per_source):
                self._tasks.append(loop.create_task(self._poll(source, queue, url)))

    async def _poll(self, source: SqsEventSource, queue: Queue, url: str) -> None:
        while True:
            try:
                reply = await asyncio.to_thread(
                    self._client.receive_message,
                    QueueUrl=url,
                    MaxNumberOfMessages=min(source.batch_size, 10),
                    WaitTimeSeconds=_WAIT_S,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                messages = reply.get("Messages", [])
                if messages:
                    await self._deliver(source, queue, url, messages)
            except asyncio.CancelledError:
                raise
            except Exception:  # a poller must survive a hiccup of the embedded AWS
                _LOG.exception("SQS poller for %s failed; retrying", queue.name)
                await asyncio.sleep(0.5)

    async def _deliver(
        self, source: SqsEventSource, queue: Queue, url: str, messages: list[dict[str, Any]]
    ) -> None:
        outcome = await self._lambdas.invoke(
            source.function, sqs_event(messages, queue, self._region), f"sqs {queue.name}"
        )
        if not outcome.ok:
            return  # nothing deleted: redelivered after the visibility timeout
        keep = failed_ids(outcome.result) if source.report_batch_item_failures else set()
        if keep is None:
            return  # a malformed failure report fails the whole batch, as on AWS
        done = [m for m in messages if m["MessageId"] not in keep]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[start : start + 10])
            ]
            await asyncio.to_thread(self._client.delete_message_batch, QueueUrl=url, Entries=entries)

    async def close(self) -> None:
        """Stop every poller."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
