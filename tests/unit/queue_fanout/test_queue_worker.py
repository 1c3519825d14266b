"""FanoutFunction: idempotent retries, partial failures re-enqueued, 410 cleanup, the queue as templated."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, core, drain
from lambdacast.channels import ChannelStore
from lambdacast.config import Settings
from lambdacast.delivery.queue import FanoutBatch, QueueSender, make_batches
from lambdacast.delivery.queue_worker import (
    MAX_ATTEMPTS,
    DoneMarkers,
    RequeueFailed,
    handle_batch,
    on_fanout_event,
)
from lambdacast.delivery.transport import FanoutOutcome
from lambdacast.departures import Departures
from lambdacast.handlers import Runtime

from lambdacast_local.template import load_yaml, transform

ENDPOINT = "https://k3xq9w2m7d.execute-api.eu-west-1.amazonaws.com/dev"
FRAME = json.dumps({"type": "message", "channel": "big", "seq": 3, "data": {"n": 1}})
TTL = 4_000_000_000


@dataclass
class FakePoster:
    """Posts by recording; ids in ``gone`` answer 410, ids in ``failing`` fail after the engine's retries."""

    gone: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    posts: list[str] = field(default_factory=list)

    def __call__(
        self, endpoint: str, recipients: Sequence[str], data: bytes, deadline: float | None
    ) -> FanoutOutcome:
        assert endpoint == ENDPOINT
        assert data == FRAME.encode()
        outcome = FanoutOutcome()
        for cid in recipients:
            self.posts.append(cid)
            if cid in self.gone:
                outcome.gone.append(cid)
            elif cid in self.failing:
                outcome.failed[cid] = "HTTP 500 (gave up after 4 attempts)"
            else:
                outcome.delivered.append(cid)
        return outcome


def batch_of(recipients: list[str], attempt: int = 0) -> FanoutBatch:
    batch = make_batches(recipients, channel="big", seq=3, endpoint=ENDPOINT, frame=FRAME, broadcast_id="b1")[
        0
    ]
    for _ in range(attempt):
        batch = batch.remainder(batch.recipients)
    return batch


@pytest.fixture
def markers(store: ChannelStore) -> DoneMarkers:
    return DoneMarkers(store)


@pytest.fixture
def departures(store: ChannelStore) -> Departures:
    return Departures(store)


def test_a_handled_batch_posts_each_recipient_once_and_a_redelivered_record_posts_nothing(
    markers: DoneMarkers, departures: Departures, sender: QueueSender
) -> None:
    # GIVEN a batch of three recipients, handled once
    poster = FakePoster()
    batch = batch_of(["A", "B", "C"])
    first = handle_batch(batch, post=poster, markers=markers, departures=departures, sender=sender)
    # WHEN SQS delivers the same record again (at-least-once)
    again = handle_batch(
        FanoutBatch.from_body(batch.to_body()),
        post=poster,
        markers=markers,
        departures=departures,
        sender=sender,
    )
    # THEN the recipients were posted to once, and the second receive was recognised as done
    assert poster.posts == ["A", "B", "C"]
    assert (first.delivered, first.duplicate) == (3, False)
    assert (again.delivered, again.duplicate) == (0, True)


def test_the_done_marker_is_keyed_by_channel_seq_and_batch_and_expires(
    markers: DoneMarkers, departures: Departures, sender: QueueSender, dynamodb: Any
) -> None:
    # GIVEN a handled batch
    batch = batch_of(["A"])
    handle_batch(batch, post=FakePoster(), markers=markers, departures=departures, sender=sender)
    # WHEN its marker is read THEN it sits under (channel, seq) / batch id and carries a TTL
    item = dynamodb.get_item(
        TableName=core.TABLE, Key={"pk": {"S": "FANOUT#big#3"}, "sk": {"S": batch.batch_id}}
    )
    assert int(item["Item"]["ttl"]["N"]) > 0


