"""Echo app handlers: every message is posted back through the management API."""

import json
import os
import time

import boto3

_client_cache = {}


def _client(endpoint):
    if endpoint not in _client_cache:
        _client_cache[endpoint] = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
    return _client_cache[endpoint]


def connect(event, context):
    query = event.get("queryStringParameters") or {}
    if query.get("refuse"):
        return {"statusCode": int(query["refuse"]), "body": "refused"}
    if query.get("sleep"):
        time.sleep(float(query["sleep"]))
    if query.get("wait_for"):  # block until the test creates this file (bounded: never hang a worker)
        deadline = time.monotonic() + 30
        while not os.path.exists(query["wait_for"]) and time.monotonic() < deadline:
            time.sleep(0.02)
    if query.get("crash"):
        raise RuntimeError("connect crashed")
    headers = {}
    if query.get("protocol"):
        headers["Sec-WebSocket-Protocol"] = query["protocol"]
    return {"statusCode": 200, "headers": headers}


def disconnect(event, context):
    return {"statusCode": 200, "body": json.dumps(event["requestContext"])}


def echo(event, context):
    ctx = event["requestContext"]
    body = event.get("body") or ""
    if body == "crash":
        raise RuntimeError("echo crashed")
    if body == "sleep":
        time.sleep(10)
    if body == "whoami":
        payload = ctx["connectionId"]
    elif body == "context":
        payload = json.dumps(
            {
                "function_name": context.function_name,
                "aws_request_id": context.aws_request_id,
                "remaining_ms": context.get_remaining_time_in_millis(),
                "env": dict(os.environ),
                "event": event,
            }
        )
    else:
        payload = body
    if body == "via-env":
        endpoint = os.environ["MANAGEMENT_ENDPOINT"]
    else:
        endpoint = f"https://{ctx['domainName']}/{ctx['stage']}"
    _client(endpoint).post_to_connection(ConnectionId=ctx["connectionId"], Data=payload.encode())
    return {"statusCode": 200}
