"""The ping function: answers through the management API built from the event."""

import json

import boto3

WHO = "ping"


def handler(event, context):
    ctx = event["requestContext"]
    client = boto3.client(
        "apigatewaymanagementapi", endpoint_url=f"https://{ctx['domainName']}/{ctx['stage']}"
    )
    client.post_to_connection(ConnectionId=ctx["connectionId"], Data=json.dumps({"who": WHO}).encode())
    return {"statusCode": 200}
