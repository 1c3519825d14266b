"""pytest plugin: start ``lambdacast local`` in-process on free ports for a test module.

Usage in a test module::

    @pytest.fixture(scope="module")
    def lambdacast_template() -> Path:
        return Path("template.yaml")

    def test_echo(lambdacast):
        with websockets.sync.client.connect(lambdacast.ws_url) as ws: ...

The emulator runs on its own event loop in a background thread, so sync and async tests can share one
emulator per module. ``lambdacast.invocations`` records every invocation (for assertions on
``$disconnect`` and friends).

Faults: pass ``{"faults": "dynamodb:throttle=0.1", "fault_seed": 7}`` as ``lambdacast_options``, then read
``lambdacast.faults.count("dynamodb", "throttle")`` / ``.calls("dynamodb")``, or call
``lambdacast.faults.configure(spec, seed)`` between phases of a test; ``seed_where`` finds a seed under
which the next calls get the faults a test wants.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from lambdacast_local import eventloop

if TYPE_CHECKING:
    from lambdacast_local.faults import Faults

T = TypeVar("T")


class RunningEmulator:
    """An emulator serving from a background thread; every URL it offers is on 127.0.0.1."""

    def __init__(self, template: Path, **options: Any) -> None:
        # Imported here: pytest loads this plugin in every run, which should not pay for aiohttp/moto.
        from lambdacast_local.lambda_pool import Invocation  # noqa: PLC0415
        from lambdacast_local.options import Options  # noqa: PLC0415
        from lambdacast_local.server import Emulator  # noqa: PLC0415

        self.invocations: list[Invocation] = []
        self._lock = threading.Lock()
        self._loop = eventloop.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lambdacast-local", daemon=True)
        for port in ("port", "http_port", "web_port"):  # free ports only: tests may run side by side
            options.setdefault(port, 0)
        # Tests never reach the network: what a template needs is installed beforehand by
        # `lambdacast local --prepare`, and a missing environment fails naming that command.
        options.setdefault("install", False)
        self.emulator = Emulator(Options(template=template, **options), observers=[self._record])

    def _record(self, invocation: Any) -> None:
        with self._lock:
            self.invocations.append(invocation)

    def start(self) -> RunningEmulator:
        """Start the loop thread and the emulator (raises what ``Emulator.start`` raises)."""
        self._thread.start()
        try:
            self.call(self.emulator.start())
        except BaseException:
            self._stop_loop()
            raise
        return self

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run a coroutine on the emulator's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        """Stop the emulator (firing ``$disconnect`` for open sockets, reaping workers) and the loop."""
        try:
            self.call(self.emulator.stop())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def wait_for(self, predicate: Callable[[RunningEmulator], bool], timeout: float = 10.0) -> bool:
        """Poll ``predicate`` until it holds (for effects that happen after a socket closes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    def invocations_of(self, label: str) -> list[Any]:
        """Invocations recorded for one route label (``$connect``, ``$disconnect``, a route key...)."""
        with self._lock:
            return [inv for inv in self.invocations if inv.label == label]

    def simulated_connections(self, count: int) -> list[str]:
        """Open ``count`` connections without sockets (their frames are kept; see ``frames``); return ids."""

        async def add() -> list[str]:
            assert self.emulator.gateway is not None
            return [live.info.connection_id for live in self.emulator.gateway.add_simulated(count)]

        return self.call(add())

    def frames(self, connection_id: str) -> list[str | bytes]:
        """The frames delivered to a simulated connection (a copy; still readable after it closed)."""

        async def read() -> list[str | bytes]:
            assert self.emulator.gateway is not None
            live = self.emulator.gateway.simulated.get(connection_id)
            return list(live.sink or []) if live is not None else []

        return self.call(read())

    def management_calls(self) -> dict[str, int]:
        """``@connections`` calls served so far, by operation (``post``, ``get``, ``delete``)."""

        async def read() -> dict[str, int]:
            assert self.emulator.management is not None
            return dict(self.emulator.management.calls)

        return self.call(read())

    @property
    def faults(self) -> Faults:
        """The emulator's fault plan: counts so far, ``configure`` to change it (docs/local.md)."""
        return self.emulator.faults

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>/<stage>``."""
        return self.emulator.ws_url

    @property
    def management_url(self) -> str:
        """``http://127.0.0.1:<port>/<stage>`` (append ``/@connections/{id}``)."""
        return self.emulator.management_url

    @property
    def tls_management_url(self) -> str:
        """``https://127.0.0.1:<tls port>/<stage>``, verified by ``ca_bundle``."""
        return self.emulator.tls_management_url

    @property
    def web_url(self) -> str | None:
        """``http://127.0.0.1:<port>/``: the page served from the ``web_dir`` option, if given."""
        return self.emulator.web_url

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the template's HTTP APIs (``/{stage}/path``)."""
        return self.emulator.http_url

    @property
    def ca_bundle(self) -> Path:
        """The throwaway CA of the TLS listener."""
        return self.emulator.ca_bundle

    @property
    def handler_dynamodb_endpoint(self) -> str:
        """Where handlers reach DynamoDB: the same tables as ``aws_endpoint``, through the fault listener."""
        return self.emulator.handler_dynamodb_endpoint

    @property
    def aws_endpoint(self) -> str:
        """The embedded AWS endpoint (moto server)."""
        return self.emulator.aws_endpoint


def seed_where(spec: str, target: str, outcomes: Sequence[str | None], search: int = 100_000) -> int:
    """The smallest seed under which the first calls to ``target`` get ``outcomes``, in order.

    Args:
        spec: A ``--faults`` value.
        target: ``dynamodb``, ``connections`` or ``lambda``.
        outcomes: One per call: ``None`` (no fault), a kind (``"throttle"``) or ``"kind/variant"``
            (``"lost-reply/dropped"``).
        search: Seeds to try, from 0.

    Returns:
        The seed (pass it as ``fault_seed`` or to ``faults.configure``).

    Raises:
        ValueError: No seed below ``search`` gives these outcomes (a rate of 0 or 1 can forbid them).
    """
    from lambdacast_local.faults import Faults, parse_spec  # noqa: PLC0415 - see RunningEmulator

    parsed = parse_spec(spec)
    for seed in range(search):
        faults = Faults(parsed, seed)
        for wanted in outcomes:
            decision = faults.decide(target)
            got = decision.kind
            if got is not None and wanted is not None and "/" in wanted:
                got = f"{decision.kind}/{decision.variant}"
            if got != wanted:
                break
        else:
            return seed
    raise ValueError(f"no seed below {search} gives {list(outcomes)} for {target} under {spec!r}")


@contextlib.contextmanager
def running_emulator(template: Path, **options: Any) -> Iterator[RunningEmulator]:
    """Start an emulator for the duration of a ``with`` block."""
    emulator = RunningEmulator(template, **options).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def lambdacast_template(pytestconfig: pytest.Config) -> Path:
    """The template the ``lambdacast`` fixture serves: ``template.yaml`` at pytest's rootdir by default.

    Override this fixture in a test module or conftest to serve another template.
    """
    return pytestconfig.rootpath / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    """Extra ``Options`` for the ``lambdacast`` fixture (override to shorten timeouts...)."""
    return {}


@pytest.fixture(scope="module")
def lambdacast(lambdacast_template: Path, lambdacast_options: dict[str, Any]) -> Iterator[RunningEmulator]:
    """A running emulator for the module, on free ports, stopped (and its workers reaped) afterwards."""
    with running_emulator(lambdacast_template, **lambdacast_options) as emulator:
        yield emulator
