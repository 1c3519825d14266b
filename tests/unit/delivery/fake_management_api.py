"""A scripted ``@connections`` API on 127.0.0.1 that checks every request's SigV4 signature with botocore.

Connection ids script the answers:
    ``gone-*``      410 GoneException, always
    ``throttleN-*`` 429 LimitExceededException N times, then 200
    ``errN-*``      500 N times, then 200
    ``forbid-*``    403 ForbiddenException, always
    anything else   200
A request whose signature botocore does not reproduce is answered 403 and counted in
``bad_signatures``, so a signing bug cannot hide behind a retry.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from lambdacast.delivery import transport as fastpost

REGION = "eu-west-1"
STAGE = "prod"
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
TEMP_CREDENTIALS = Credentials("ASIAEXAMPLE", "c2VjcmV0LXNlY3JldA==", "FwoGZXIvYXdzEXAMPLE/token+value==")

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<scope>\d{8}/[^/]+/[^/]+/aws4_request), "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)
_SCRIPTED = re.compile(r"^(?P<kind>throttle|err)(?P<n>\d+)-")


@dataclass
class Recorder:
    """What the fake management API saw."""

    secrets: dict[str, Credentials]
    latency: float = 0.0
    delivered: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    attempts: Counter[str] = field(default_factory=Counter)
    bad_signatures: list[str] = field(default_factory=list)
    verified: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def verify(self, request: web.Request, body: bytes) -> str | None:
        """Recompute the signature with botocore; return a problem, or None if it is valid."""
        match = _AUTH.match(request.headers.get("Authorization", ""))
        if match is None:
            return f"malformed Authorization header: {request.headers.get('Authorization')!r}"
        creds = self.secrets.get(match["key"])
        if creds is None:
            return f"unknown access key {match['key']}"
        amz_date = request.headers.get("X-Amz-Date", "")
        date, region, service, _ = match["scope"].split("/")
        if (date, region, service) != (amz_date[:8], REGION, "execute-api"):
            return f"bad credential scope {match['scope']}"
        if request.headers.get("X-Amz-Security-Token") != creds.token:
            return "missing or wrong session token"
        signed = match["signed"].split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            return f"host and x-amz-date must be signed, got {signed}"
        reference = AWSRequest(
            method=request.method,
            url=f"http://{request.host}{request.raw_path}",
            data=body,
            headers={name: request.headers[name] for name in signed},
        )
        reference.context["timestamp"] = amz_date
        auth = SigV4Auth(creds, service, region)
        expected = auth.signature(
            auth.string_to_sign(reference, auth.canonical_request(reference)), reference
        )
        return None if expected == match["sig"] else "signature mismatch"

    async def handle(self, request: web.Request) -> web.Response:
        connection_id = request.match_info["connection_id"]
        body = await request.read()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            self.attempts[connection_id] += 1
            problem = self.verify(request, body)
            if problem is not None:
                self.bad_signatures.append(f"{connection_id}: {problem}")
                return _error(403, "InvalidSignatureException", problem)
            self.verified += 1
            return self._scripted(connection_id, body)
        finally:
            self.in_flight -= 1

    def _scripted(self, connection_id: str, body: bytes) -> web.Response:
        if connection_id.startswith("gone-"):
            return _error(410, "GoneException", "")
        if connection_id.startswith("forbid-"):
            return _error(403, "ForbiddenException", "Forbidden")
        scripted = _SCRIPTED.match(connection_id)
        if scripted and self.attempts[connection_id] <= int(scripted["n"]):
            if scripted["kind"] == "throttle":
                return _error(429, "LimitExceededException", "Rate exceeded")
            return _error(500, "InternalServerErrorException", "Internal server error")
        self.delivered[connection_id].append(body)
        return web.Response(status=200)


def _error(status: int, error_type: str, message: str) -> web.Response:
    return web.json_response(
        {"message": message} if message else {}, status=status, headers={"x-amzn-ErrorType": error_type}
    )


@dataclass
class FakeManagementApi:
    """The running server: ``endpoint`` to post to, ``recorder`` to inspect."""

    endpoint: str
    recorder: Recorder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serve(tls: ssl.SSLContext | None = None) -> Iterator[FakeManagementApi]:
    """Serve the scripted API from a background thread (its own event loop) on a free port."""
    recorder = Recorder(secrets={c.access_key: c for c in (CREDENTIALS, TEMP_CREDENTIALS)})
    app = web.Application()
    app.router.add_post("/prod/@connections/{connection_id}", recorder.handle)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, name="fake-management-api", daemon=True)
    thread.start()
    try:
        scheme = "https" if tls else "http"
        yield FakeManagementApi(f"{scheme}://127.0.0.1:{port}/{STAGE}", recorder)
    finally:
        fastpost.close()
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def management_api() -> Iterator[FakeManagementApi]:
    """The scripted API over plain HTTP."""
    with _serve() as api:
        yield api


@dataclass
class TlsApi:
    """The scripted API over HTTPS, and the file holding the CA that signed its certificate."""

    api: FakeManagementApi
    ca_bundle: Path


@pytest.fixture
def management_api_tls(tmp_path: Path) -> Iterator[TlsApi]:
    """The scripted API over HTTPS with a throwaway CA (trustme), as ``lambdacast local`` serves it."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with _serve(server) as api:
        yield TlsApi(api, bundle)


@pytest.fixture
def dead_endpoint() -> str:
    """An endpoint on a port where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{_free_port()}/{STAGE}"


class RecordingSleep:
    """An injectable backoff sleep that records the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def no_sleep() -> RecordingSleep:
    return RecordingSleep()