def test_only_the_recipients_that_failed_are_re_enqueued_with_the_next_attempt(
    markers: DoneMarkers, departures: Departures, sender: QueueSender, sqs: Any, queue_url: str
) -> None:
    # GIVEN a batch of five where two recipients still fail after the engine's retries
    poster = FakePoster(failing={"B", "D"})
    batch = batch_of(["A", "B", "C", "D", "E"])
    # WHEN it is handled
    report = handle_batch(batch, post=poster, markers=markers, departures=departures, sender=sender)
    # THEN a smaller batch of just those two is on the queue, one attempt later, under its own id
    (queued,) = [FanoutBatch.from_body(m["Body"]) for m in drain(sqs, queue_url)]
    assert queued.recipients == ("B", "D")
    assert queued.attempt == 1
    assert queued.batch_id != batch.batch_id
    assert (report.delivered, report.requeued) == (3, 2)
    # AND when that remainder is handled (now succeeding) and the original record is redelivered,
    # A, C and E are never posted again: each recipient got the frame exactly once
    poster.failing.clear()
    handle_batch(queued, post=poster, markers=markers, departures=departures, sender=sender)
    handle_batch(batch, post=poster, markers=markers, departures=departures, sender=sender)
    assert sorted(poster.posts) == ["A", "B", "B", "C", "D", "D", "E"]
    assert [p for p in poster.posts if p in {"A", "C", "E"}] == ["A", "C", "E"]


def test_when_the_remainder_cannot_be_re_enqueued_the_record_fails_and_is_not_marked(
    markers: DoneMarkers, departures: Departures
) -> None:
    # GIVEN a batch with a failing recipient and a queue that cannot be reached
    class Down:
        def send_message_batch(self, **_: Any) -> dict[str, Any]:
            raise ConnectionError("unreachable")

    batch = batch_of(["A", "B"])
    # WHEN it is handled THEN it raises (the record becomes a batch item failure, SQS delivers it again)
    with pytest.raises(RequeueFailed):
        handle_batch(
            batch,
            post=FakePoster(failing={"B"}),
            markers=markers,
            departures=departures,
            sender=QueueSender(Down(), "https://sqs.example/q"),
        )
    # AND the batch is not marked done, so the retry posts it again rather than dropping B
    assert not markers.is_done(batch)


