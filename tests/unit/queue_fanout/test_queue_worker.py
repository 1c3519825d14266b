"""FanoutFunction, one record: idempotence, what is re-enqueued and how, 410 cleanup, the queue as templated.

Every post goes through the deployed engine (``DirectBroadcaster`` and its transport) to the in-memory
``@connections`` API, which counts the HTTP requests each connection received.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from lambdacast.channels import ChannelStore
from lambdacast.delivery.queue import FanoutBatch, QueueSender
from lambdacast.delivery.queue_worker import (
    MAX_ATTEMPTS,
    DoneMarkers,
    RequeueBackoff,
    RequeueFailed,
    handle_batch,
)
from lambdacast.departures import Departures
from queue_fanout_support import ROOT, Clock, Engines, ManagementApi, SqsClock, batch_of, core, drain

from lambdacast_local.template import load_yaml, transform

TTL = 4_000_000_000


@pytest.fixture
def markers(store: ChannelStore) -> DoneMarkers:
    return DoneMarkers(store)


@pytest.fixture
def departures(store: ChannelStore) -> Departures:
    return Departures(store)


@pytest.fixture
def engine(api: ManagementApi, departures: Departures) -> Any:
    """The deployed engine, 4 posts in flight (one page = 4 recipients), on the virtual clock."""
    engines = Engines(api, departures.remove, concurrency=4)
    yield engines(batch_of(["x"]).endpoint)
    engines.close()


def queued(sqs: Any, queue_url: str) -> list[FanoutBatch]:
    return [FanoutBatch.from_body(m["Body"]) for m in drain(sqs, queue_url)]


def test_a_handled_batch_posts_each_recipient_once_and_a_redelivered_record_posts_nothing(
    engine: Any, api: ManagementApi, markers: DoneMarkers, sender: QueueSender
) -> None:
    # GIVEN a batch of three recipients, handled once
    batch = batch_of(["A", "B", "C"])
    first = handle_batch(batch, engine=engine, markers=markers, sender=sender)
    # WHEN SQS delivers the same record again (at-least-once)
    again = handle_batch(
        FanoutBatch.from_body(batch.to_body()), engine=engine, markers=markers, sender=sender
    )
    # THEN each recipient got one HTTP request and the frame once; the second receive was recognised
    assert api.attempts == {"A": 1, "B": 1, "C": 1}
    assert [api.delivered(cid) for cid in "ABC"] == [1, 1, 1]
    assert (first.delivered, first.duplicate) == (3, False)
    assert (again.delivered, again.duplicate) == (0, True)


def test_the_done_marker_is_keyed_by_channel_seq_and_batch_and_expires(
    engine: Any, markers: DoneMarkers, sender: QueueSender, dynamodb: Any
) -> None:
    # GIVEN a handled batch
    batch = batch_of(["A"])
    handle_batch(batch, engine=engine, markers=markers, sender=sender)
    # WHEN its marker is read THEN it sits under (channel, seq) / batch id and carries a TTL
    item = dynamodb.get_item(
        TableName=core.TABLE, Key={"pk": {"S": "FANOUT#big#3"}, "sk": {"S": batch.batch_id}}
    )
    assert int(item["Item"]["ttl"]["N"]) > 0


def test_only_the_recipients_that_failed_are_re_enqueued_with_the_next_attempt_and_a_delay(  # noqa: PLR0917
    engine: Any,
    api: ManagementApi,
    markers: DoneMarkers,
    sender: QueueSender,
    sqs: Any,
    queue_url: str,
    sqs_clock: SqsClock,
) -> None:
    # GIVEN a batch of five where the API refuses B and D (403: failed at once, one request each)
    api.transport.failing |= {"B", "D"}
    batch = batch_of(["A", "B", "C", "D", "E"])
    # WHEN it is handled (delays drawn at the top of their range)
    report = handle_batch(batch, engine=engine, markers=markers, sender=sender, jitter=lambda: 1.0)
    # THEN a smaller batch of just those two is queued, one attempt later, under its own id, 20 s late:
    # invisible at 19 s, there at 20 s
    assert (report.delivered, report.retried, report.delay_s, report.untried) == (3, 2, 20, 0)
    sqs_clock.advance(19)
    assert queued(sqs, queue_url) == []
    sqs_clock.advance(1)
    (remainder,) = queued(sqs, queue_url)
    assert (remainder.recipients, remainder.attempt) == (("B", "D"), 1)
    assert remainder.batch_id == f"{batch.batch_id}.r1"
    # AND when that remainder is handled (now served) and the original record is redelivered,
    # every recipient has the frame exactly once: A, C and E were never posted again
    api.transport.failing.clear()
    handle_batch(remainder, engine=engine, markers=markers, sender=sender)
    handle_batch(batch, engine=engine, markers=markers, sender=sender)
    assert [api.delivered(cid) for cid in "ABCDE"] == [1, 1, 1, 1, 1]
    assert api.attempts == {"A": 1, "B": 2, "C": 1, "D": 2, "E": 1}


def test_a_throttled_recipient_gets_the_engines_four_http_attempts_before_it_is_re_enqueued(  # noqa: PLR0917
    engine: Any, api: ManagementApi, markers: DoneMarkers, sender: QueueSender, sqs: Any, queue_url: str
) -> None:
    # GIVEN a batch where the API throttles B (429) for longer than the engine retries
    api.transport.throttled["B"] = 100
    # WHEN it is handled
    report = handle_batch(batch_of(["A", "B"]), engine=engine, markers=markers, sender=sender)
    # THEN B got 4 requests (1 + 3 retries, backoff on the virtual clock), A one, and B alone is
    # re-enqueued, with a delay: nothing is receivable at once
    assert api.attempts == {"A": 1, "B": 4}
    assert (report.retried, report.delay_s > 0) == (1, True)
    assert queued(sqs, queue_url) == []


def test_recipients_the_deadline_left_unread_are_re_enqueued_untouched(  # noqa: PLR0917 - fixtures
    engine: Any,
    api: ManagementApi,
    clock: Clock,
    markers: DoneMarkers,
    sender: QueueSender,
    sqs: Any,
    queue_url: str,
) -> None:
    # GIVEN a batch of ten (pages of 4) on an API answering in 0.5 s (one request after another on
    # the virtual clock), and 2 s to post it
    api.latency_s = 0.5
    recipients = [f"C{i}" for i in range(10)]
    batch = batch_of(recipients)
    # WHEN it is handled
    report = handle_batch(batch, engine=engine, markers=markers, sender=sender, deadline=clock() + 2.0)
    # THEN the first page was posted (4 x 0.5 s) and the deadline came before the second was read:
    # its recipients and the third page's got no request
    assert [api.attempts[cid] for cid in recipients] == [1] * 4 + [0] * 6
    assert (report.delivered, report.untried, report.retried) == (4, 6, 0)
    # AND they are queued at once, untouched: the same attempt (nothing was tried), no delay
    (rest,) = queued(sqs, queue_url)
    assert (rest.recipients, rest.attempt) == (tuple(recipients[4:]), 0)
    assert rest.batch_id == f"{batch.batch_id}.u"
    # AND the batch itself is done: a redelivery posts nothing
    assert markers.is_done(batch)


def test_a_record_the_deadline_leaves_no_page_is_re_enqueued_as_it_was_and_posted_once(  # noqa: PLR0917
    engine: Any,
    api: ManagementApi,
    clock: Clock,
    markers: DoneMarkers,
    sender: QueueSender,
    sqs: Any,
    queue_url: str,
) -> None:
    # GIVEN a batch whose deadline has already passed when it is reached
    batch = batch_of(["A", "B"])
    # WHEN it is handled
    report = handle_batch(batch, engine=engine, markers=markers, sender=sender, deadline=clock() - 1)
    # THEN no request was sent, and the very same body is back on the queue (same id, attempt 0)
    assert sum(api.attempts.values()) == 0
    assert report.untried == 2
    (copy,) = drain(sqs, queue_url)
    assert copy["Body"] == batch.to_body()
    # AND it is not marked done: the copy posts it, and then the original, redelivered, posts nothing
    assert not markers.is_done(batch)
    handle_batch(FanoutBatch.from_body(copy["Body"]), engine=engine, markers=markers, sender=sender)
    handle_batch(batch, engine=engine, markers=markers, sender=sender)
    assert api.attempts == {"A": 1, "B": 1}


def test_when_the_remainder_cannot_be_re_enqueued_the_record_fails_and_is_not_marked(
    engine: Any, api: ManagementApi, markers: DoneMarkers
) -> None:
    # GIVEN a batch with a refused recipient and a queue that cannot be reached
    class Down:
        def send_message_batch(self, **_: Any) -> dict[str, Any]:
            raise ConnectionError("unreachable")

    api.transport.failing.add("B")
    batch = batch_of(["A", "B"])
    # WHEN it is handled THEN it raises (the record becomes a batch item failure, SQS delivers it again)
    with pytest.raises(RequeueFailed):
        handle_batch(
            batch, engine=engine, markers=markers, sender=QueueSender(Down(), "https://sqs.example/q")
        )
    # AND the batch is not marked done, so the retry posts it again rather than dropping B
    assert not markers.is_done(batch)


def test_recipients_failing_on_the_last_attempt_are_given_up_and_logged(  # noqa: PLR0917 - fixtures
    engine: Any,
    api: ManagementApi,
    markers: DoneMarkers,
    sender: QueueSender,
    sqs: Any,
    queue_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a remainder on its last attempt, still refused for B
    api.transport.failing.add("B")
    batch = batch_of(["A", "B"], attempt=MAX_ATTEMPTS - 1)
    # WHEN it is handled
    report = handle_batch(batch, engine=engine, markers=markers, sender=sender)
    # THEN B is given up loudly (an error log naming the channel and seq), nothing is re-enqueued,
    # and the batch is done
    assert report.given_up == ["B"]
    assert drain(sqs, queue_url) == []
    assert any(
        r.levelname == "ERROR" and "giving up on 1 recipients of big #3" in r.getMessage()
        for r in caplog.records
    )
    assert markers.is_done(batch)


def test_a_gone_recipient_on_the_queue_path_is_removed_with_its_subscriptions(  # noqa: PLR0917 - fixtures
    engine: Any,
    api: ManagementApi,
    markers: DoneMarkers,
    sender: QueueSender,
    store: ChannelStore,
    dynamodb: Any,
) -> None:
    # GIVEN three subscribers of "big", of whom B has gone away
    core.seed_subscribers(dynamodb, "big", ["A", "B", "C"], ttl=TTL)
    api.transport.gone.add("B")
    # WHEN their batch is handled and B answers 410
    report = handle_batch(batch_of(["A", "B", "C"]), engine=engine, markers=markers, sender=sender)
    # THEN B's rows are gone, the others remain subscribed, and B is neither retried nor re-enqueued
    assert report.gone == ["B"]
    assert store.get_connection("B") is None
    assert [cid for page in store.subscriber_pages("big") for cid in page] == ["A", "C"]
    assert (report.retried, report.untried, api.attempts["B"]) == (0, 0, 1)


def test_a_failed_cleanup_of_one_gone_recipient_does_not_stop_the_others_or_the_batch(
    api: ManagementApi, markers: DoneMarkers, store: ChannelStore, sender: QueueSender, dynamodb: Any
) -> None:
    # GIVEN subscribers B, C and D gone, and a table that refuses to clean up C
    core.seed_subscribers(dynamodb, "big", ["A", "B", "C", "D"], ttl=TTL)
    api.transport.gone |= {"B", "C", "D"}

    class Flaky(Departures):
        def remove(self, connection_id: str) -> list[str]:
            if connection_id == "C":
                raise ConnectionError("DynamoDB unreachable")
            return super().remove(connection_id)

    engines = Engines(api, Flaky(store).remove)
    batch = batch_of(["A", "B", "C", "D"])
    # WHEN the batch is handled
    try:
        report = handle_batch(batch, engine=engines(batch.endpoint), markers=markers, sender=sender)
    finally:
        engines.close()
    # THEN B and D are removed, C is left to its TTL, and the batch is done (nothing to post again)
    assert sorted(report.gone) == ["B", "C", "D"]
    assert [cid for page in store.subscriber_pages("big") for cid in page] == ["A", "C"]
    assert markers.is_done(batch)


def test_a_done_marker_that_cannot_be_written_is_logged_and_the_record_still_counts_as_handled(
    engine: Any,
    api: ManagementApi,
    store: ChannelStore,
    sender: QueueSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a table that refuses the marker's write
    class Throttled(DoneMarkers):
        def mark_done(self, batch: FanoutBatch) -> None:
            raise ConnectionError("ProvisionedThroughputExceeded")

    # WHEN a batch is handled
    report = handle_batch(batch_of(["A"]), engine=engine, markers=Throttled(store), sender=sender)
    # THEN it returns normally (reporting it failed would make SQS deliver it again and, with no
    # marker, post it again), with the post made once and the failure logged
    assert (report.delivered, api.attempts["A"]) == (1, 1)
    assert any("could not mark batch" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("jitter", [0.0, 0.5, 1.0])
def test_the_re_enqueue_delay_doubles_per_attempt_within_its_upper_half_and_stays_within_sqs_limit(
    jitter: float,
) -> None:
    # GIVEN the default backoff WHEN the delays of attempts 1 to 10 are drawn
    delays = [RequeueBackoff().delay(attempt, jitter) for attempt in range(1, 11)]
    ceilings = [min(900, 20 * 2 ** (attempt - 1)) for attempt in range(1, 11)]
    # THEN each lies between half its ceiling and the ceiling, and none passes SQS's 900 s
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays) <= 900
    assert ceilings[:4] == [20, 40, 80, 160]


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
