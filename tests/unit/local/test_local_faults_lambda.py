"""Injected ``lambda`` faults in the worker pool (real worker processes, no sockets)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lambdacast_local.faults import Faults
from lambdacast_local.lambda_pool import FunctionPool
from lambdacast_local.model import Function
from lambdacast_local.runtime_env import Endpoints, runtime_environment
from lambdacast_local.testing import seed_where

HANDLER = """
import os

def handler(event, context):
    open(event["mark"], "a").write("ran\\n")  # the handler's one effect
    return {"pid": os.getpid()}
"""


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
async def pool(tmp_path: Path, faults: Faults):
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    # A long Timeout: an injected timeout must be reported without waiting for it.
    function = Function("Fn", "Fn", code, "app.handler", timeout_s=300.0)
    env = runtime_environment(
        function, "us-east-1", Endpoints(aws="http://127.0.0.1:9", dynamodb="http://127.0.0.1:9")
    )
    created = FunctionPool(function, env, "us-east-1", 1, faults=faults)
    yield created
    await created.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def warm_pid(pool: FunctionPool, tmp_path: Path) -> int:
    outcome = await pool.invoke({"mark": str(tmp_path / "warmup")})
    assert outcome.ok
    return int(outcome.result["pid"])


def configure(faults: Faults, spec: str, outcome: str) -> None:
    faults.configure(spec, seed_where(spec, "lambda", [outcome]))


async def test_crash_before_the_handler_fails_the_invocation_with_no_effect(pool, faults, tmp_path):
    # GIVEN a warm worker, then the next invocation set to crash before its handler runs
    pid = await warm_pid(pool, tmp_path)
    configure(faults, "lambda:crash=1", "crash/before-handler")
    mark = tmp_path / "mark"
    # WHEN it is invoked
    outcome = await pool.invoke({"mark": str(mark)})
    # THEN it failed as Lambda reports a runtime killed mid-invocation, on that worker
    assert outcome.status == "error"
    assert outcome.error["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: signal: killed" in outcome.error["errorMessage"]
    assert outcome.error["errorMessage"].endswith("[injected fault]")
    assert outcome.worker_pid == pid
    # AND the handler never ran, the worker process is gone
    assert not mark.exists()
    assert not alive(pid)
    assert pool.size == 0


async def test_crash_after_the_handler_keeps_its_effects_but_loses_its_result(pool, faults, tmp_path):
    # GIVEN the next invocation set to crash after its handler returned
    configure(faults, "lambda:crash=1", "crash/after-handler")
    mark = tmp_path / "mark"
    # WHEN it is invoked
    outcome = await pool.invoke({"mark": str(mark)})
    # THEN the handler's effect happened exactly once, but the invocation failed and returned nothing
    assert mark.read_text() == "ran\n"
    assert outcome.status == "error"
    assert outcome.error["errorType"] == "Runtime.ExitError"
    assert outcome.result is None
    assert not alive(outcome.worker_pid)


async def test_the_pool_replaces_a_crashed_worker(pool, faults, tmp_path):
    # GIVEN a worker killed by an injected crash
    pid = await warm_pid(pool, tmp_path)
    configure(faults, "lambda:crash=1", "crash/after-handler")
    await pool.invoke({"mark": str(tmp_path / "mark")})
    # WHEN faults are off again and the function is invoked
    faults.configure("")
    outcome = await pool.invoke({"mark": str(tmp_path / "again")})
    # THEN a new worker (a cold start) serves it
    assert outcome.ok
    assert outcome.cold
    assert outcome.result["pid"] != pid
    assert pool.size == 1


@pytest.mark.parametrize(("variant", "ran"), [("before-handler", False), ("after-handler", True)])
async def test_timeout_is_reported_like_a_real_one_without_waiting_the_functions_timeout(
    pool, faults, tmp_path, variant, ran
):
    # GIVEN a function with a 300 s Timeout, the next invocation set to time out
    pid = await warm_pid(pool, tmp_path)
    configure(faults, "lambda:timeout=1", f"timeout/{variant}")
    mark = tmp_path / "mark"
    # WHEN it is invoked (this test would hang for 300 s if the pool waited for the Timeout)
    outcome = await pool.invoke({"mark": str(mark)})
    # THEN it is a timeout as Lambda reports one, for the function's Timeout, and its worker was killed
    assert outcome.status == "timeout"
    assert outcome.error["errorType"] == "Sandbox.Timedout"
    assert outcome.error["errorMessage"].startswith("Task timed out after 300.00 seconds")
    assert not alive(pid)
    # AND the handler ran only for the after-handler variant
    assert mark.exists() is ran


async def test_counts_show_every_invocation_and_each_injected_fault(pool, faults, tmp_path):
    # GIVEN crashes at rate 0.5 with a fixed seed
    faults.configure("lambda:crash=0.5", 3)
    # WHEN the function is invoked 12 times
    outcomes = [await pool.invoke({"mark": str(tmp_path / "m")}) for _ in range(12)]
    # THEN every invocation took a decision, and the failures are exactly the crashes counted
    assert faults.calls("lambda") == 12
    crashed = sum(
        1 for outcome in outcomes if outcome.error and outcome.error["errorType"] == "Runtime.ExitError"
    )
    assert crashed == faults.count("lambda", "crash")
    assert 0 < crashed < 12
    # AND the handler ran once for each invocation that succeeded or crashed after it
    after = faults.counts("lambda").variants.get("crash/after-handler", 0)
    ok = sum(1 for outcome in outcomes if outcome.ok)
    assert (tmp_path / "m").read_text().count("ran") == ok + after
