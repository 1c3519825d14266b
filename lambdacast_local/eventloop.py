"""The event loop the emulator runs on: uvloop when installed, asyncio's own else.

Everything the emulator does per message is event-loop work (socket reads and writes, TLS, pipe I/O to
the workers, timers, callbacks); uvloop does it in C on libuv. ``LAMBDACAST_LOOP=asyncio`` picks the
standard loop (to compare, or to debug with asyncio's debug mode).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency (not on Windows, where it does not exist)
    uvloop = None  # type: ignore[assignment]

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop of the kind the emulator uses."""
    if uvloop is not None and os.environ.get("LAMBDACAST_LOOP", "").lower() != "asyncio":
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new loop (``asyncio.run`` with :func:`new_event_loop`)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
