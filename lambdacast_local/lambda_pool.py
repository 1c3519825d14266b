"""Lambda's execution model locally: a bounded pool of warm worker processes per function.

Each worker is one execution environment: the handler is imported once (the cold start), then the worker
serves one invocation at a time. A pool grows up to ``concurrency`` workers and then queues callers. A
timeout kills the worker and the invocation counts as failed. An injected ``lambda`` fault (``--faults``)
kills the worker before or after the handler (``FunctionPool._inject``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lambdacast_local.events import new_id, random_bytes
from lambdacast_local.faults import LAMBDA, NO_FAULT, Decision, Faults
from lambdacast_local.faults.invocations import injected_failure, timed_out
from lambdacast_local.model import Function
from lambdacast_local.runtimes import Launch, launch_here
from lambdacast_local.runtimes.channel import WorkerProcess
from lambdacast_local.runtimes.protocol import WorkerConfig

_INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation, as the gateway and the log line need it."""

    function: str
    request_id: str
    status: str
    """``ok``, ``error`` (the handler raised, or its result cannot be serialised) or ``timeout``."""
    result: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    cold: bool = False
    init_ms: float = 0.0
    label: str = ""
    worker_pid: int = 0
    connection_id: str = ""

    @property
    def ok(self) -> bool:
        """Whether the handler returned normally."""
        return self.status == "ok"


Observer = Callable[[Invocation], None]


