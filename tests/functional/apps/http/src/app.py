"""Tell a client its connection id; push HTTP bodies to a connection; describe HTTP events."""

import json
import os

import boto3

management = boto3.client("apigatewaymanagementapi", endpoint_url=os.environ["MANAGEMENT_ENDPOINT"])


def whoami(event, context):
    connection_id = event["requestContext"]["connectionId"]
    management.post_to_connection(ConnectionId=connection_id, Data=connection_id.encode())
    return {"statusCode": 200}


def push(event, context):
    if event["routeKey"].startswith("ANY /inspect"):
        return {"statusCode": 201, "headers": {"x-route": event["routeKey"]}, "body": json.dumps(event)}
    target = event["pathParameters"]["id"]
    management.post_to_connection(ConnectionId=target, Data=event["body"].encode())
    caller = event["requestContext"]["authorizer"]["iam"]["userArn"]
    return {"statusCode": 200, "body": json.dumps({"delivered": target, "caller": caller})}