def test_recipients_failing_on_the_last_attempt_are_given_up_and_logged(  # noqa: PLR0917 - fixtures
    markers: DoneMarkers,
    departures: Departures,
    sender: QueueSender,
    sqs: Any,
    queue_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a remainder on its last attempt, still failing for B
    batch = batch_of(["A", "B"], attempt=MAX_ATTEMPTS - 1)
    # WHEN it is handled
    report = handle_batch(
        batch, post=FakePoster(failing={"B"}), markers=markers, departures=departures, sender=sender
    )
    # THEN B is given up loudly (an error log naming the channel and seq), nothing is re-enqueued,
    # and the batch is done
    assert report.given_up == ["B"]
    assert drain(sqs, queue_url) == []
    assert any(
        r.levelname == "ERROR" and "giving up on 1 recipients of big #3" in r.getMessage()
        for r in caplog.records
    )
    assert markers.is_done(batch)


def test_a_gone_recipient_on_the_queue_path_is_removed_with_its_subscriptions(
    markers: DoneMarkers, departures: Departures, sender: QueueSender, store: ChannelStore, dynamodb: Any
) -> None:
    # GIVEN three subscribers of "big", of whom B has gone away
    core.seed_subscribers(dynamodb, "big", ["A", "B", "C"], ttl=TTL)
    # WHEN their batch is handled and B answers 410
    report = handle_batch(
        batch_of(["A", "B", "C"]),
        post=FakePoster(gone={"B"}),
        markers=markers,
        departures=departures,
        sender=sender,
    )
    # THEN B's rows are gone and the others remain subscribed
    assert report.gone == ["B"]
    assert store.get_connection("B") is None
    assert [cid for page in store.subscriber_pages("big") for cid in page] == ["A", "C"]


def test_the_function_reports_only_the_records_that_failed(
    store: ChannelStore, sqs: Any, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the fan-out function's runtime, and an SQS event with a good batch and a malformed body
    runtime = Runtime(
        Settings(table_name=core.TABLE, fanout_queue_url=queue_url),
        store=store,
        exchange=core.RecordingTransport().exchange,
        sqs=sqs,
    )
    monkeypatch.setattr("lambdacast.handlers.get_runtime", lambda: runtime)
    event = json.loads((Path(__file__).parent / "sqs-fanout.json").read_text())
    event["Records"][0]["body"] = batch_of(["A", "B"]).to_body()
    event["Records"][1]["body"] = "not a batch"
    poster = FakePoster()
    # WHEN the function handles it
    result = on_fanout_event(event, core.FakeLambdaContext(), post=poster)
    # THEN the good batch was posted and only the malformed record goes back to SQS (then the DLQ)
    assert poster.posts == ["A", "B"]
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}


def test_the_template_gives_the_queue_a_dead_letter_queue_and_a_safe_visibility_timeout() -> None:
    # GIVEN template.yaml as the SAM transform sees it
    source = load_yaml(ROOT / "template.yaml")
    cfn, _ = transform(source, ROOT)
    resources = cfn["Resources"]
    queue = resources["FanoutQueue"]["Properties"]
    timeout = resources["FanoutFunction"]["Properties"]["Timeout"]
    # THEN a record failing 5 receives moves to the DLQ, both queues are encrypted, and the
    # visibility timeout is at least 6x the consumer's timeout, as AWS advises
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["FanoutDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    assert queue["SqsManagedSseEnabled"] is True
    assert resources["FanoutDeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] >= 6 * timeout
    # AND the function consumes it with partial batch responses
    (mapping,) = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["FanoutQueue", "Arn"]}


def test_only_the_broadcasting_functions_may_send_to_the_queue() -> None:
    # GIVEN the transformed template's roles
    cfn, _ = transform(load_yaml(ROOT / "template.yaml"), ROOT)
    senders = set()
    for name, resource in cfn["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            if "PolicyDocument" not in policy:  # an Fn::If policy (the authorizer's secret): no SQS there
                assert "sqs" not in json.dumps(policy).lower()
                continue
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                if any(a.startswith("sqs:SendMessage") for a in actions):
                    senders.add(name)
                    # THEN the right is on the fan-out queue only
                    assert "FanoutQueue" in json.dumps(statement["Resource"])
    # THEN only the functions that broadcast (and the consumer, to re-enqueue) hold it
    assert senders == {
        "DefaultFunctionRole",
        "PublishFunctionRole",
        "DisconnectFunctionRole",
        "FanoutFunctionRole",
    }


def test_a_failed_cleanup_of_one_gone_recipient_does_not_stop_the_others_or_the_batch(
    markers: DoneMarkers, store: ChannelStore, sender: QueueSender, dynamodb: Any
) -> None:
    # GIVEN subscribers B, C and D gone, and a table that refuses to clean up C
    core.seed_subscribers(dynamodb, "big", ["A", "B", "C", "D"], ttl=TTL)

    class Flaky(Departures):
        def remove(self, connection_id: str) -> list[str]:
            if connection_id == "C":
                raise ConnectionError("DynamoDB unreachable")
            return super().remove(connection_id)

    batch = batch_of(["A", "B", "C", "D"])
    # WHEN the batch is handled
    report = handle_batch(
        batch, post=FakePoster(gone={"B", "C", "D"}), markers=markers, departures=Flaky(store), sender=sender
    )
    # THEN B and D are removed, C is left to its TTL, and the batch is done (nothing to post again)
    assert sorted(report.gone) == ["B", "C", "D"]
    assert [cid for page in store.subscriber_pages("big") for cid in page] == ["A", "C"]
    assert markers.is_done(batch)
