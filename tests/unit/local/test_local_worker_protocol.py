"""One worker protocol, two workers: the same behaviours from the Python and the Node.js worker.

Each scenario runs a handler written in both languages through a real ``FunctionPool`` (worker processes
and their pipes, no sockets), so the pool can never tell which language it is talking to.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from lambdacast_local.lambda_pool import FunctionPool
from lambdacast_local.model import Function
from lambdacast_local.runtimes.launch import NODE_WORKER, Launch, launch_here

PYTHON = """
import os, sys, time
STARTED = time.time()

def handler(event, context):
    kind = event.get("kind")
    if kind == "fail":
        raise KeyError("missing")
    if kind == "unserialisable":
        return {"value": object()}
    if kind == "exit":
        os._exit(3)
    if kind == "sleep":
        time.sleep(5)
    if kind == "noisy":
        print("x" * 200000)
        sys.stdout.write("{\\"ok\\": true, \\"result\\": \\"forged\\"}\\n")
    if kind == "big":
        return "y" * 1_000_000
    return {"pid": os.getpid(), "started": STARTED, "echo": event.get("echo"),
            "request_id": context.aws_request_id, "name": context.function_name,
            "remaining": context.get_remaining_time_in_millis()}
"""

NODE = """
const started = Date.now();
exports.handler = async (event, context) => {
  const kind = event.kind;
  if (kind === "fail") throw new RangeError("missing");
  if (kind === "unserialisable") return { value: 10n };
  if (kind === "exit") process.exit(3);
  if (kind === "sleep") await new Promise((resolve) => setTimeout(resolve, 5000));
  if (kind === "noisy") {
    console.log("x".repeat(200000));
    process.stdout.write('{"ok": true, "result": "forged"}\\n');
  }
  if (kind === "big") return "y".repeat(1000000);
  return { pid: process.pid, started, echo: event.echo ?? null, request_id: context.awsRequestId,
           name: context.functionName, remaining: context.getRemainingTimeInMillis() };
};
"""

LANGUAGES = ["python", "node"]
ERROR_TYPES = {"python": "KeyError", "node": "RangeError"}


def make_pool(
    tmp_path: Path, language: str, source: str | None = None, timeout_s: float = 3.0
) -> FunctionPool:
    code = tmp_path / language
    code.mkdir(exist_ok=True)
    if language == "python":
        (code / "app.py").write_text(PYTHON if source is None else source)
        function = Function("Fn", "Fn", code, "app.handler", runtime="python3.11", timeout_s=timeout_s)
        launch = launch_here(function)
    else:
        node = shutil.which("node")
        if node is None:
            pytest.skip("SKIPPED LOUDLY: node is not on PATH")
        (code / "app.js").write_text(NODE if source is None else source)
        function = Function("Fn", "Fn", code, "app.handler", runtime="nodejs20.x", timeout_s=timeout_s)
        launch = Launch(function, (node, str(NODE_WORKER)), {"esm_paths": []})
    return FunctionPool(function, {"PATH": "/usr/bin:/bin"}, "us-east-1", 1, launch)


@pytest.fixture(params=LANGUAGES)
async def pool(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    created = make_pool(tmp_path, request.param)
    created.language = request.param  # type: ignore[attr-defined]
    yield created
    await created.close()


async def test_first_invocation_is_cold_then_warm_in_the_same_process(pool):
    # WHEN the function is invoked twice in a row
    first = await pool.invoke({"echo": 1})
    second = await pool.invoke({"echo": 2})
    # THEN the first was a cold start, the second reused the process and its loaded module
    assert (first.cold, second.cold) == (True, False)
    assert first.result["pid"] == second.result["pid"]
    assert first.result["started"] == second.result["started"]
    assert second.result["echo"] == 2


async def test_the_context_carries_the_request_id_name_and_deadline(pool):
    # WHEN the handler reads its context
    outcome = await pool.invoke({})
    # THEN it names this invocation's request id, the function, and time left below the 3 s timeout
    assert outcome.result["request_id"] == outcome.request_id
    assert outcome.result["name"] == "Fn"
    assert 0 < outcome.result["remaining"] <= 3000


async def test_an_exception_is_reported_with_its_type_and_the_worker_keeps_serving(pool):
    # WHEN the handler throws
    outcome = await pool.invoke({"kind": "fail"})
    # THEN the invocation failed with the error's type and message, and the same worker serves the next one
    assert outcome.status == "error"
    assert outcome.error["errorType"] == ERROR_TYPES[pool.language]
    assert "missing" in outcome.error["errorMessage"]
    assert (await pool.invoke({})).result["pid"] == outcome.worker_pid


async def test_an_unserialisable_result_is_a_marshal_error(pool):
    # WHEN the handler returns what JSON cannot encode (an object() / a BigInt)
    outcome = await pool.invoke({"kind": "unserialisable"})
    # THEN it fails like Lambda's Runtime.MarshalError, and the worker keeps serving
    assert outcome.error["errorType"] == "Runtime.MarshalError"
    assert (await pool.invoke({})).ok


async def test_a_process_exit_fails_the_invocation_and_the_next_starts_cold(pool):
    # WHEN the handler exits its process
    outcome = await pool.invoke({"kind": "exit"})
    after = await pool.invoke({})
    # THEN that invocation failed with Runtime.ExitError and a new process served the next one
    assert outcome.error["errorType"] == "Runtime.ExitError"
    assert after.cold
    assert after.result["pid"] != outcome.worker_pid


async def test_handler_output_never_reaches_the_protocol_channel(pool, capfd):
    # WHEN the handler prints 200 KB and a line that looks like a reply
    outcome = await pool.invoke({"kind": "noisy"})
    # THEN the real reply still arrives, and the printed lines went to the log prefixed with the function
    assert outcome.ok
    assert outcome.result["pid"] > 0
    await pool.close()  # the log pump drains once the worker is gone
    err = capfd.readouterr().err
    assert '[Fn] {"ok": true, "result": "forged"}' in err
    assert "[Fn] " + "x" * 200000 in err


async def test_a_large_result_arrives_intact(pool):
    # WHEN the handler returns a 1 MB string
    outcome = await pool.invoke({"kind": "big"})
    # THEN all of it arrives
    assert outcome.result == "y" * 1_000_000


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_timeout_kills_the_worker(tmp_path, language):
    # GIVEN a 0.5 s timeout
    short = make_pool(tmp_path, language, timeout_s=0.5)
    try:
        # WHEN the handler runs longer
        outcome = await short.invoke({"kind": "sleep"})
        # THEN the invocation timed out and its worker is gone
        assert outcome.status == "timeout"
        assert outcome.error["errorType"] == "Sandbox.Timedout"
        assert short.size == 0
    finally:
        await short.close()


@pytest.mark.parametrize(
    ("language", "source"),
    [("python", "import not_a_module_anywhere\n"), ("node", "require('not-a-module-anywhere');\n")],
)
async def test_an_import_error_fails_the_invocation_and_leaves_no_worker(tmp_path, language, source):
    # GIVEN a handler module that cannot be loaded
    broken = make_pool(tmp_path, language, source)
    try:
        # WHEN it is invoked
        outcome = await broken.invoke({})
        # THEN the invocation fails with Lambda's init error type, naming the module, and no process remains
        assert outcome.error["errorType"] == "Runtime.ImportModuleError"
        assert "not" in outcome.error["errorMessage"]
        assert "module" in outcome.error["errorMessage"].lower()
        assert broken.size == 0
    finally:
        await broken.close()


async def test_node_handler_not_exported_is_runtime_handler_not_found(tmp_path):
    # GIVEN a Node.js module that does not export the configured handler
    missing = make_pool(tmp_path, "node", "exports.other = async () => 1;\n")
    try:
        outcome = await missing.invoke({})
        # THEN the init fails as Lambda's does
        assert outcome.error["errorType"] == "Runtime.HandlerNotFound"
        assert outcome.error["errorMessage"] == "app.handler is undefined or not exported"
    finally:
        await missing.close()


async def test_node_uncaught_exception_fails_its_invocation_and_retires_the_worker(tmp_path):
    # GIVEN a handler whose timer throws after it started waiting
    source = (
        "exports.handler = async (event) => {\n"
        "  if (event.throwLater) {\n"
        "    setTimeout(() => { throw new TypeError('late'); }, 1);\n"
        "    return new Promise(() => {});\n"
        "  }\n"
        "  return process.pid;\n"
        "};\n"
    )
    uncaught = make_pool(tmp_path, "node", source)
    try:
        # WHEN the exception escapes
        outcome = await uncaught.invoke({"throwLater": True})
        after = await uncaught.invoke({})
        # THEN the invocation failed with that error, and the next one ran in a fresh process
        assert outcome.error["errorType"] == "TypeError"
        assert outcome.error["errorMessage"] == "late"
        assert after.cold
        assert after.result != outcome.worker_pid
    finally:
        await uncaught.close()
