"""Lambda semantics through lambdacast local: warm workers, bounded pools, environment, context, DynamoDB."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from websockets.sync.client import ClientConnection, connect

from lambdacast_local.testing import running_emulator

APP = Path(__file__).parent / "apps" / "raw" / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {
        "concurrency": 2,
        "parameter_overrides": {"Greeting": "bonjour", "UseShortTimeout": "no"},
        "ssm_parameters": {"/raw/secret": "local-only-value"},
    }


def open_ws(lambdacast: Any) -> ClientConnection:
    return connect(f"{lambdacast.ws_url}?token=allow-erin")


def request(ws: ClientConnection, payload: dict[str, Any]) -> dict[str, Any]:
    ws.send(json.dumps({"route": "echo", **payload}))
    reply: dict[str, Any] = json.loads(ws.recv(timeout=30))
    return reply


def test_handler_is_imported_once_then_reused_warm(lambdacast):
    # GIVEN a connection to HandlerFunction (whatever ran before in this module)
    with open_ws(lambdacast) as ws:
        # WHEN two messages follow one another
        first, second = request(ws, {}), request(ws, {})
    # THEN one process served both, its module imported once
    assert first["pid"] == second["pid"]
    assert first["imported_at"] == second["imported_at"]
    # AND that worker's first invocation was its cold start (init duration logged), every later one warm
    served = [
        inv
        for inv in list(lambdacast.invocations)
        if inv.function == "HandlerFunction" and inv.worker_pid == first["pid"]
    ]
    assert len(served) >= 2
    assert served[0].cold is True
    assert served[0].init_ms > 0
    assert not any(inv.cold for inv in served[1:])


def test_pool_grows_up_to_concurrency_and_no_further(lambdacast):
    # GIVEN --concurrency 2 and four overlapping one-second invocations
    with open_ws(lambdacast) as ws:
        for _ in range(4):
            ws.send(json.dumps({"route": "echo", "op": "sleep", "seconds": 1}))
        # WHEN all replies are in
        replies = [json.loads(ws.recv(timeout=30)) for _ in range(4)]
    # THEN every message was answered by one of at most two worker processes
    assert {reply["route"] for reply in replies} == {"echo"}
    assert len({reply["pid"] for reply in replies}) == 2
    assert lambdacast.emulator.lambdas.pool("HandlerFunction").size <= 2


def test_worker_sees_template_environment_and_lambda_runtime_variables_only(lambdacast):
    # GIVEN a connection
    with open_ws(lambdacast) as ws:
        reply = request(ws, {})
    env = reply["env"]
    # THEN the template's variables are there, parameters overridden and intrinsics resolved
    assert env["GREETING"] == "bonjour"
    assert env["TABLE_NAME"] == "lambdacast-local-items"
    assert env["API_ID"] == reply["event"]["requestContext"]["apiId"]
    # AND the Lambda runtime variables
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "HandlerFunction"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_REGION"] == "us-east-1"
    # AND nothing of the developer's shell (pytest's own variable is set in this process)
    assert "PYTEST_CURRENT_TEST" not in env
    assert "VIRTUAL_ENV" not in env
    assert "HOME" not in env


def test_aws_access_is_local_only(lambdacast):
    # GIVEN a connection
    with open_ws(lambdacast) as ws:
        env = request(ws, {})["env"]
    # THEN credentials are fake and AWS endpoints point at the emulator
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIALAMBDACAST")
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == lambdacast.handler_dynamodb_endpoint
    assert env["AWS_ENDPOINT_URL_DYNAMODB"].startswith("http://127.0.0.1:")
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == "/dev/null"


def test_execute_api_hostname_from_sub_maps_to_the_local_tls_listener(lambdacast):
    # GIVEN API_ENDPOINT: !Sub https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}
    with open_ws(lambdacast) as ws:
        env = request(ws, {})["env"]
    # THEN the handler sees the local TLS listener (and $default's post through it works: see other tests)
    assert env["API_ENDPOINT"] == lambdacast.tls_management_url


def test_lambda_context_has_name_request_id_and_remaining_time(lambdacast):
    # GIVEN a connection
    with open_ws(lambdacast) as ws:
        context = request(ws, {})["context"]
    # THEN the context object is a real one
    assert context["function_name"] == "HandlerFunction"
    assert uuid.UUID(context["aws_request_id"])
    assert 0 < context["remaining_ms"] <= 30_000
    assert context["memory"] == 256


def test_handler_print_does_not_corrupt_the_worker_channel(lambdacast):
    # GIVEN a handler that prints something that looks like a protocol message
    with open_ws(lambdacast) as ws:
        # WHEN it runs
        reply = request(ws, {"op": "print"})
        # THEN its reply is intact, and the worker keeps serving
        assert reply["message"]["op"] == "print"
        assert request(ws, {"after": 1})["message"]["after"] == 1


def test_handler_reads_and_writes_the_templates_table_in_embedded_dynamodb(lambdacast):
    # GIVEN a connection
    with open_ws(lambdacast) as ws:
        # WHEN the handler writes then reads an item
        reply = request(ws, {"op": "table"})
    # THEN it read back what it wrote
    assert reply["message"]["item"] == "o"


def test_tables_are_created_with_key_schema_gsi_and_ttl(lambdacast):
    # GIVEN the embedded DynamoDB
    client = boto3.client(
        "dynamodb",
        endpoint_url=lambdacast.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    # WHEN we describe the template's table
    table = client.describe_table(TableName="lambdacast-local-items")["Table"]
    ttl = client.describe_time_to_live(TableName="lambdacast-local-items")["TimeToLiveDescription"]
    # THEN key schema, GSI and TTL match the template
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["by-owner"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}


def test_many_clients_at_once_are_all_answered(lambdacast):
    # GIVEN 20 clients sending at the same time through a pool of 2 workers
    def one(n: int) -> int:
        with open_ws(lambdacast) as ws:
            return int(request(ws, {"n": n})["message"]["n"])

    # WHEN they all send
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = sorted(pool.map(one, range(20)))
    # THEN every one got its own answer
    assert answers == list(range(20))


def test_handler_reads_a_seeded_ssm_secure_string_from_the_embedded_aws(lambdacast):
    # GIVEN --ssm /raw/secret=local-only-value
    with open_ws(lambdacast) as ws:
        # WHEN the handler reads the parameter through boto3 (decrypted)
        reply = request(ws, {"op": "ssm"})
    # THEN it gets the local value, from the embedded AWS
    assert reply["message"]["secret"] == "local-only-value"


def test_dynamodb_endpoint_flag_moves_tables_and_handler_calls_elsewhere():
    # GIVEN another DynamoDB (a second moto server) given as --dynamodb-endpoint
    other = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    other.start()
    try:
        host, port = other.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        with running_emulator(APP, dynamodb_endpoint=endpoint) as emulator, open_ws(emulator) as ws:
            # WHEN a handler writes and reads its table
            reply = request(ws, {"op": "table"})
            connection_id = reply["event"]["requestContext"]["connectionId"]
        # THEN the table was created there and the item landed there
        client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        item = client.get_item(TableName="lambdacast-local-items", Key={"pk": {"S": connection_id}})
        assert item["Item"]["owner"] == {"S": "o"}
        assert reply["env"]["AWS_ENDPOINT_URL_DYNAMODB"] == endpoint
    finally:
        other.stop()


def test_a_huge_log_line_does_not_block_the_worker(lambdacast):
    # GIVEN a handler that prints one 2 MB line (more than a pipe holds)
    with open_ws(lambdacast) as ws:
        # WHEN it runs
        reply = request(ws, {"op": "bigprint"})
    # THEN its log was drained and its reply arrived
    assert reply["message"]["op"] == "bigprint"
