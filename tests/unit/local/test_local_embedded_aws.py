"""The embedded AWS: moto's process-wide state does not leak from one emulator into the next."""

from __future__ import annotations

from lambdacast_local.embedded_aws.services import EmbeddedAws


def _create_table(aws: EmbeddedAws, name: str) -> None:
    aws.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def test_the_last_embedded_aws_to_stop_empties_motos_shared_state():
    # GIVEN an embedded AWS with a table, stopped while no other one runs in the process
    first = EmbeddedAws()
    first.start()
    _create_table(first, "left-behind")
    first.stop()
    # WHEN another one starts in the same process
    second = EmbeddedAws()
    second.start()
    try:
        # THEN it starts empty
        assert second.client("dynamodb").list_tables()["TableNames"] == []
    finally:
        second.stop()


def test_an_embedded_aws_stopping_while_another_runs_keeps_the_shared_state():
    # GIVEN two embedded AWS running at once (they share moto's state) and a table made through the first
    first, second = EmbeddedAws(), EmbeddedAws()
    first.start()
    second.start()
    try:
        _create_table(first, "shared")
        # WHEN the first stops
        first.stop()
        # THEN the second still sees the table
        assert "shared" in second.client("dynamodb").list_tables()["TableNames"]
    finally:
        second.stop()
