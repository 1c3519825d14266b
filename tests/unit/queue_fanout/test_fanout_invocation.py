"""FanoutFunction, one invocation: each record's share of the time, what is re-enqueued and when, what SQS
redelivers.

The queue is moto's, with the template's visibility timeout and redrive policy; an event source takes
``BatchSize`` messages at a time, as Lambda's does, and deletes the records not reported failed. Time
is virtual (queue_fanout_support.py): a request to a hanging connection costs its 4 s timeout, a
healthy one 0.01 s; SQS delays run on moto's clock, moved forward by the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lambdacast.channels import ChannelStore
from lambdacast.delivery.queue import FanoutBatch, QueueSender
from lambdacast.delivery.queue_worker import DEADLINE_MARGIN_S, MAX_ATTEMPTS, DoneMarkers, on_fanout_event
from lambdacast.handlers import Runtime
from lambdacast.presence import Member, PresenceStore
from queue_fanout_support import (
    ENDPOINT,
    Clock,
    EventSource,
    LambdaContext,
    ManagementApi,
    SqsClock,
    batch_of,
    drain,
)

TTL = 4_000_000_000


def four_records(sender: QueueSender, *, first_hangs: ManagementApi) -> list[FanoutBatch]:
    """R1 to four connections that never answer, then R2-R4 to three healthy ones each, queued in order."""
    hanging = [f"H{i}" for i in range(4)]
    first_hangs.hanging |= set(hanging)
    batches = [batch_of(hanging, name="r1")] + [
        batch_of([f"{name}{i}" for i in range(3)], name=name) for name in ("A", "B", "C")
    ]
    assert sender.send(batches) == []
    return batches


def healthy(batches: list[FanoutBatch]) -> list[str]:
    return [cid for batch in batches[1:] for cid in batch.recipients]


def received_in_order(source: EventSource, batches: list[FanoutBatch]) -> None:
    """The event held the records in the order queued (the scenario depends on R1 coming first)."""
    bodies = [m["Body"] for m in source.received[: len(batches)]]
    assert bodies == [b.to_body() for b in batches], "moto returned the records in another order"


def test_a_record_whose_endpoint_hangs_gets_its_share_and_every_record_after_it_is_posted(
    source: EventSource, api: ManagementApi, clock: Clock, sender: QueueSender
) -> None:
    # GIVEN four records in one invocation of 60 s, the first to connections that never answer
    # (4 in flight x 4 attempts x 4 s would take all of the 55 s the invocation may post for)
    batches = four_records(sender, first_hangs=api)
    started = clock()
    # WHEN the function handles them
    result = source.poll(remaining_ms=60_000)
    received_in_order(source, batches)
    # THEN the first record stopped at its fair share, a quarter of the 55 s...
    share = (60 - DEADLINE_MARGIN_S) / 4
    assert api.first_request_at("A0") - started <= share
    # ...each of its recipients was tried (1 to 4 requests, the engine's bound)...
    assert all(1 <= api.attempts[f"H{i}"] <= 4 for i in range(4))
    # ...and every recipient of the three records after it got exactly one request and the frame once
    assert {cid: api.attempts[cid] for cid in healthy(batches)} == dict.fromkeys(healthy(batches), 1)
    assert {api.delivered(cid) for cid in healthy(batches)} == {1}
    # AND no record went back to SQS as a failure
    assert result == {"batchItemFailures": []}


def test_records_left_without_time_are_re_enqueued_untouched_and_spend_no_attempt_and_no_receive(
    source: EventSource, api: ManagementApi, sender: QueueSender
) -> None:
    # GIVEN the same four records, and only 11 s left in the invocation (6 s to post, less than
    # the 4 s minimum for a second record once the first has used its 4 s)
    batches = four_records(sender, first_hangs=api)
    # WHEN the function handles them
    first = source.poll(remaining_ms=11_000)
    received_in_order(source, batches)
    # THEN R2-R4 were not started: not one request to their recipients, and no failure reported
    assert first == {"batchItemFailures": []}
    assert sum(api.attempts[cid] for cid in healthy(batches)) == 0
    # AND the next invocation receives them as they were (same body: same id, attempt 0), each
    # for the first time, and posts each recipient once
    second = source.poll()
    assert [m["Body"] for m in source.received[4:]] == [b.to_body() for b in batches[1:]]
    assert second == {"batchItemFailures": []}
    assert {cid: api.attempts[cid] for cid in healthy(batches)} == dict.fromkeys(healthy(batches), 1)
    assert source.receive_counts() == [1] * 7


def test_a_redelivered_original_of_a_record_re_enqueued_untouched_posts_nothing(
    source: EventSource, api: ManagementApi, sender: QueueSender
) -> None:
    # GIVEN R2-R4 re-enqueued untouched by a short invocation, and their copies handled by the next
    batches = four_records(sender, first_hangs=api)
    source.poll(remaining_ms=11_000)
    source.poll()
    originals = source.received[1:4]
    # WHEN SQS delivers the originals once more (at-least-once: a lost delete)
    result = source.invoke(originals)
    # THEN nothing is posted again: the copies' done markers cover the originals
    assert result == {"batchItemFailures": []}
    assert {api.delivered(cid) for cid in healthy(batches)} == {1}
    assert {api.attempts[cid] for cid in healthy(batches)} == {1}


def test_a_throttled_recipient_gets_five_queue_attempts_of_four_requests_with_growing_delays(
    source: EventSource,
    api: ManagementApi,
    sender: QueueSender,
    sqs_clock: SqsClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a batch to A and to B, whom the API throttles (429) for good
    api.transport.throttled["B"] = 10**6
    assert sender.send([batch_of(["A", "B"])]) == []
    # WHEN the event source runs until the queue is empty, moving SQS's clock a second at a time
    delays: list[int] = []
    assert source.poll() is not None
    while len(delays) < MAX_ATTEMPTS:
        waited = 0
        while source.poll() is None and waited <= 900:
            sqs_clock.advance(1)
            waited += 1
        if waited > 900:
            break
        delays.append(waited)
    # THEN B's remainder came back 4 times, 20, 40, 80 and 160 s after the last try (full jitter
    # drawn at its top), each time for another 4 requests: 5 x 4 = 20 requests; A got one
    assert delays == [20, 40, 80, 160]
    assert (api.attempts["A"], api.attempts["B"]) == (1, MAX_ATTEMPTS * 4)
    assert api.delivered("A") == 1
    # AND then B was given up, loudly; nothing was reported to SQS as failed, no message was
    # received twice, and nothing reached the dead-letter queue
    assert any("giving up on 1 recipients of big #3" in r.getMessage() for r in caplog.records)
    assert all(r == {"batchItemFailures": []} for r in source.results)
    assert source.receive_counts() == [1] * MAX_ATTEMPTS


def test_only_a_record_whose_rest_cannot_be_re_enqueued_is_reported_and_spends_a_receive(  # noqa: PLR0917
    source: EventSource,
    api: ManagementApi,
    runtime: Runtime,
    sender: QueueSender,
    sqs_clock: SqsClock,
    markers_of: Any,
) -> None:
    # GIVEN two records: R1 to a connection the API refuses, R2 to a healthy one, and a queue
    # that takes no more messages from the function
    api.transport.failing.add("X")
    r1, r2 = batch_of(["X", "Y"], name="r1"), batch_of(["Z"], name="r2")
    assert sender.send([r1, r2]) == []

    class Full:
        def send_message_batch(self, **_: Any) -> dict[str, Any]:
            raise ConnectionError("SQS unreachable")

    runtime._sender = QueueSender(Full(), sender.queue_url)
    # WHEN the function handles them
    result = source.poll()
    # THEN only R1, whose failed recipient could not be put back, is reported (SQS must redeliver it)
    (failed,) = result["batchItemFailures"] if result else []
    assert failed["itemIdentifier"] == source.received[0]["MessageId"]
    assert markers_of(r2)
    assert not markers_of(r1)
    # AND SQS delivers R1 again after the visibility timeout: its second receive
    sqs_clock.advance(360)
    again = source.receive()
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in again] == [(r1.to_body(), "2")]


@pytest.fixture
def markers_of(store: ChannelStore) -> Any:
    return DoneMarkers(store).is_done


def test_a_body_that_is_not_a_batch_reaches_the_dead_letter_queue_after_five_receives(
    source: EventSource, sqs: Any, queue_url: str, dead_letter_url: str, sqs_clock: SqsClock
) -> None:
    # GIVEN a message that is not a fan-out batch
    sqs.send_message(QueueUrl=queue_url, MessageBody="not a batch")
    # WHEN the event source receives it whenever it is visible
    for _ in range(6):
        source.poll()
        sqs_clock.advance(360)
    # THEN it was reported failed on each of its 5 receives, then moved to the dead-letter queue
    assert source.receive_counts() == [1, 2, 3, 4, 5]
    assert [m["Body"] for m in drain(sqs, dead_letter_url)] == ["not a batch"]


def test_a_batch_naming_another_endpoint_is_dropped_without_a_request(  # noqa: PLR0917 - fixtures
    source: EventSource, api: ManagementApi, sender: QueueSender, sqs: Any, queue_url: str, markers_of: Any
) -> None:
    # GIVEN batches naming plain http on another host, another API's execute-api host, this API's
    # other stage, and one naming this stack's own endpoint
    foreign = [
        batch_of(["E1"], name="evil", endpoint="http://evil.example/dev"),
        batch_of(["E2"], name="other", endpoint="https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/dev"),
        batch_of(["E3"], name="stage", endpoint=ENDPOINT.removesuffix("/dev") + "/prod"),
    ]
    own = batch_of(["A"], name="own")
    assert sender.send([*foreign, own]) == []
    # WHEN the function handles them
    result = source.poll()
    # THEN only the own endpoint's recipient got a request; the others got none, were not
    # reported for redelivery, not re-enqueued and not marked
    assert dict(api.attempts) == {"A": 1}
    assert result == {"batchItemFailures": []}
    assert drain(sqs, queue_url) == []
    assert [markers_of(b) for b in foreign] == [False, False, False]


def test_a_gone_presence_member_found_by_the_queue_path_is_announced_as_left(
    source: EventSource, api: ManagementApi, sender: QueueSender, store: ChannelStore
) -> None:
    # GIVEN user u1 in presence-room through connection G, which vanished without $disconnect,
    # and W watching the room
    channel = "presence-room"
    for cid, user in (("G", "u1"), ("W", "u2")):
        store.put_connection(cid, connected_at=1, source_ip=None, user_id=user, ttl=TTL)
        PresenceStore(store).subscribe(
            cid, channel, Member(user, {}), max_channels=10, ttl_epoch=TTL, cap=100, now_epoch=1
        )
    api.transport.gone.add("G")
    # WHEN a queued batch of the room reaches G (410)
    assert sender.send([batch_of(["G"])]) == []
    source.poll()
    # THEN G's rows are removed and W is told u1 left
    assert store.get_connection("G") is None
    left = [f for f in api.transport.frames("W") if f.get("type") == "member_left"]
    assert [(f["channel"], f["member"]["userId"]) for f in left] == [(channel, "u1")]


def test_the_deployed_wiring_posts_through_the_runtimes_engine_and_reports_only_bad_records(
    runtime: Runtime, api: ManagementApi
) -> None:
    # GIVEN the function as deployed (the runtime's engine, the real clock), and an SQS event with
    # a good batch and a malformed body
    event = json.loads((Path(__file__).parent / "sqs-fanout.json").read_text())
    event["Records"][0]["body"] = batch_of(["A", "B"]).to_body()
    event["Records"][1]["body"] = "not a batch"
    # WHEN it handles the event
    result = on_fanout_event(event, LambdaContext())
    # THEN the good batch was posted, one request each, and only the malformed record goes back to SQS
    assert dict(api.attempts) == {"A": 1, "B": 1}
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
