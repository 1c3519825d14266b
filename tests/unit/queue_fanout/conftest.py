"""Fixtures for the queue fan-out tests: moto DynamoDB and SQS as the template defines them, the deployed
engine over the in-memory management API, and a virtual clock (queue_fanout_support.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from lambdacast.channels import ChannelStore
from lambdacast.config import Settings
from lambdacast.delivery.queue import QueueSender
from lambdacast.delivery.queue_worker import on_fanout_event
from lambdacast.handlers import Runtime
from moto import mock_aws
from queue_fanout_support import (
    ENDPOINT,
    ROOT,
    Clock,
    Engines,
    EventSource,
    ManagementApi,
    SqsClock,
    core,
)

from lambdacast_local.template import load_yaml

TABLE = core.TABLE
_aws_env = core._aws_env  # autouse: region, fake credentials, TABLE_NAME
log_lines = core.log_lines  # the JSON lines the Powertools logger writes during a test


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> Any:
    props = core.template_table()
    client = boto3.client("dynamodb", region_name="eu-west-1")
    client.create_table(
        TableName=TABLE,
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        BillingMode=props["BillingMode"],
    )
    return client


@pytest.fixture
def store(dynamodb: Any) -> ChannelStore:
    return ChannelStore(TABLE, client=dynamodb, sleep=lambda _s: None)


@pytest.fixture
def sqs(aws: None) -> Any:
    return boto3.client("sqs", region_name="eu-west-1")


def template_queue() -> dict[str, Any]:
    """FanoutQueue's properties in template.yaml."""
    return dict(load_yaml(ROOT / "template.yaml")["Resources"]["FanoutQueue"]["Properties"])


@pytest.fixture
def dead_letter_url(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName="FanoutDeadLetterQueue")["QueueUrl"])


@pytest.fixture
def queue_url(sqs: Any, dead_letter_url: str) -> str:
    """FanoutQueue with the template's visibility timeout and redrive policy (maxReceiveCount) to the DLQ."""
    props = template_queue()
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": props["RedrivePolicy"]["maxReceiveCount"]}
    attributes = {"VisibilityTimeout": str(props["VisibilityTimeout"]), "RedrivePolicy": json.dumps(redrive)}
    return str(sqs.create_queue(QueueName="FanoutQueue", Attributes=attributes)["QueueUrl"])


@pytest.fixture
def sender(sqs: Any, queue_url: str) -> QueueSender:
    return QueueSender(sqs, queue_url)


# -- the function's world: virtual clock, management API, engine, runtime, event source -------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(clock: Clock) -> ManagementApi:
    return ManagementApi(clock)


@pytest.fixture
def runtime(
    store: ChannelStore, sqs: Any, queue_url: str, api: ManagementApi, monkeypatch: pytest.MonkeyPatch
) -> Runtime:
    """FanoutFunction's runtime: its own endpoint set as the template sets it, moto, the clocked API."""
    settings = Settings(
        table_name=TABLE, management_endpoint=ENDPOINT, fanout_queue_url=queue_url, fanout_concurrency=4
    )
    rt = Runtime(settings, store=store, exchange=api.exchange, sqs=sqs)
    monkeypatch.setattr("lambdacast.handlers.get_runtime", lambda: rt)
    return rt


@pytest.fixture
def engines(api: ManagementApi, runtime: Runtime) -> Iterator[Engines]:
    """The deployed engine over the clocked API; gone connections leave through the runtime's Departures."""
    built = Engines(api, runtime.departures.remove, concurrency=runtime.settings.fanout_concurrency)
    yield built
    built.close()


@pytest.fixture
def source(sqs: Any, queue_url: str, clock: Clock, engines: Engines) -> EventSource:
    """The SQS event source invoking FanoutFunction's logic on the virtual clock (full-jitter delays: 1.0)."""

    def function(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return on_fanout_event(event, context, clock=clock, engine=engines, jitter=lambda: 1.0)

    batch_size = int(_event_source()["BatchSize"])
    return EventSource(sqs, queue_url, function, batch_size=batch_size)


@pytest.fixture
def sqs_clock(monkeypatch: pytest.MonkeyPatch) -> SqsClock:
    return SqsClock(monkeypatch)


def _event_source() -> dict[str, Any]:
    """FanoutFunction's SQS event source mapping in template.yaml."""
    resources = load_yaml(ROOT / "template.yaml")["Resources"]
    (mapping,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and r["Properties"].get("FunctionName") == {"Ref": "FanoutFunction"}
    ]
    return dict(mapping)
