"""Fault-injection test app: each message does one AWS call with boto3 and returns what boto3 saw.

Message body: {"do": "add", "key": K, "attempts": N} adds 1 to item K's ``n`` (UpdateItem);
{"do": "post", "data": D, "attempts": N} posts D to the sender's own connection; $disconnect returns
the close code and reason it was given. ``attempts`` is boto3's
``total_max_attempts`` (standard retry mode). The result's body is {"ok", "error", "retries"}.
"""

import json
import os

import boto3
import botocore.config
import botocore.exceptions

_clients = {}


def _client(service, attempts, endpoint=None):
    key = (service, attempts, endpoint)
    if key not in _clients:
        config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": attempts})
        _clients[key] = boto3.client(service, endpoint_url=endpoint, config=config)
    return _clients[key]


def connect(event, context):
    return {"statusCode": 200}


def disconnect(event, context):
    ctx = event["requestContext"]
    closed = {"code": ctx.get("disconnectStatusCode"), "reason": ctx.get("disconnectReason")}
    return {"statusCode": 200, "body": json.dumps(closed)}


def _call(fn):
    try:
        reply = fn()
    except botocore.exceptions.ClientError as exc:
        error = exc.response["Error"]["Code"]
        return {"ok": False, "error": error, "retries": exc.response["ResponseMetadata"]["RetryAttempts"]}
    except botocore.exceptions.BotoCoreError as exc:  # no HTTP reply at all (a dropped connection)
        return {"ok": False, "error": type(exc).__name__, "retries": None}
    return {"ok": True, "error": None, "retries": reply["ResponseMetadata"]["RetryAttempts"]}


def work(event, context):
    body = json.loads(event["body"])
    attempts = int(body.get("attempts", 3))
    ctx = event["requestContext"]
    if body["do"] == "add":
        table = _client("dynamodb", attempts)
        report = _call(
            lambda: table.update_item(
                TableName=os.environ["TABLE"],
                Key={"pk": {"S": body["key"]}},
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        )
    else:
        management = _client(
            "apigatewaymanagementapi", attempts, f"https://{ctx['domainName']}/{ctx['stage']}"
        )
        report = _call(
            lambda: management.post_to_connection(
                ConnectionId=ctx["connectionId"], Data=body["data"].encode()
            )
        )
    return {"statusCode": 200, "body": json.dumps(report)}
