"""A channel beyond one Lambda, end to end through ``lambdacast local`` and the project's own template.

The publisher's ``$default`` posts to the first ``QueueFanoutThreshold`` (here 1,000) recipients
itself and queues the rest on ``FanoutQueue`` (moto SQS); ``FanoutFunction`` is invoked by the
emulator's SQS poller, the way Lambda's event source mapping does, and posts them through the
emulator's https ``@connections`` API. The recipients are simulated connections the emulator holds
without sockets; their subscription rows are written straight into the table (in the store's item
layout: the subscribe action itself is tested elsewhere, one invocation per subscriber would only
time the emulator).

``LAMBDACAST_QUEUE_FANOUT_SUBSCRIBERS`` sets the channel's size (default 10,000).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from websockets.sync.client import ClientConnection, connect

from lambdacast_local.testing import RunningEmulator

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIBERS = int(os.environ.get("LAMBDACAST_QUEUE_FANOUT_SUBSCRIBERS", "10000"))
THRESHOLD = 1000
CHANNEL = "stadium"
TTL = int(time.time()) + 7200


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return ROOT / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {"parameter_overrides": {"QueueFanoutThreshold": str(THRESHOLD)}}


def _aws(lambdacast: RunningEmulator, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=lambdacast.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _subscribe_rows(
    lambdacast: RunningEmulator, ids: list[str], channel: str = CHANNEL, *, delete: bool = False
) -> None:
    """Write each connection and its subscription to ``channel``, as ChannelStore lays them out.

    With ``delete``, remove those items instead (moto's Query reads the whole table: a test
    leaves it as small as it found it).
    """
    dynamodb = _aws(lambdacast, "dynamodb")
    app = lambdacast.emulator.app_model
    assert app is not None
    table = app.functions["DefaultFunction"].environment["TABLE_NAME"]
    items = []
    for cid in ids:
        for pk, sk, extra in (
            (f"CONN#{cid}", "META", {"connectedAt": {"N": str(int(time.time() * 1000))}, "subs": {"N": "1"}}),
            (f"CHAN#{channel}", f"CONN#{cid}", {}),
            (f"CONN#{cid}", f"CHAN#{channel}", {}),
        ):
            items.append({"pk": {"S": pk}, "sk": {"S": sk}, "ttl": {"N": str(TTL)}, **extra})

    def write(start: int) -> None:
        chunk = items[start : start + 25]
        request = {
            table: [
                {"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}}
                if delete
                else {"PutRequest": {"Item": item}}
                for item in chunk
            ]
        }
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(0, len(items), 25)))


@pytest.fixture(scope="module")
def subscribers(lambdacast: RunningEmulator) -> Iterator[list[str]]:
    """SUBSCRIBERS simulated connections (the test writes their subscription rows); dropped afterwards."""
    ids = lambdacast.simulated_connections(SUBSCRIBERS)
    try:
        yield ids
    finally:  # shutting down would run one $disconnect per simulated connection
        _forget(lambdacast, ids)
        # moto's state outlives this emulator: later modules serving the same template share the
        # table, and its Query reads the whole table
        _subscribe_rows(lambdacast, ids, delete=True)


def _forget(lambdacast: RunningEmulator, ids: list[str]) -> None:
    """Drop simulated connections without $disconnect: @connections answers 410 for them from now on."""

    async def forget() -> None:
        gateway = lambdacast.emulator.gateway
        assert gateway is not None
        for cid in ids:
            gateway.connections.pop(cid, None)

    lambdacast.call(forget())


def _frames_by_connection(lambdacast: RunningEmulator, ids: list[str]) -> dict[str, list[str | bytes]]:
    async def read() -> dict[str, list[str | bytes]]:
        gateway = lambdacast.emulator.gateway
        assert gateway is not None
        return {cid: list(gateway.simulated[cid].sink or []) for cid in ids}

    return lambdacast.call(read())


def _queue_is_empty(lambdacast: RunningEmulator) -> bool:
    sqs = _aws(lambdacast, "sqs")
    app = lambdacast.emulator.app_model
    assert app is not None
    for queue in app.queues:
        if queue.logical_id != "FanoutQueue":
            continue
        url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if int(attributes["ApproximateNumberOfMessages"]) or int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        ):
            return False
    return True


def _request(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    ws.send(json.dumps(frame))
    while True:
        reply = json.loads(ws.recv(timeout=60))
        if reply.get("id") == frame["id"]:
            return dict(reply)


def test_subscribers_gone_without_disconnect_are_removed_on_the_queue_path_too(
    lambdacast: RunningEmulator,
) -> None:
    # (Runs before the 10,000-subscriber test: moto's Query reads its whole table, so cleanups
    # after that one would time the emulator, not the code.)
    # GIVEN a channel of 1,500 simulated subscribers (500 beyond the threshold), 50 of the queued
    # ones vanished without $disconnect (their rows remain; @connections answers 410 for them).
    # The Query returns subscribers in key order, so the publisher keeps the first 1,000 ids in
    # sorted order (itself skipped) and everyone from sorted index 1,001 on goes through the queue.
    channel = "arena"
    ids = sorted(lambdacast.simulated_connections(1500))
    try:
        _subscribe_rows(lambdacast, ids, channel)
        gone = ids[1100::8]
        live = [cid for cid in ids if cid not in set(gone)]
        _forget(lambdacast, gone)
        with connect(lambdacast.ws_url, open_timeout=30) as ws:
            assert (
                _request(ws, {"action": "subscribe", "id": "s", "channel": channel})["type"] == "subscribed"
            )
            # WHEN a message is published to it
            ack = _request(ws, {"action": "publish", "id": "p", "channel": channel, "data": "kick-off"})
            assert ack["type"] == "ack", ack
            assert lambdacast.wait_for(lambda emu: all(_frames_by_connection(emu, live).values()), timeout=60)
        assert lambdacast.wait_for(_queue_is_empty, timeout=60)
        # THEN every live subscriber got it exactly once...
        assert {len(got) for got in _frames_by_connection(lambdacast, live).values()} == {1}
        # ...and every gone one lost its subscription rows, removed by FanoutFunction
        dynamodb = _aws(lambdacast, "dynamodb")
        app = lambdacast.emulator.app_model
        assert app is not None
        table = app.functions["DefaultFunction"].environment["TABLE_NAME"]
        remaining: set[str] = set()
        for page in dynamodb.get_paginator("query").paginate(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"CHAN#{channel}"}},
            ConsistentRead=True,
        ):
            remaining.update(item["sk"]["S"].removeprefix("CONN#") for item in page["Items"])
        assert remaining & set(gone) == set()
        assert set(live) <= remaining
    finally:
        _forget(lambdacast, ids)
        _subscribe_rows(lambdacast, ids, channel, delete=True)


def test_every_subscriber_of_a_channel_beyond_one_lambda_receives_the_message_exactly_once(
    lambdacast: RunningEmulator, subscribers: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a channel of SUBSCRIBERS simulated connections and one real client subscribed to it
    # (first: a busy moto right after 30,000 writes can outlast the store's read timeouts)
    with connect(lambdacast.ws_url, open_timeout=30) as ws:
        assert _request(ws, {"action": "subscribe", "id": "s", "channel": CHANNEL})["type"] == "subscribed"
        _subscribe_rows(lambdacast, subscribers)
        # WHEN the client publishes one message (no echo)
        started = time.perf_counter()
        ack = _request(ws, {"action": "publish", "id": "p", "channel": CHANNEL, "data": {"goal": 1}})
        acked = time.perf_counter() - started
        # THEN the ack counts every other subscriber: the posted ones plus the queued ones
        assert ack["type"] == "ack", ack
        assert ack["delivered"] == SUBSCRIBERS
        # AND every simulated subscriber receives it (the queued ones through FanoutFunction)
        assert lambdacast.wait_for(
            lambda emu: all(_frames_by_connection(emu, subscribers).values()), timeout=120
        ), "some subscribers never received the message"
        everyone = time.perf_counter() - started
    # AND once the fan-out queue is drained, each got exactly one frame: that message, that seq
    assert lambdacast.wait_for(_queue_is_empty, timeout=60)
    frames = _frames_by_connection(lambdacast, subscribers)
    counts = {cid: len(got) for cid, got in frames.items()}
    assert set(counts.values()) == {1}, {
        n: sum(1 for c in counts.values() if c == n) for n in set(counts.values())
    }
    decoded = [json.loads(got[0]) for got in frames.values()]
    assert {(f["type"], f["channel"], f["seq"], json.dumps(f["data"])) for f in decoded} == {
        ("message", CHANNEL, ack["seq"], '{"goal": 1}')
    }
    # AND the queue path really ran: FanoutFunction was invoked by the SQS event source
    # with every record handled (no invocation failed, no record reported back to the queue)
    fanout_runs = [inv for inv in lambdacast.invocations if inv.label.startswith("sqs ")]
    assert fanout_runs
    assert all(inv.ok and inv.result == {"batchItemFailures": []} for inv in fanout_runs)
    with capsys.disabled():
        print(
            f"\n[queue fan-out] {SUBSCRIBERS} subscribers, threshold {THRESHOLD}: ack after {acked:.2f} s, "
            f"all delivered after {everyone:.2f} s"
        )
