"""Child process for :class:`bench.targets.EmulatorTarget`: run ``lambdacast local`` and report on a pipe.

Prints one JSON line ``{"endpoint", "ids"}`` once the emulator listens and holds the simulated
connections, then answers each ``stats`` line on stdin with ``{"frames": n}`` (frames delivered
to the simulated connections so far) until stdin closes. Everything else the emulator and its
workers print goes to stderr, so it cannot corrupt the protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def _protocol_stream() -> Any:
    """Keep the real stdout for the protocol; point fd 1 (inherited by workers) at stderr."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    args = parser.parse_args()
    out = _protocol_stream()
    try:
        from lambdacast_local.testing import running_emulator

        with running_emulator(args.template, management_latency_ms=args.latency_ms) as emulator:
            ids = emulator.simulated_connections(args.connections)

            async def frames() -> int:
                gateway = emulator.emulator.gateway
                assert gateway is not None
                return sum(len(live.sink or []) for live in gateway.connections.values())

            out.write(json.dumps({"endpoint": emulator.management_url, "ids": ids}) + "\n")

            async def forget() -> None:
                # Drop the simulated recipients before shutdown, which would run $disconnect for each.
                gateway = emulator.emulator.gateway
                assert gateway is not None
                for connection_id in ids:
                    gateway.connections.pop(connection_id, None)

            for line in sys.stdin:
                if line.strip() == "stats":
                    out.write(json.dumps({"frames": emulator.call(frames())}) + "\n")
            emulator.call(forget())
    except Exception as exc:
        out.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
        raise


if __name__ == "__main__":
    main()
