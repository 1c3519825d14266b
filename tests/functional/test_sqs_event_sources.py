"""SQS event sources from the template: queues in the embedded AWS, pollers invoking the worker function."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from websockets.sync.client import connect

APP = Path(__file__).parent / "apps" / "queue" / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP


def test_queued_jobs_are_processed_by_the_event_source(lambdacast):
    # GIVEN a connection whose $default handler enqueues one job per comma-separated word
    with connect(lambdacast.ws_url) as ws:
        # WHEN it sends three jobs
        ws.send("a,b,c")
        replies = [json.loads(ws.recv(timeout=30)) for _ in range(3)]
    # THEN the worker function got each one from SQS, with its attributes, and answered
    assert sorted(reply["done"] for reply in replies) == ["a", "b", "c"]
    assert {reply["kind"] for reply in replies} == {"job"}
    assert {reply["source"] for reply in replies} == {"aws:sqs"}


def test_reported_failures_are_retried_then_dead_lettered_while_the_rest_succeed(lambdacast):
    # GIVEN a batch with a poison message among good ones
    with connect(lambdacast.ws_url) as ws:
        ws.send("good1,poison,good2")
        # WHEN the worker reports the poison message as failed
        replies = [json.loads(ws.recv(timeout=30)) for _ in range(2)]
    # THEN the good ones were delivered once each...
    assert sorted(reply["done"] for reply in replies) == ["good1", "good2"]
    # ...and the poison one ends in the dead-letter queue after maxReceiveCount receives
    sqs = boto3.client(
        "sqs",
        endpoint_url=lambdacast.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    url = sqs.get_queue_url(QueueName="JobsDeadLetters")["QueueUrl"]
    dead: list[str] = []
    for _ in range(30):
        for message in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []):
            dead.append(json.loads(message["Body"])["text"])
        if dead:
            break
    assert dead == ["poison"]
