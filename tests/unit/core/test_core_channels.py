"""The DynamoDB store against moto, with the table built from template.yaml."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import TABLE, template_table
from lambdacast.channels import ChannelStore
from lambdacast.config import Settings
from lambdacast.errors import TooManyChannels, UnknownConnection
from lambdacast.handlers import Runtime
from lambdacast.numbering import Numbering

TTL = 1_900_000_000


def connect(store: ChannelStore, cid: str, user: str | None = None) -> None:
    store.put_connection(cid, connected_at=1_795_626_612_345, source_ip="203.0.113.24", user_id=user, ttl=TTL)


def keys(dynamodb: Any) -> set[tuple[str, str]]:
    return {(i["pk"]["S"], i["sk"]["S"]) for i in dynamodb.scan(TableName=TABLE)["Items"]}


def test_the_table_comes_from_template_yaml(dynamodb: Any) -> None:
    # GIVEN the table the fixture created WHEN described THEN its keys and billing match template.yaml
    props = template_table()
    table = dynamodb.describe_table(TableName=TABLE)["Table"]
    assert table["KeySchema"] == props["KeySchema"]
    assert table["BillingModeSummary"]["BillingMode"] == props["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == props["TimeToLiveSpecification"]["AttributeName"] == "ttl"


def test_subscribe_writes_both_sides_with_ttl_and_counts(store: ChannelStore, dynamodb: Any) -> None:
    # GIVEN a connection WHEN it subscribes
    connect(store, "A")
    assert store.subscribe("A", "lobby", max_channels=10, ttl_epoch=TTL) is True
    # THEN both rows exist with the connection's TTL and the counter is 1
    assert keys(dynamodb) == {("CONN#A", "META"), ("CHAN#lobby", "CONN#A"), ("CONN#A", "CHAN#lobby")}
    for item in dynamodb.scan(TableName=TABLE)["Items"]:
        assert item["ttl"]["N"] == str(TTL)
    conn = store.get_connection("A")
    assert conn is not None
    assert conn.subs == 1


def test_subscribe_twice_is_a_no_op(store: ChannelStore) -> None:
    # GIVEN a subscription WHEN subscribing again THEN nothing changes and the counter stays at 1
    connect(store, "A")
    store.subscribe("A", "lobby", max_channels=10, ttl_epoch=TTL)
    assert store.subscribe("A", "lobby", max_channels=10, ttl_epoch=TTL) is False
    conn = store.get_connection("A")
    assert conn is not None
    assert conn.subs == 1


def test_subscribe_beyond_the_limit_raises_and_writes_nothing(store: ChannelStore, dynamodb: Any) -> None:
    # GIVEN a connection holding 2 of 2 channels
    connect(store, "A")
    for ch in ("a", "b"):
        store.subscribe("A", ch, max_channels=2, ttl_epoch=TTL)
    before = keys(dynamodb)
    # WHEN it subscribes to a third THEN TooManyChannels and the table is unchanged
    with pytest.raises(TooManyChannels):
        store.subscribe("A", "c", max_channels=2, ttl_epoch=TTL)
    assert keys(dynamodb) == before


def test_subscribe_of_an_unknown_connection_raises_and_writes_nothing(
    store: ChannelStore, dynamodb: Any
) -> None:
    # GIVEN no META item WHEN subscribing THEN UnknownConnection and no row is written
    with pytest.raises(UnknownConnection):
        store.subscribe("ghost", "lobby", max_channels=10, ttl_epoch=TTL)
    assert keys(dynamodb) == set()


def test_unsubscribe_removes_both_sides_and_decrements(store: ChannelStore, dynamodb: Any) -> None:
    # GIVEN a subscription WHEN unsubscribing twice THEN both rows go, the counter is 0, the repeat is a no-op
    connect(store, "A")
    store.subscribe("A", "lobby", max_channels=10, ttl_epoch=TTL)
    assert store.unsubscribe("A", "lobby") is True
    assert keys(dynamodb) == {("CONN#A", "META")}
    assert store.unsubscribe("A", "lobby") is False
    conn = store.get_connection("A")
    assert conn is not None
    assert conn.subs == 0


def test_unsubscribe_after_meta_expired_still_removes_the_rows(store: ChannelStore, dynamodb: Any) -> None:
    # GIVEN a subscription whose connection META item has already expired (TTL)
    connect(store, "A")
    store.subscribe("A", "lobby", max_channels=10, ttl_epoch=TTL)
    dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": "CONN#A"}, "sk": {"S": "META"}})
    # WHEN it unsubscribes THEN both rows go anyway
    assert store.unsubscribe("A", "lobby") is True
    assert keys(dynamodb) == set()


def test_subscriber_pages_are_paginated_and_complete(store: ChannelStore) -> None:
    # GIVEN 23 subscribers of one channel and a subscriber of another
    ids = [f"C{n:02d}" for n in range(23)]
    for cid in [*ids, "X"]:
        connect(store, cid)
    for cid in ids:
        store.subscribe(cid, "lobby", max_channels=10, ttl_epoch=TTL)
    store.subscribe("X", "other", max_channels=10, ttl_epoch=TTL)
    Numbering(store).current("lobby")  # the SEQ item shares the partition but is not a subscriber
    # WHEN read 5 per page
    pages = list(store.subscriber_pages("lobby", page_size=5))
    # THEN every subscriber comes exactly once, over several pages, and nobody else
    assert len(pages) >= 5
    assert sorted(c for page in pages for c in page) == ids


def test_subscriber_pages_use_a_strongly_consistent_query(store: ChannelStore, dynamodb: Any) -> None:
    # GIVEN a recorder of the Query parameters
    seen: list[dict[str, Any]] = []
    dynamodb.meta.events.register(
        "provide-client-params.dynamodb.Query", lambda params, **_: seen.append(params)
    )
    # WHEN the subscribers are read
    list(store.subscriber_pages("lobby"))
    # THEN it was a consistent Query on the channel partition with begins_with(sk, 'CONN#')
    assert len(seen) == 1
    assert seen[0]["ConsistentRead"] is True
    assert seen[0]["KeyConditionExpression"] == "pk = :pk AND begins_with(sk, :prefix)"
    assert seen[0]["ExpressionAttributeValues"] == {":pk": {"S": "CHAN#lobby"}, ":prefix": {"S": "CONN#"}}


def test_remove_connection_deletes_everything_of_that_connection_only(
    store: ChannelStore, dynamodb: Any
) -> None:
    # GIVEN A on 60 channels (more than two 25-item batches, both sides) and B on one of them
    connect(store, "A")
    connect(store, "B")
    channels = [f"ch{n:02d}" for n in range(60)]
    for ch in channels:
        store.subscribe("A", ch, max_channels=100, ttl_epoch=TTL)
    store.subscribe("B", "ch00", max_channels=100, ttl_epoch=TTL)
    # WHEN A is removed
    removed = store.remove_connection("A")
    # THEN A's channels are reported and only B's items remain
    assert sorted(removed) == channels
    assert keys(dynamodb) == {("CONN#B", "META"), ("CONN#B", "CHAN#ch00"), ("CHAN#ch00", "CONN#B")}
    # AND removing it again is harmless
    assert store.remove_connection("A") == []


def test_remove_connection_retries_unprocessed_items(
    store: ChannelStore, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a batch_write_item that leaves every request unprocessed the first time
    connect(store, "A")
    store.subscribe("A", "lobby", max_channels=10, ttl_epoch=TTL)
    real = dynamodb.batch_write_item
    calls: list[int] = []

    def flaky(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            return {"UnprocessedItems": kwargs["RequestItems"]}
        return real(**kwargs)

    monkeypatch.setattr(dynamodb, "batch_write_item", flaky)
    # WHEN the connection is removed THEN the second attempt deletes everything
    store.remove_connection("A")
    assert len(calls) == 2
    assert keys(dynamodb) == set()


def test_the_deployed_store_client_has_a_pool_for_cleanups_on_fanout_threads() -> None:
    # GIVEN the runtime the handlers build from settings (fan-out concurrency 96)
    runtime = Runtime(Settings(table_name=TABLE, fanout_concurrency=96))
    # WHEN its DynamoDB client is created THEN its pool is at least the fan-out concurrency
    config = vars(runtime.store.client.meta.config)
    assert config["max_pool_connections"] >= 96
    assert config["retries"]["mode"] == "standard"


def test_subscribe_is_one_conditional_transaction(store: ChannelStore, dynamodb: Any) -> None:
    # GIVEN a recorder of TransactWriteItems calls
    seen: list[dict[str, Any]] = []
    dynamodb.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems", lambda params, **_: seen.append(params)
    )
    connect(store, "A")
    # WHEN a connection subscribes
    store.subscribe("A", "lobby", max_channels=7, ttl_epoch=TTL)
    # THEN both rows and the counter change in a single transaction, each row only if absent and
    # the counter only below the limit, so concurrent subscribes can neither duplicate nor overshoot,
    # and only while the connection is not being removed (nothing can outlive its removal)
    assert len(seen) == 1
    ops = seen[0]["TransactItems"]
    assert [next(iter(op)) for op in ops] == ["Put", "Put", "Update"]
    assert ops[0]["Put"]["ConditionExpression"] == "attribute_not_exists(pk)"
    assert ops[1]["Put"]["ConditionExpression"] == "attribute_not_exists(pk)"
    assert (
        ops[2]["Update"]["ConditionExpression"]
        == "attribute_exists(pk) AND subs < :max AND attribute_not_exists(closing)"
    )
    assert ops[2]["Update"]["ExpressionAttributeValues"][":max"] == {"N": "7"}


def _conflict(dynamodb: Any) -> Exception:
    error: Any = {
        "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
        "CancellationReasons": [{"Code": "None"}, {"Code": "None"}, {"Code": "TransactionConflict"}],
    }
    exc: Exception = dynamodb.exceptions.TransactionCanceledException(error, "TransactWriteItems")
    return exc


def test_a_transaction_conflict_is_retried(
    store: ChannelStore, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a concurrent transaction on the META item cancels the first two attempts
    # (a client subscribing to several channels at once)
    connect(store, "A")
    real = dynamodb.transact_write_items
    attempts: list[int] = []

    def conflicting(**kwargs: Any) -> Any:
        attempts.append(1)
        if len(attempts) <= 2:
            raise _conflict(dynamodb)
        return real(**kwargs)

    monkeypatch.setattr(dynamodb, "transact_write_items", conflicting)
    # WHEN it subscribes THEN the third attempt succeeds and the subscription is complete
    assert store.subscribe("A", "lobby", max_channels=10, ttl_epoch=TTL) is True
    assert len(attempts) == 3
    assert list(store.subscriber_pages("lobby")) == [["A"]]


def test_persistent_conflicts_are_raised_not_hidden(
    store: ChannelStore, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN transactions that always conflict
    connect(store, "A")

    def always(**_kwargs: Any) -> Any:
        raise _conflict(dynamodb)

    monkeypatch.setattr(dynamodb, "transact_write_items", always)
    # WHEN subscribing THEN the cancellation surfaces (the handler turns it into internal_error)
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        store.subscribe("A", "lobby", max_channels=10, ttl_epoch=TTL)