class FunctionPool:
    """The execution environments of one function.

    ``launch`` says how its workers start (``runtimes.prepare``: the interpreter its ``Runtime`` names, its
    packages); without one, a Python function runs on the emulator's own interpreter (``launch_here``).
    ``faults`` may kill a worker mid-invocation (``--faults lambda:crash``, ``lambda:timeout``).
    """

    def __init__(
        self,
        function: Function,
        env: dict[str, str],
        region: str,
        concurrency: int,
        launch: Launch | None = None,
        *,
        faults: Faults | None = None,
    ) -> None:
        self._launch = launch or launch_here(function)
        self.function = self._launch.function
        self._faults = faults
        self._env = {**env, **self._launch.env}
        self._region = region
        self._concurrency = max(1, concurrency)
        self._idle: list[WorkerProcess] = []
        self._all: set[WorkerProcess] = set()
        self._slots = asyncio.Semaphore(self._concurrency)
        self._generation = 0
        self._closed = False
        self._stopping: set[asyncio.Task[None]] = set()

    @property
    def size(self) -> int:
        """Worker processes alive now."""
        return len(self._all)

    def _config(self) -> str:
        fn = self.function
        config: WorkerConfig = {
            "handler": fn.handler,
            "code_dir": str(fn.code_dir),
            "function_name": fn.name,
            "function_arn": f"arn:aws:lambda:{self._region}:123456789012:function:{fn.name}",
            "memory_mb": fn.memory_mb,
            "log_stream_name": f"local/[$LATEST]{new_id()}",
            "hosts": {},
        }
        return json.dumps({**config, **self._launch.config})

    async def _spawn(self) -> tuple[WorkerProcess, dict[str, Any] | None]:
        worker = await WorkerProcess.start(
            [*self._launch.argv, self._config()],
            env=self._env,
            cwd=str(self.function.code_dir),
            generation=self._generation,
            log_prefix=f"[{self.function.name}] ",
        )
        self._all.add(worker)
        try:
            hello = await worker.read(_INIT_TIMEOUT_S)
        except TimeoutError:
            hello = None
        return worker, hello

    async def invoke(self, event: dict[str, Any], label: str = "") -> Invocation:
        """Run one invocation in a warm worker, starting one when none is idle and the pool has room."""
        request_id = new_id_uuid()
        async with self._slots:
            if self._closed:  # checked after the wait for a slot: close() may have run meanwhile
                error = {"errorType": "Runtime.Unavailable", "errorMessage": "the emulator is shutting down"}
                return Invocation(self.function.name, request_id, "error", error=error, label=label)
            while self._idle and not self._idle[-1].alive:  # died while idle
                await self._discard(self._idle[-1])
            cold = not self._idle
            init_ms = 0.0
            if self._idle:
                worker = self._idle.pop()
            else:
                worker, hello = await self._spawn()
                if hello is None or hello.get("type") != "ready":
                    await self._discard(worker)
                    error = hello or {
                        "errorType": "Runtime.InitError",
                        "errorMessage": "the worker did not start",
                    }
                    return Invocation(
                        self.function.name, request_id, "error", error=error, cold=True, label=label
                    )
                init_ms = float(hello["init_ms"])
            started = time.perf_counter()
            status, result, failure = await self._run(worker, request_id, event)
        return Invocation(
            function=self.function.name,
            request_id=request_id,
            status=status,
            result=result,
            error=failure,
            duration_ms=(time.perf_counter() - started) * 1000,
            cold=cold,
            init_ms=init_ms,
            label=label,
            worker_pid=worker.pid,
            connection_id=_connection_id(event),
        )

    async def _run(
        self, worker: WorkerProcess, request_id: str, event: dict[str, Any]
    ) -> tuple[str, Any, dict[str, Any] | None]:
        timeout = self.function.timeout_s
        deadline_ms = time.time_ns() // 1_000_000 + int(timeout * 1000)
        message = {"request_id": request_id, "deadline_ms": deadline_ms, "event": event}
        fault = self._faults.decide(LAMBDA) if self._faults is not None else NO_FAULT
        if fault.variant == "before-handler":
            return await self._inject(worker, request_id, fault)
        try:
            reply = await worker.request(message, timeout)
        except TimeoutError:
            worker.kill()
            await self._discard(worker)
            return "timeout", None, timed_out(timeout)
        except (ConnectionError, BrokenPipeError):
            reply = None
        if reply is None:
            await self._discard(worker)
            return (
                "error",
                None,
                {"errorType": "Runtime.ExitError", "errorMessage": "the worker process exited"},
            )
        if fault.variant == "after-handler":  # every effect happened; the result is lost
            return await self._inject(worker, request_id, fault)
        if reply.get("fatal"):  # the worker is exiting (Node.js: an uncaught exception)
            await self._discard(worker)
        else:
            self._release(worker)
        if reply.get("ok"):
            return "ok", reply.get("result"), None
        return "error", None, reply

    async def _inject(
        self, worker: WorkerProcess, request_id: str, fault: Decision
    ) -> tuple[str, Any, dict[str, Any] | None]:
        """An injected ``lambda`` fault (``--faults``): kill the worker, report it as Lambda would."""
        worker.kill()
        await self._discard(worker)
        status, error = injected_failure(fault, request_id, self.function.timeout_s)
        return status, None, error

    def _release(self, worker: WorkerProcess) -> None:
        if self._closed or worker.generation != self._generation:
            self._all.discard(worker)
            task = asyncio.get_running_loop().create_task(worker.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        else:
            self._idle.append(worker)

    async def _discard(self, worker: WorkerProcess) -> None:
        self._all.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        await worker.stop(grace_s=0.2)

    async def recycle(self) -> None:
        """Replace every worker (``--reload``): idle ones stop now, busy ones when their invocation ends."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for worker in idle:
            self._all.discard(worker)
        await asyncio.gather(*(worker.stop() for worker in idle))

    async def close(self) -> None:
        """Stop and reap every worker (one still busy is stopped when its invocation ends)."""
        self._closed = True
        workers = list(self._all)
        self._all.clear()
        self._idle.clear()
        await asyncio.gather(*(worker.stop(grace_s=0.5) for worker in workers), *self._stopping)


def _connection_id(event: dict[str, Any]) -> str:
    context = event.get("requestContext")
    return str(context.get("connectionId", "")) if isinstance(context, dict) else ""


def new_id_uuid() -> str:
    """A Lambda request id (a UUID4, as ``context.aws_request_id`` is on AWS)."""
    return str(uuid.UUID(bytes=random_bytes(16), version=4))


class LambdaService:
    """All the function pools of an app, created lazily, reporting every invocation to observers."""

    def __init__(
        self,
        functions: dict[str, Function],
        envs: dict[str, dict[str, str]],
        region: str,
        concurrency: int,
        launches: dict[str, Launch] | None = None,
        *,
        faults: Faults | None = None,
    ) -> None:
        launches = launches or {}
        self._pools = {
            name: FunctionPool(fn, envs[name], region, concurrency, launches.get(name), faults=faults)
            for name, fn in functions.items()
        }
        self.observers: list[Observer] = []

    def pool(self, name: str) -> FunctionPool:
        """The pool of one function."""
        return self._pools[name]

    async def invoke(self, name: str, event: dict[str, Any], label: str = "") -> Invocation:
        """Invoke a function by name and tell every observer."""
        result = await self._pools[name].invoke(event, label)
        for observer in self.observers:
            observer(result)
        return result

    async def recycle(self) -> None:
        """Restart every function's workers (code changed)."""
        await asyncio.gather(*(pool.recycle() for pool in self._pools.values()))

    async def close(self) -> None:
        """Stop and reap every worker of every function."""
        await asyncio.gather(*(pool.close() for pool in self._pools.values()))

    @property
    def process_count(self) -> int:
        """Worker processes alive now, across functions."""
        return sum(pool.size for pool in self._pools.values())
