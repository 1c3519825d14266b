"""The worker pool on its own (real worker processes, no sockets)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from lambdacast_local.lambda_pool import FunctionPool
from lambdacast_local.model import Function
from lambdacast_local.runtime_env import Endpoints, runtime_environment

HANDLER = """
import os, time
STARTED = time.time()

def handler(event, context):
    if event.get("fail"):
        raise KeyError("missing")
    if event.get("mark"):  # tell the test this invocation is running
        open(event["mark"], "w").close()
    if event.get("wait_for"):  # block until the test creates this file (bounded)
        deadline = time.monotonic() + 20
        while not os.path.exists(event["wait_for"]) and time.monotonic() < deadline:
            time.sleep(0.01)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("unserialisable"):
        return {"value": object()}
    return {"pid": os.getpid(), "started": STARTED, "echo": event.get("echo"), "version": VERSION}

VERSION = 1
"""


def make_pool(
    tmp_path: Path, source: str = HANDLER, timeout_s: float = 3.0, concurrency: int = 2
) -> FunctionPool:
    code = tmp_path / "fn"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(source)
    function = Function("Fn", "Fn", code, "app.handler", timeout_s=timeout_s)
    env = runtime_environment(
        function, "us-east-1", Endpoints(aws="http://127.0.0.1:9", dynamodb="http://127.0.0.1:9")
    )
    return FunctionPool(function, env, "us-east-1", concurrency)


@pytest.fixture
async def pool(tmp_path):
    created = make_pool(tmp_path)
    yield created
    await created.close()


async def test_first_invocation_is_cold_then_warm_in_the_same_process(pool):
    # WHEN the function is invoked twice in a row
    first = await pool.invoke({"echo": 1})
    second = await pool.invoke({"echo": 2})
    # THEN the first was a cold start, the second reused the process and its import
    assert (first.cold, second.cold) == (True, False)
    assert first.result["pid"] == second.result["pid"]
    assert first.result["started"] == second.result["started"]
    assert second.result["echo"] == 2


async def test_handler_exception_is_reported_with_its_type(pool):
    # WHEN the handler raises
    outcome = await pool.invoke({"fail": True})
    # THEN the invocation failed with the error type and message
    assert outcome.status == "error"
    assert outcome.error["errorType"] == "KeyError"
    assert "missing" in outcome.error["errorMessage"]


async def test_unserialisable_result_is_a_marshal_error(pool):
    # WHEN the handler returns something JSON cannot encode
    outcome = await pool.invoke({"unserialisable": True})
    # THEN it fails like Lambda's Runtime.MarshalError, and the worker keeps serving
    assert outcome.error["errorType"] == "Runtime.MarshalError"
    assert (await pool.invoke({"echo": 3})).ok


async def test_import_error_fails_the_invocation_and_leaves_no_worker(tmp_path):
    # GIVEN a handler module that cannot be imported
    broken = make_pool(tmp_path, "import not_a_module_anywhere\n")
    try:
        # WHEN it is invoked
        outcome = await broken.invoke({})
        # THEN the invocation fails with the import error and no process remains
        assert outcome.error["errorType"] == "Runtime.ImportModuleError"
        assert broken.size == 0
    finally:
        await broken.close()


async def test_timeout_kills_the_worker(tmp_path):
    # GIVEN a 0.5 s timeout
    short = make_pool(tmp_path, timeout_s=0.5)
    try:
        # WHEN the handler sleeps longer
        outcome = await short.invoke({"sleep": 5})
        # THEN the invocation timed out and its worker is gone
        assert outcome.status == "timeout"
        assert short.size == 0
        assert (await short.invoke({"echo": 1})).result["pid"] != outcome.worker_pid
    finally:
        await short.close()


async def test_pool_grows_to_its_concurrency_and_no_further(pool, tmp_path):
    # GIVEN five invocations on a pool of two, each blocked until the test releases them
    release = tmp_path / "release"
    tasks = [asyncio.create_task(pool.invoke({"wait_for": str(release)})) for _ in range(5)]
    # WHEN two workers are running them
    for _ in range(2000):
        if pool.size == 2:
            break
        await asyncio.sleep(0.01)
    # THEN the pool grew to two processes and no further while all five wait
    assert pool.size == 2
    assert not any(task.done() for task in tasks)
    release.touch()
    outcomes = await asyncio.gather(*tasks)
    # AND all five succeed, on exactly two processes
    assert all(outcome.ok for outcome in outcomes)
    assert len({outcome.result["pid"] for outcome in outcomes}) == 2
    assert pool.size == 2


async def test_recycle_loads_new_code_in_a_new_process(tmp_path):
    # GIVEN a warm worker
    reloadable = make_pool(tmp_path)
    try:
        before = await reloadable.invoke({})
        # WHEN the code changes and the pool is recycled
        (tmp_path / "fn" / "app.py").write_text(HANDLER.replace("VERSION = 1", "VERSION = 2"))
        await reloadable.recycle()
        after = await reloadable.invoke({})
        # THEN the next invocation is cold, in a new process, running the new code
        assert after.cold
        assert after.result["pid"] != before.result["pid"]
        assert after.result["version"] == 2
    finally:
        await reloadable.close()


async def test_invocations_after_close_fail_without_starting_a_worker(tmp_path):
    # GIVEN a closed pool
    closed = make_pool(tmp_path)
    await closed.close()
    # WHEN it is invoked
    outcome = await closed.invoke({})
    # THEN it fails clearly and no process was started
    assert outcome.error["errorType"] == "Runtime.Unavailable"
    assert closed.size == 0


async def test_close_while_an_invocation_runs_lets_it_finish_and_reaps_its_worker(tmp_path):
    # GIVEN a running invocation
    running = make_pool(tmp_path)
    mark = tmp_path / "running"
    task = asyncio.create_task(running.invoke({"mark": str(mark), "sleep": 0.3, "echo": "done"}))
    for _ in range(2000):  # until the handler itself says it runs
        if mark.exists():
            break
        await asyncio.sleep(0.01)
    assert mark.exists()
    # WHEN the pool closes meanwhile
    await running.close()
    outcome = await task
    # THEN the invocation finished with its result...
    assert outcome.ok
    assert outcome.result["echo"] == "done"
    # ...and no worker process is left
    assert running.size == 0
    assert outcome.worker_pid
    with pytest.raises(ProcessLookupError):
        os.kill(outcome.worker_pid, 0)
