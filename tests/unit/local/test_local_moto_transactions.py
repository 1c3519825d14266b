"""The embedded DynamoDB's transactions cost what they touch, and stay all-or-nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models.table import Table

from lambdacast_local.embedded_aws import moto_transactions

TABLE = "t"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    moto_transactions.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
        client.put_item(TableName=TABLE, Item={"pk": {"S": "b"}, "sk": {"S": "1"}, "n": {"N": "1"}})
        yield client


def _item(client: Any, pk: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = client.get_item(
        TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": "1"}}
    ).get("Item")
    return found


def _transaction(condition_on_c: str) -> list[dict[str, Any]]:
    return [
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "a"}, "sk": {"S": "1"}}}},
        {
            "Update": {
                "TableName": TABLE,
                "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}},
                "UpdateExpression": "ADD n :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
        {
            "ConditionCheck": {
                "TableName": TABLE,
                "Key": {"pk": {"S": "c"}, "sk": {"S": "1"}},
                "ConditionExpression": condition_on_c,
            }
        },
    ]


def test_a_cancelled_transaction_changes_nothing(dynamodb: Any) -> None:
    # GIVEN a transaction whose last item's condition fails (item c does not exist)
    # WHEN it is sent
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=_transaction("attribute_exists(pk)"))
    # THEN it is cancelled, the new item was not kept and the updated one is as before
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _item(dynamodb, "a") is None
    assert _item(dynamodb, "b") == {"pk": {"S": "b"}, "sk": {"S": "1"}, "n": {"N": "1"}}


def test_a_successful_transaction_applies_every_item(dynamodb: Any) -> None:
    # WHEN a transaction whose conditions hold is sent
    dynamodb.transact_write_items(TransactItems=_transaction("attribute_not_exists(pk)"))
    # THEN every write is applied
    assert _item(dynamodb, "a") == {"pk": {"S": "a"}, "sk": {"S": "1"}}
    assert _item(dynamodb, "b") == {"pk": {"S": "b"}, "sk": {"S": "1"}, "n": {"N": "2"}}


def test_no_transaction_copies_a_whole_table(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN copying a table fails the test (moto's own code backs up whole tables per transaction)
    def refuse(self: Table, memo: dict[int, Any]) -> Table:
        pytest.fail("a transaction deep-copied the whole table")

    monkeypatch.setattr(Table, "__deepcopy__", refuse, raising=False)
    # WHEN transactions succeed and fail
    dynamodb.transact_write_items(TransactItems=_transaction("attribute_not_exists(pk)"))
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=_transaction("attribute_exists(pk)"))
    # THEN no table was copied, and the failed one still changed nothing
    assert _item(dynamodb, "b") == {"pk": {"S": "b"}, "sk": {"S": "1"}, "n": {"N": "2"}}
