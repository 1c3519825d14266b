"""Lambda's Node.js semantics through lambdacast local: context, callbacks, timeout, crash, import error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

APP = Path(__file__).parent / "apps" / "node-lambda"


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {"concurrency": 1}


def invoke(lambdacast: Any, ws: ClientConnection, label: str, payload: dict[str, Any]) -> Any:
    """Send one message and return the invocation it caused (found by its route, once finished)."""
    done = len(lambdacast.invocations_of(label))
    ws.send(json.dumps(payload))
    assert lambdacast.wait_for(lambda emu: len(emu.invocations_of(label)) > done, timeout=30)
    return lambdacast.invocations_of(label)[done]


def test_the_context_object_and_environment_are_lambdas(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url, open_timeout=30) as ws:
        # WHEN a message reaches the CommonJS (.cjs) handler of an ES-module package
        outcome = invoke(lambdacast, ws, "$default", {"action": "whatever"})
    # THEN its context has Lambda's fields, its request id the invocation's
    assert outcome.ok, outcome.error
    context = outcome.result["context"]
    assert context["functionName"] == "ContextFunction"
    assert context["functionVersion"] == "$LATEST"
    assert context["invokedFunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:ContextFunction"
    assert context["memoryLimitInMB"] == "192"
    assert context["awsRequestId"] == outcome.request_id
    assert context["logGroupName"] == "/aws/lambda/ContextFunction"
    assert context["logStreamName"].startswith("local/[$LATEST]")
    assert context["callbackWaitsForEmptyEventLoop"] is True
    assert 0 < outcome.result["remaining"] <= 3000
    # AND the environment is the template's plus Lambda's, nothing of the emulator's shell
    env = outcome.result["env"]
    assert env["GREETING"] == "hello"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert env["_HANDLER"] == "context.handler"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "192"
    assert env["NODE_EXTRA_CA_CERTS"] == str(lambdacast.ca_bundle)
    assert env["HOME"] is None
    assert outcome.result["cwd"] == str(APP / "fns")


def test_a_warm_worker_keeps_its_module_state(lambdacast):
    with connect(lambdacast.ws_url, open_timeout=30) as ws:
        # WHEN two messages follow one another
        first = invoke(lambdacast, ws, "$default", {"action": "x"})
        second = invoke(lambdacast, ws, "$default", {"action": "x"})
    # THEN one process served both with its module loaded once, the second warm
    assert first.result["pid"] == second.result["pid"]
    assert first.result["loadedAt"] == second.result["loadedAt"]
    assert second.result["invocations"] == first.result["invocations"] + 1
    assert not second.cold


def test_console_output_reaches_the_log_prefixed_with_the_function(lambdacast, capfd):
    with connect(lambdacast.ws_url, open_timeout=30) as ws:
        # WHEN the handler logs with console.log (Node's stdout)
        invoke(lambdacast, ws, "$default", {"action": "x", "say": "hi there"})
    # THEN the line is in the emulator's log under the function's name, and the protocol was not disturbed
    assert lambdacast.wait_for(
        lambda _: "[ContextFunction] context handler says hi there" in capfd.readouterr().err
    )


def test_a_callback_answers_once_the_event_loop_is_empty(lambdacast):
    with connect(lambdacast.ws_url, open_timeout=30) as ws:
        # GIVEN a callback-style handler that calls back at once but leaves a 500 ms timer behind
        first = invoke(
            lambdacast, ws, "callback", {"action": "callback", "id": "a", "timerMs": 500, "fresh": True}
        )
        # WHEN the next invocation reaches the same worker
        second = invoke(
            lambdacast, ws, "callback", {"action": "callback", "id": "b", "timerMs": 500, "fresh": True}
        )
    # THEN the first answer came only after its timer fired (callbackWaitsForEmptyEventLoop defaults to true)
    assert first.result["pid"] == second.result["pid"]
    assert first.result["firedBefore"] == []
    assert second.result["firedBefore"] == ["a"]


def test_callback_waits_for_empty_event_loop_false_answers_at_once(lambdacast):
    with connect(lambdacast.ws_url, open_timeout=30) as ws:
        # WHEN the handler sets callbackWaitsForEmptyEventLoop = false and leaves a 60 s timer
        outcome = invoke(
            lambdacast, ws, "callback", {"action": "callback", "id": "c", "timerMs": 60000, "wait": False}
        )
    # THEN the invocation succeeds within its 3 s timeout
    assert outcome.ok, outcome.error
    assert outcome.result["id"] == "c"


def test_a_callback_with_a_busy_event_loop_times_out(lambdacast):
    with connect(lambdacast.ws_url, open_timeout=30) as ws:
        # WHEN the handler calls back but its event loop never empties (a 60 s timer), as on Lambda
        outcome = invoke(lambdacast, ws, "callback", {"action": "callback", "id": "d", "timerMs": 60000})
        frame = json.loads(ws.recv(timeout=30))
    # THEN the invocation times out and the client gets API Gateway's error frame
    assert outcome.status == "timeout"
    assert outcome.error["errorType"] == "Sandbox.Timedout"
    assert frame["message"] == "Internal server error"


def test_a_timeout_kills_the_worker_and_fails_the_invocation(lambdacast):
    with connect(lambdacast.ws_url, open_timeout=30) as ws:
        # WHEN the handler outlives its 1 s Timeout
        outcome = invoke(lambdacast, ws, "sleep", {"action": "sleep"})
        frame = json.loads(ws.recv(timeout=30))
    # THEN it failed as Lambda reports it, and its worker is gone
    assert outcome.status == "timeout"
    assert outcome.error["errorMessage"] == "Task timed out after 1.00 seconds"
    assert frame["message"] == "Internal server error"
    assert lambdacast.emulator.lambdas.pool("SleepFunction").size == 0


def test_a_crash_fails_the_invocation_and_the_next_one_starts_cold(lambdacast):
    with connect(lambdacast.ws_url, open_timeout=30) as ws:
        # WHEN the handler exits its process, twice
        first = invoke(lambdacast, ws, "crash", {"action": "crash"})
        assert json.loads(ws.recv(timeout=30))["message"] == "Internal server error"
        second = invoke(lambdacast, ws, "crash", {"action": "crash"})
    # THEN each invocation failed with Runtime.ExitError, each in a new cold process
    assert first.error["errorType"] == second.error["errorType"] == "Runtime.ExitError"
    assert first.cold
    assert second.cold
    assert first.worker_pid != second.worker_pid


def test_an_import_error_fails_every_invocation_naming_the_module(lambdacast):
    with connect(lambdacast.ws_url, open_timeout=30) as ws:
        # WHEN the handler's module imports a package that exists nowhere
        outcome = invoke(lambdacast, ws, "broken", {"action": "broken"})
        frame = json.loads(ws.recv(timeout=30))
    # THEN the invocation fails as Lambda's init does, naming the package, and no worker stays
    assert outcome.error["errorType"] == "Runtime.ImportModuleError"
    assert "@aws-sdk/client-that-does-not-exist" in outcome.error["errorMessage"]
    assert frame["message"] == "Internal server error"
    assert lambdacast.emulator.lambdas.pool("BrokenFunction").size == 0


def test_aws_hostnames_built_in_the_handler_reach_the_emulator_and_no_other(lambdacast):
    with connect(lambdacast.ws_url, open_timeout=30) as ws:
        # WHEN the handler connects to dynamodb.<region>.amazonaws.com and the API's execute-api host itself
        outcome = invoke(lambdacast, ws, "hosts", {"action": "hosts"})
    assert outcome.ok, outcome.error
    result = outcome.result
    # THEN the SDK's DynamoDB client, given the public endpoint, lists the embedded tables
    assert result["tables"] == ["semantics_table"]
    # AND both connections landed on 127.0.0.1 with the certificate verified for the real hostname
    for probe in (result["dynamodb"], result["api"]):
        assert probe["connected"] is True
        assert probe["authorized"] is True
        assert probe["address"] == "127.0.0.1"
        assert probe["port"] != 443
    assert result["api"]["port"] == lambdacast.emulator.tls_port
    # AND any other host is left alone (localhost:1 is refused on port 1 itself)
    assert result["other"] == {"connected": False, "code": "ECONNREFUSED", "port": 1}
