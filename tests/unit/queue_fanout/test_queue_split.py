"""The publisher's side: batches, the threshold split, SendMessageBatch, and the fallback when SQS fails."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lambdacast.delivery.broadcaster import DirectBroadcaster
from lambdacast.delivery.queue import (
    SQS_MAX_BYTES,
    BadBatch,
    FanoutBatch,
    QueueingBroadcaster,
    QueueSender,
    make_batches,
)
from queue_fanout_support import core, drain

ENDPOINT = "https://k3xq9w2m7d.execute-api.eu-west-1.amazonaws.com/dev"
FRAME = json.dumps({"type": "message", "channel": "big", "seq": 7, "data": 'caf\u00e9 "quoted"\n'})


def direct_engine(transport: core.RecordingTransport, concurrency: int) -> DirectBroadcaster:
    """The deployed direct engine over the in-memory @connections API."""
    return DirectBroadcaster(
        "https://abc123.execute-api.eu-west-1.amazonaws.com/dev",
        concurrency=concurrency,
        on_gone=lambda _c: None,
        exchange=transport.exchange,
    )


def ids(n: int, prefix: str = "C") -> list[str]:
    return [f"{prefix}{i:06d}=" for i in range(n)]


def test_recipients_are_cut_into_batches_of_the_batch_size_with_unique_ids() -> None:
    # GIVEN 1,234 recipients WHEN cut into batches of 500
    batches = make_batches(ids(1234), channel="big", seq=7, endpoint=ENDPOINT, frame=FRAME, batch_size=500)
    # THEN three batches of 500, 500 and 234 cover every recipient once, each with its own id
    assert [len(b.recipients) for b in batches] == [500, 500, 234]
    assert [r for b in batches for r in b.recipients] == ids(1234)
    assert len({b.batch_id for b in batches}) == 3


def test_a_batch_body_round_trips_with_the_frame_byte_for_byte() -> None:
    # GIVEN a batch of a frame with non-ASCII text, quotes and an escaped newline
    batch = make_batches(ids(3), channel="big", seq=7, endpoint=ENDPOINT, frame=FRAME)[0]
    # WHEN it is written as an SQS body and read back
    again = FanoutBatch.from_body(batch.to_body())
    # THEN everything, the frame's exact text included, survives
    assert again == batch
    assert again.frame == FRAME


def test_a_large_frame_makes_smaller_batches_that_fit_one_sqs_message() -> None:
    # GIVEN a 200 KB frame
    frame = json.dumps({"type": "message", "channel": "big", "seq": 1, "data": "x" * 200_000})
    # WHEN 5,000 recipients are batched
    batches = make_batches(ids(5000), channel="big", seq=1, endpoint=ENDPOINT, frame=frame, batch_size=500)
    # THEN every body fits in one SQS message and no recipient is lost
    assert all(len(b.to_body().encode()) <= SQS_MAX_BYTES for b in batches)
    assert sum(len(b.recipients) for b in batches) == 5000


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json\n{}",
        '{"v":2,"channel":"c","seq":1,"batch":"b","endpoint":"e","attempt":0,"recipients":["a"]}\n{}',
        '{"v":1,"channel":"c","seq":1,"batch":"b","endpoint":"e","attempt":0,"recipients":["a"]}',
        '{"v":1,"channel":"","seq":1,"batch":"b","endpoint":"e","attempt":0,"recipients":["a"]}\n{}',
        '{"v":1,"channel":"c","seq":-1,"batch":"b","endpoint":"e","attempt":0,"recipients":["a"]}\n{}',
        '{"v":1,"channel":"c","seq":1,"batch":"b","endpoint":"e","attempt":true,"recipients":["a"]}\n{}',
        '{"v":1,"channel":"c","seq":1,"batch":"b","endpoint":"e","attempt":0,"recipients":"a"}\n{}',
        '{"v":1,"channel":"c","seq":1,"batch":"b","endpoint":"e","attempt":0,"recipients":[1]}\n{}',
    ],
)
def test_a_body_that_is_not_a_batch_is_refused_with_a_clear_error(body: str) -> None:
    # GIVEN a malformed body WHEN it is parsed THEN it is refused as BadBatch (a ValueError) with a reason
    with pytest.raises(BadBatch, match="fan-out batch"):
        FanoutBatch.from_body(body)


def test_recipients_beyond_the_threshold_are_queued_and_the_rest_posted_directly(
    sqs: Any, queue_url: str, sender: QueueSender
) -> None:
    # GIVEN a channel of 131 subscribers (publisher included, no echo), a threshold of 10 and
    # batches of 5, and a recorder of SendMessageBatch calls
    calls: list[int] = []
    sqs.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch", lambda params, **_: calls.append(len(params["Entries"]))
    )
    transport = core.RecordingTransport()
    direct = direct_engine(transport, 4)
    engine = QueueingBroadcaster(direct, sender, endpoint=ENDPOINT, threshold=10, batch_size=5)
    everyone = ids(131)
    pages = [everyone[:50], everyone[50:]]
    # WHEN the frame is broadcast, skipping the publisher
    result = engine.broadcast(pages, FRAME.encode(), skip=frozenset({everyone[0]}))
    # THEN the first 10 other recipients were posted here, the other 120 queued in 24 batches of 5
    # sent 10 per SendMessageBatch call, and nobody is in both or missing
    posted = [cid for cid, _ in transport.posts]
    assert sorted(posted) == everyone[1:11]
    batches = [FanoutBatch.from_body(m["Body"]) for m in drain(sqs, queue_url)]
    queued = [cid for b in batches for cid in b.recipients]
    assert sorted(queued) == everyone[11:]
    assert len(batches) == 24
    assert all(len(b.recipients) == 5 for b in batches)
    assert calls == [10, 10, 4]
    # AND the batches name the frame's channel and seq, the endpoint, and carry the frame as posted
    assert {(b.channel, b.seq, b.endpoint, b.frame, b.attempt) for b in batches} == {
        ("big", 7, ENDPOINT, FRAME, 0)
    }
    assert (result.delivered, result.queued, result.recipients) == (10, 120, 130)


def test_a_broadcast_within_the_threshold_queues_nothing(
    sqs: Any, queue_url: str, sender: QueueSender
) -> None:
    # GIVEN a threshold of 10 and 10 recipients
    transport = core.RecordingTransport()
    engine = QueueingBroadcaster(
        direct_engine(transport, 4),
        sender,
        endpoint=ENDPOINT,
        threshold=10,
    )
    # WHEN the frame is broadcast
    result = engine.broadcast([ids(10)], FRAME.encode())
    # THEN all ten are posted directly and the queue stays empty
    assert (result.delivered, result.queued) == (10, 0)
    assert drain(sqs, queue_url) == []


class _BrokenSqs:
    def send_message_batch(self, **_: Any) -> dict[str, Any]:
        raise ConnectionError("SQS is unreachable")


class _PartlyFailingSqs:
    """Accepts entries except those whose position is odd, which fail as a server fault, twice."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.rounds = 0

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.rounds += 1
        failed = []
        for i, entry in enumerate(Entries):
            if i % 2 and self.rounds <= 2:
                failed.append(
                    {"Id": entry["Id"], "Code": "InternalError", "Message": "try again", "SenderFault": False}
                )
            else:
                self.bodies.append(entry["MessageBody"])
        return {"Successful": [], "Failed": failed}


