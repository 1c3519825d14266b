"""SQS event shapes and batch-failure reports (pure)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import SqsModel

from lambdacast_local.sqs.model import Queue
from lambdacast_local.sqs.pollers import failed_ids, sqs_event


def test_sqs_event_validates_against_the_powertools_model():
    # GIVEN a message as SQS returns it
    message = {
        "MessageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "ReceiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "Body": "hello",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1545082649183",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1545082649185",
        },
        "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "job"}},
    }
    queue = Queue("Q", "Q", "arn:aws:sqs:us-east-1:123456789012:Q", {})
    # WHEN the event is built
    event = sqs_event([message], queue, "us-east-1")
    # THEN Powertools' SqsModel accepts it
    model = SqsModel.model_validate(event)
    assert model.Records[0].body == "hello"
    assert model.Records[0].messageAttributes["kind"].stringValue == "job"


def test_failed_ids_reads_batch_item_failures():
    # WHEN a function reports two failures, none, or nothing at all
    # THEN the ids to keep follow the report
    report = {"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}
    assert failed_ids(report) == {"a", "b"}
    assert failed_ids({"batchItemFailures": []}) == set()
    assert failed_ids(None) == set()


def test_malformed_failure_report_fails_the_whole_batch():
    # WHEN the report is not the documented shape
    # THEN it is rejected (None: nothing is deleted), as Lambda does
    assert failed_ids("oops") is None
    assert failed_ids({"batchItemFailures": ["a"]}) is None
