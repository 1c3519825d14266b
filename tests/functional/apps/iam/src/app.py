"""Answer every message with the identity API Gateway attached to the event."""

import json

import boto3


def handler(event, context):
    ctx = event["requestContext"]
    if ctx["eventType"] != "MESSAGE":
        return {"statusCode": 200}
    client = boto3.client(
        "apigatewaymanagementapi", endpoint_url=f"https://{ctx['domainName']}/{ctx['stage']}"
    )
    client.post_to_connection(ConnectionId=ctx["connectionId"], Data=json.dumps(ctx["identity"]).encode())
    return {"statusCode": 200}
