"""DynamoDB faults on the wire: the WSGI middleware in front of a stand-in DynamoDB app (no server)."""

from __future__ import annotations

import io
import json
import socket
import zlib
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.parsers import create_parser
from botocore.retries import standard

from lambdacast_local.faults import Faults
from lambdacast_local.faults.dynamodb import FaultyDynamoDb
from lambdacast_local.testing import seed_where

OK_BODY = b'{"Attributes": {}}'


class StandInDynamoDb:
    """Answers 200 to everything and counts the requests it applied (and the bytes it read)."""

    def __init__(self) -> None:
        self.applied: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        self.applied.append(body.decode())
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [OK_BODY]


class Reply:
    status = ""
    headers: dict[str, str]

    def __call__(self, status: str, headers: list[tuple[str, str]], _exc: Any = None) -> Any:
        self.status, self.headers = status, dict(headers)
        return lambda _data: None


def request(operation: str, body: bytes = b'{"TableName": "t"}', **extra: Any) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "HTTP_X_AMZ_TARGET": f"DynamoDB_20120810.{operation}" if operation else "",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        **extra,
    }


def faulted(spec: str, outcome: str | None) -> tuple[FaultyDynamoDb, StandInDynamoDb, Faults]:
    app = StandInDynamoDb()
    faults = Faults(spec, seed_where(spec, "dynamodb", [outcome]))
    return FaultyDynamoDb(app, faults), app, faults


def retry_context(status: str, headers: dict[str, str], body: bytes) -> standard.RetryContext:
    """What botocore's standard retry strategy sees for this reply to a PutItem."""
    model = botocore.session.get_session().get_service_model("dynamodb").operation_model("PutItem")
    code = int(status.split(maxsplit=1)[0])
    parsed = create_parser("json").parse(
        {"status_code": code, "headers": headers, "body": body}, model.output_shape
    )
    return standard.RetryContext(
        attempt_number=1,
        operation_model=model,
        parsed_response=parsed,
        http_response=AWSResponse("http://127.0.0.1/", code, headers, None),
    )


@pytest.mark.parametrize("variant", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_throttle_is_not_applied_and_botocore_reads_it_as_a_throttle(variant):
    # GIVEN every data-plane call throttled, this seed's first throttle being `variant`
    middleware, app, _ = faulted("dynamodb:throttle=1", f"throttle/{variant}")
    reply = Reply()
    # WHEN a PutItem arrives
    environ = request("PutItem", b'{"TableName": "t", "Item": {}}')
    body = b"".join(middleware(environ, reply))
    # THEN it never reached DynamoDB, and its body was read off the connection all the same
    assert app.applied == []
    assert environ["wsgi.input"].read() == b""
    # AND the answer is DynamoDB's: 400, JSON 1.0, the error's __type, a request id and a valid CRC32
    assert reply.status.startswith("400 ")
    assert reply.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert json.loads(body)["__type"].endswith(f"#{variant}")
    assert reply.headers["x-amzn-RequestId"]
    assert int(reply.headers["x-amz-crc32"]) == zlib.crc32(body)
    # AND botocore parses that error code and its standard retry mode classifies it as a throttle
    context = retry_context(reply.status, reply.headers, body)
    assert context.get_error_code() == variant
    assert standard.ThrottledRetryableChecker().is_retryable(context)


def test_error_is_a_500_internal_server_error_not_applied_and_retryable():
    # GIVEN every data-plane call failing
    middleware, app, _ = faulted("dynamodb:error=1", "error")
    reply = Reply()
    # WHEN an UpdateItem arrives
    body = b"".join(middleware(request("UpdateItem"), reply))
    # THEN nothing was applied; the client gets DynamoDB's 500, which botocore retries as transient
    assert app.applied == []
    assert reply.status.startswith("500 ")
    assert json.loads(body)["__type"].endswith("#InternalServerError")
    context = retry_context(reply.status, reply.headers, body)
    assert context.get_error_code() == "InternalServerError"
    assert standard.TransientRetryableChecker().is_retryable(context)


def test_lost_reply_as_500_is_applied_then_answered_with_an_error():
    # GIVEN a lost reply of the 500 kind
    middleware, app, _ = faulted("dynamodb:lost-reply=1", "lost-reply/500")
    reply = Reply()
    # WHEN a TransactWriteItems arrives
    body = b"".join(middleware(request("TransactWriteItems", b'{"TransactItems": []}'), reply))
    # THEN DynamoDB applied it, and the client got a 500 instead of DynamoDB's answer
    assert app.applied == ['{"TransactItems": []}']
    assert reply.status.startswith("500 ")
    assert body != OK_BODY


def test_lost_reply_dropped_is_applied_then_the_connection_closes_without_a_reply():
    # GIVEN a lost reply of the dropped kind, and the connection the request came on
    middleware, app, _ = faulted("dynamodb:lost-reply=1", "lost-reply/dropped")
    server_side, client_side = socket.socketpair()
    reply = Reply()
    try:
        # WHEN a PutItem arrives on it
        # THEN werkzeug is told the connection is gone (a ConnectionError, which it handles quietly)
        with pytest.raises(ConnectionError):
            middleware(request("PutItem", **{"werkzeug.socket": server_side}), reply)
        # AND the request was applied, no status was ever started, and the client reads end of stream
        assert len(app.applied) == 1
        assert reply.status == ""
        client_side.settimeout(5)
        assert client_side.recv(10) == b""
    finally:
        server_side.close()
        client_side.close()


@pytest.mark.parametrize("operation", ["CreateTable", "DescribeTable", "UpdateTimeToLive", "ListTables", ""])
def test_control_plane_and_non_dynamodb_requests_are_never_faulted_nor_counted(operation):
    # GIVEN every call to DynamoDB faulted
    middleware, app, faults = faulted("dynamodb:error=1", "error")
    reply = Reply()
    # WHEN a control-plane request (or one without a DynamoDB target) arrives
    body = b"".join(middleware(request(operation), reply))
    # THEN it is applied and answered as usual, and it is not a call of the plan
    assert body == OK_BODY
    assert len(app.applied) == 1
    assert faults.calls("dynamodb") == 0


@pytest.mark.parametrize(
    "operation",
    [
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    ],
)
def test_every_data_plane_operation_is_a_call(operation):
    # GIVEN every call failing
    middleware, app, faults = faulted("dynamodb:error=1", "error")
    # WHEN that operation arrives
    middleware(request(operation), Reply())
    # THEN it was counted and faulted
    assert faults.calls("dynamodb") == 1
    assert faults.count("dynamodb", "error") == 1
    assert app.applied == []


def test_a_clean_draw_passes_the_request_through_unchanged():
    # GIVEN faults whose next draw is clean
    middleware, app, faults = faulted("dynamodb:throttle=0.5", None)
    reply = Reply()
    # WHEN a GetItem arrives
    body = b"".join(middleware(request("GetItem"), reply))
    # THEN DynamoDB answered it, and the call was counted without a fault
    assert len(app.applied) == 1
    assert body == OK_BODY
    assert reply.status == "200 OK"
    assert faults.calls("dynamodb") == 1
    assert faults.count("dynamodb", "throttle") == 0
