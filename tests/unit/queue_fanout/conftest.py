"""Fixtures for the queue fan-out tests: moto DynamoDB (the template's table) and SQS, fakes for posting."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from lambdacast.channels import ChannelStore
from lambdacast.delivery.queue import QueueSender
from moto import mock_aws

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
TABLE = core.TABLE
_aws_env = core._aws_env  # autouse: region, fake credentials, TABLE_NAME


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


@pytest.fixture
def queue_url(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName="FanoutQueue")["QueueUrl"])


@pytest.fixture
def sender(sqs: Any, queue_url: str) -> QueueSender:
    return QueueSender(sqs, queue_url)


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
