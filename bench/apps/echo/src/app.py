"""The benchmarks' echo app: the same handlers under lambdacast local and serverless-offline.

``echo`` ($default) posts each message back through boto3's ``apigatewaymanagementapi`` to
``MANAGEMENT_ENDPOINT``; ``reply`` (a route with a route response) returns it as its response body, so
the gateway delivers it with no ``@connections`` call.
"""

import os

import boto3

_management = []


def _client():
    if not _management:
        _management.append(
            boto3.client("apigatewaymanagementapi", endpoint_url=os.environ["MANAGEMENT_ENDPOINT"])
        )
    return _management[0]


def connect(event, context):
    return {"statusCode": 200}


def disconnect(event, context):
    return {"statusCode": 200}


def echo(event, context):
    connection_id = event["requestContext"]["connectionId"]
    _client().post_to_connection(ConnectionId=connection_id, Data=(event.get("body") or "").encode())
    return {"statusCode": 200}


def reply(event, context):
    return {"statusCode": 200, "body": event.get("body") or ""}
