"""A minimal ``@connections`` API that answers every POST with 200 after an injected latency.

Run as its own process (``python -m bench.stub_server --latency-ms 10``) so its CPU time is not
charged to the publishing process being measured. It prints ``PORT <n>`` once it listens.
It checks that a SigV4 ``Authorization`` header is present (signatures are verified by the
unit tests; recomputing them here would only add server CPU) and counts what it accepted:
``GET /_stats`` answers ``{"posts": n, "unsigned": m}``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web


class StubApi:
    """The handlers and their counters."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.posts = 0
        self.unsigned = 0

    async def post(self, request: web.Request) -> web.Response:
        await request.read()
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if not request.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 Credential="):
            self.unsigned += 1
            return web.json_response(
                {"message": "Missing Authentication Token"},
                status=403,
                headers={"x-amzn-ErrorType": "ForbiddenException"},
            )
        self.posts += 1
        return web.Response(status=200)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"posts": self.posts, "unsigned": self.unsigned})


async def serve(latency_ms: float, port: int) -> None:
    api = StubApi(latency_ms / 1000)
    app = web.Application()
    app.router.add_post("/{stage}/@connections/{connection_id}", api.post)
    app.router.add_get("/_stats", api.stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    try:
        # Until the parent closes our stdin (or dies).
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.latency_ms, args.port))


if __name__ == "__main__":
    main()
