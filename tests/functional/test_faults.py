"""DynamoDB and Lambda faults through lambdacast local: what a handler, its boto3 and its client see.

The app's ``$default`` makes one boto3 call (UpdateItem ADD, standard retries) and returns what boto3 saw;
the tests count attempts (the plan's calls), faults and applied writes (read on the fault-free endpoint).
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from lambdacast_local.runtime_env import FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from lambdacast_local.testing import RunningEmulator, seed_where

APP = Path(__file__).parent / "apps" / "faults" / "template.yaml"
START_SPEC = "lambda:timeout=0"
START_SEED = 2024


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {"faults": START_SPEC, "fault_seed": START_SEED, "concurrency": 2}


@pytest.fixture
def ws(lambdacast: RunningEmulator):
    lambdacast.faults.configure("")  # connect without faults; each test then sets its own
    with connect(lambdacast.ws_url) as client:
        yield client
        disconnects = len(lambdacast.invocations_of("$disconnect"))
    # Its $disconnect runs after the test: it must not draw from the next test's fault plan.
    assert lambdacast.wait_for(lambda e: len(e.invocations_of("$disconnect")) > disconnects, timeout=30)


def work(lambdacast: RunningEmulator, ws: ClientConnection, **message: Any) -> Any:
    """Send one message to $default and return its invocation once it has finished."""
    before = len(lambdacast.invocations_of("$default"))
    ws.send(json.dumps(message))
    assert lambdacast.wait_for(lambda e: len(e.invocations_of("$default")) > before, timeout=60)
    return lambdacast.invocations_of("$default")[before]


def report(invocation: Any) -> dict[str, Any]:
    assert invocation.ok, invocation.error
    result: dict[str, Any] = json.loads(invocation.result["body"])
    return result


def counter(lambdacast: RunningEmulator, key: str) -> int | None:
    """The item's ``n``, read on the emulator's fault-free DynamoDB endpoint (None: no item)."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=lambdacast.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id=FAKE_ACCESS_KEY,
        aws_secret_access_key=FAKE_SECRET_KEY,
    )
    item = client.get_item(TableName="Counters", Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
    return None if item is None else int(item["n"]["N"])


def plan(lambdacast: RunningEmulator, spec: str, target: str, outcomes: list[str | None]) -> None:
    lambdacast.faults.configure(spec, seed_where(spec, target, outcomes))


def test_faults_passed_to_the_fixture_are_the_emulators_and_served_as_json(lambdacast):
    # GIVEN an emulator started by the fixture with faults and a seed (configured before any test changed it)
    # WHEN the counts are asked for over HTTP, as a test against `make dev` would
    lambdacast.faults.configure(START_SPEC, START_SEED)
    base = lambdacast.management_url.rsplit("/", 1)[0]
    with urllib.request.urlopen(f"{base}/_lambdacast/faults", timeout=10) as response:
        served = json.load(response)
    # THEN they are the plan the fixture was given, and the same as the object the fixture exposes
    assert served == {
        "spec": START_SPEC,
        "seed": START_SEED,
        "targets": {"lambda": {"calls": 0, "injected": {"timeout": 0}, "variants": {}}},
    }
    assert served == lambdacast.faults.as_json()


def test_without_faults_writes_go_through_and_count_as_calls(lambdacast, ws):
    # GIVEN DynamoDB faults at rate 0: every call is decided, none faulted
    lambdacast.faults.configure("dynamodb:error=0", 1)
    key = uuid.uuid4().hex
    # WHEN a handler adds to a counter three times
    reports = [report(work(lambdacast, ws, do="add", key=key)) for _ in range(3)]
    # THEN each write succeeded first time, was applied once, and was one call of the plan
    assert reports == [{"ok": True, "error": None, "retries": 0}] * 3
    assert counter(lambdacast, key) == 3
    # AND the test's own reads on the emulator's endpoint were not calls (only handlers' requests are)
    assert lambdacast.faults.calls("dynamodb") == 3


def test_throttled_write_is_not_applied_and_botocore_retries_it(lambdacast, ws):
    # GIVEN the next DynamoDB call throttled and the one after it not
    plan(lambdacast, "dynamodb:throttle=0.5", "dynamodb", ["throttle", None])
    key = uuid.uuid4().hex
    # WHEN a handler adds 1 to a counter (3 attempts)
    seen = report(work(lambdacast, ws, do="add", key=key, attempts=3))
    # THEN botocore retried the throttle and then succeeded
    assert seen == {"ok": True, "error": None, "retries": 1}
    assert lambdacast.faults.calls("dynamodb") == 2
    assert lambdacast.faults.count("dynamodb", "throttle") == 1
    # AND the throttled attempt changed nothing: the counter went up once
    assert counter(lambdacast, key) == 1


@pytest.mark.parametrize("variant", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_a_write_throttled_on_every_attempt_fails_with_dynamodbs_error_and_applies_nothing(
    lambdacast, ws, variant
):
    # GIVEN every DynamoDB call throttled, the last one with `variant`
    plan(lambdacast, "dynamodb:throttle=1", "dynamodb", ["throttle", f"throttle/{variant}"])
    key = uuid.uuid4().hex
    # WHEN a handler adds 1 to a counter (2 attempts)
    seen = report(work(lambdacast, ws, do="add", key=key, attempts=2))
    # THEN boto3 raised DynamoDB's throttling error after its one retry, and no item exists
    assert seen == {"ok": False, "error": variant, "retries": 1}
    assert lambdacast.faults.count("dynamodb", "throttle") == 2
    assert counter(lambdacast, key) is None


def test_error_is_a_500_not_applied_and_retried(lambdacast, ws):
    # GIVEN the next DynamoDB call failing with a 500 and the one after it not
    plan(lambdacast, "dynamodb:error=0.5", "dynamodb", ["error", None])
    key = uuid.uuid4().hex
    # WHEN a handler adds 1 to a counter
    seen = report(work(lambdacast, ws, do="add", key=key, attempts=3))
    # THEN botocore retried the 500 and the counter went up once (the failed attempt applied nothing)
    assert seen == {"ok": True, "error": None, "retries": 1}
    assert lambdacast.faults.count("dynamodb", "error") == 1
    assert counter(lambdacast, key) == 1


@pytest.mark.parametrize(
    ("variant", "client_saw"), [("500", "InternalServerError"), ("dropped", "ConnectionClosedError")]
)
def test_lost_reply_is_applied_while_the_client_sees_an_error(lambdacast, ws, variant, client_saw):
    # GIVEN the next DynamoDB call's reply lost, as a 500 or as a connection closed without a reply
    plan(lambdacast, "dynamodb:lost-reply=1", "dynamodb", [f"lost-reply/{variant}"])
    key = uuid.uuid4().hex
    # WHEN a handler adds 1 to a counter with no retry
    seen = report(work(lambdacast, ws, do="add", key=key, attempts=1))
    # THEN boto3 reported a failure
    assert seen["ok"] is False
    assert seen["error"] == client_saw
    # AND yet the write was applied
    assert counter(lambdacast, key) == 1
    assert lambdacast.faults.counts("dynamodb").variants == {f"lost-reply/{variant}": 1}


def test_a_retried_lost_reply_applies_the_write_twice(lambdacast, ws):
    # GIVEN the next call's reply lost and the one after it clean
    plan(lambdacast, "dynamodb:lost-reply=0.5", "dynamodb", ["lost-reply", None])
    key = uuid.uuid4().hex
    # WHEN a handler adds 1 to a counter with retries
    seen = report(work(lambdacast, ws, do="add", key=key, attempts=3))
    # THEN boto3 succeeded on its retry, and the non-idempotent ADD was applied by both attempts
    assert seen == {"ok": True, "error": None, "retries": 1}
    assert counter(lambdacast, key) == 2


@pytest.mark.parametrize(("variant", "applied"), [("before-handler", None), ("after-handler", 1)])
def test_lambda_crash_fails_the_message_as_api_gateway_does_and_the_worker_is_replaced(
    lambdacast, ws, variant, applied
):
    # GIVEN the next invocation crashing (its worker killed) before or after its handler
    plan(lambdacast, "lambda:crash=1", "lambda", [f"crash/{variant}"])
    key = uuid.uuid4().hex
    # WHEN a message is sent
    crashed = work(lambdacast, ws, do="add", key=key)
    # THEN the client receives API Gateway's error frame for a failed integration
    frame = json.loads(ws.recv(timeout=30))
    assert frame["message"] == "Internal server error"
    assert set(frame) == {"message", "connectionId", "requestId"}
    assert crashed.error["errorType"] == "Runtime.ExitError"
    # AND the handler's write happened only if it ran
    assert counter(lambdacast, key) == applied
    # AND that worker process is gone; with faults off the next message is served by a live one
    with pytest.raises(ProcessLookupError):
        os.kill(crashed.worker_pid, 0)
    lambdacast.faults.configure("")
    after = work(lambdacast, ws, do="add", key=key)
    assert after.ok
    assert after.worker_pid != crashed.worker_pid


def test_lambda_timeout_is_a_timeout_and_the_client_gets_the_error_frame(lambdacast, ws):
    # GIVEN the next invocation timing out (the function's Timeout is 120 s; nobody waits for it)
    lambdacast.faults.configure("lambda:timeout=1", 5)
    # WHEN a message is sent
    timed_out = work(lambdacast, ws, do="add", key=uuid.uuid4().hex)
    # THEN the invocation timed out as Lambda reports it, and the client got the error frame
    assert timed_out.status == "timeout"
    assert timed_out.error["errorMessage"].startswith("Task timed out after 120.00 seconds")
    assert json.loads(ws.recv(timeout=30))["message"] == "Internal server error"


def test_a_crashing_connect_refuses_the_handshake_with_500(lambdacast):
    # GIVEN every invocation crashing
    lambdacast.faults.configure("lambda:crash=1", 1)
    # WHEN a client connects
    # THEN the handshake is refused with 500, as when $connect fails on AWS
    connects = len(lambdacast.invocations_of("$connect"))
    with pytest.raises(InvalidStatus) as refused, connect(lambdacast.ws_url):
        pass
    assert refused.value.response.status_code == 500
    # (other invocations may crash too meanwhile: a previous test's socket closing runs $disconnect)
    (crashed,) = lambdacast.invocations_of("$connect")[connects:]
    assert crashed.error["errorType"] == "Runtime.ExitError"
    assert lambdacast.faults.count("lambda", "crash") >= 1
