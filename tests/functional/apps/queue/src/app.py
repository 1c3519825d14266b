"""Enqueue on $default; work off the queue and answer through the management API."""

import json
import os

import boto3

sqs = boto3.client("sqs")
management = boto3.client("apigatewaymanagementapi", endpoint_url=os.environ["MANAGEMENT_ENDPOINT"])


def enqueue(event, context):
    connection_id = event["requestContext"]["connectionId"]
    for text in event["body"].split(","):
        sqs.send_message(
            QueueUrl=os.environ["QUEUE_URL"],
            MessageBody=json.dumps({"connectionId": connection_id, "text": text}),
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "job"}},
        )
    return {"statusCode": 200}


def work(event, context):
    failures = []
    for record in event["Records"]:
        job = json.loads(record["body"])
        if job["text"] == "poison":
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        reply = {
            "done": job["text"],
            "kind": record["messageAttributes"]["kind"]["stringValue"],
            "source": record["eventSource"],
            "receiveCount": record["attributes"]["ApproximateReceiveCount"],
        }
        management.post_to_connection(ConnectionId=job["connectionId"], Data=json.dumps(reply).encode())
    return {"batchItemFailures": failures}
