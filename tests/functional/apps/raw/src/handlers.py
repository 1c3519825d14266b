"""Message handlers of the raw test app. Each route returns or posts what the tests need to see."""

import base64
import json
import os
import time

import boto3

table = boto3.resource("dynamodb").Table(os.environ.get("TABLE_NAME", "none"))
IMPORTED_AT = time.time()


def handle(event, context):
    ctx = event["requestContext"]
    if ctx["eventType"] == "CONNECT":
        query = event.get("queryStringParameters") or {}
        if "status" in query:
            return {"statusCode": int(query["status"])}
        headers = {"Sec-WebSocket-Protocol": query["protocol"]} if "protocol" in query else {}
        return {"statusCode": 200, "headers": headers, "body": json.dumps(event)}
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        message = {"binary": base64.b64decode(body).hex()}
    else:
        message = json.loads(body) if body.startswith("{") else {"text": body}
    op = message.get("op")
    if op == "sleep":
        time.sleep(float(message["seconds"]))
    elif op == "exit":
        os._exit(3)
    elif op == "raise":
        raise ValueError("boom")
    elif op == "print":
        print('{"pretend": "ipc"}')
    elif op == "bigprint":
        print("x" * 2_000_000)  # one 2 MB line: more than any pipe buffer
    elif op == "ssm":
        ssm = boto3.client("ssm")
        message["secret"] = ssm.get_parameter(Name=os.environ["SECRET_NAME"], WithDecryption=True)[
            "Parameter"
        ]["Value"]
    elif op == "table":
        table.put_item(Item={"pk": ctx["connectionId"], "owner": "o", "expires": 1})
        message["item"] = table.get_item(Key={"pk": ctx["connectionId"]})["Item"]["owner"]
    reply = {
        "route": ctx["routeKey"],
        "message": message,
        "event": event,
        "context": {
            "function_name": context.function_name,
            "aws_request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "memory": context.memory_limit_in_mb,
        },
        "env": dict(os.environ),
        "pid": os.getpid(),
        "imported_at": IMPORTED_AT,
    }
    if ctx["routeKey"] == "$default" or message.get("post"):
        client = boto3.client("apigatewaymanagementapi", endpoint_url=os.environ["API_ENDPOINT"])
        client.post_to_connection(ConnectionId=ctx["connectionId"], Data=json.dumps(reply).encode())
    return {"statusCode": 200, "body": json.dumps(reply)}


def disconnect(event, context):
    return {"statusCode": 200, "body": json.dumps(event)}