def test_when_sqs_is_down_the_overflow_is_posted_directly_not_lost() -> None:
    # GIVEN a queue that cannot be reached, a threshold of 5 and 12 recipients
    transport = core.RecordingTransport()
    engine = QueueingBroadcaster(
        direct_engine(transport, 4),
        QueueSender(_BrokenSqs(), "https://sqs.example/q"),
        endpoint=ENDPOINT,
        threshold=5,
        batch_size=3,
    )
    # WHEN the frame is broadcast
    result = engine.broadcast([ids(12)], FRAME.encode())
    # THEN every recipient was posted from here, once, and nothing counts as queued
    assert sorted(cid for cid, _ in transport.posts) == ids(12)
    assert (result.delivered, result.queued) == (12, 0)


def test_entries_sqs_reports_failed_are_sent_again() -> None:
    # GIVEN a queue that fails every second entry of a call twice, then accepts it
    sqs = _PartlyFailingSqs()
    batches = make_batches(ids(40), channel="big", seq=7, endpoint=ENDPOINT, frame=FRAME, batch_size=4)
    # WHEN the ten batches are sent
    unsent = QueueSender(sqs, "https://sqs.example/q").send(batches)
    # THEN all ten ended on the queue exactly once
    assert unsent == []
    assert sorted(FanoutBatch.from_body(b).batch_id for b in sqs.bodies) == sorted(
        b.batch_id for b in batches
    )


class _NoClient(QueueSender):
    def __init__(self) -> None:
        super().__init__(None, "https://sqs.example/q")


def test_a_broadcast_that_queues_nothing_never_builds_an_sqs_client() -> None:
    # GIVEN a sender without a client (the deployed default) and a threshold of 10
    sender = _NoClient()
    engine = QueueingBroadcaster(
        direct_engine(core.RecordingTransport(), 2),
        sender,
        endpoint=ENDPOINT,
        threshold=10,
    )
    # WHEN a broadcast stays within the threshold
    engine.broadcast([ids(3)], FRAME.encode())
    # THEN no SQS client was created (cold start and warm publishes do not pay for one)
    assert sender._client is None


def test_a_publish_beyond_the_threshold_acks_posted_plus_queued_recipients(
    store: Any, dynamodb: Any, sqs: Any, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the $default handler's runtime with a threshold of 20, and 50 subscribers of "lobby"
    # besides the publisher (events/publish.json's connection)
    from lambdacast.config import Settings
    from lambdacast.handlers import Runtime, on_message

    transport = core.RecordingTransport()
    runtime = Runtime(
        Settings(table_name=core.TABLE, fanout_queue_url=queue_url, queue_fanout_threshold=20),
        store=store,
        exchange=transport.exchange,
        sqs=sqs,
    )
    monkeypatch.setattr("lambdacast.handlers.get_runtime", lambda: runtime)
    publisher = core.load_event("publish")["requestContext"]["connectionId"]
    core.seed_subscribers(dynamodb, "lobby", [publisher, *ids(50)], ttl=4_000_000_000)
    # WHEN the publisher publishes (no echo)
    response = on_message(core.load_event("publish"), core.FakeLambdaContext())
    # THEN 20 subscribers got the message directly, 30 are queued, and the ack counts all 50
    ack = json.loads(response["body"])
    assert ack["type"] == "ack"
    assert ack["delivered"] == 50
    direct = {cid for cid, _ in transport.posts if cid != publisher}
    queued = {cid for m in drain(sqs, queue_url) for cid in FanoutBatch.from_body(m["Body"]).recipients}
    assert len(direct) == 20
    assert direct | queued == set(ids(50))
    assert not direct & queued
