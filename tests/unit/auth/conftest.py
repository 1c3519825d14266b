"""Fixtures for the $connect authentication tests: an SSM secret in moto, keys, a JWKS server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
import time_machine
from auth_helpers import (
    AUDIENCE,
    ISSUER,
    SECRET_PARAMETER,
    TEST_SECRET,
    JwksServer,
    SigningKeys,
    event_time,
)
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lambdacast.auth.settings import AuthSettings
from lambdacast.auth.tokens import clear_key_caches
from moto import mock_aws


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Every test starts from a cold start: no cached JWKS client, no cached SSM value, fake AWS env.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    clear_key_caches()
    yield
    clear_key_caches()


@pytest.fixture
def at_event_time() -> Iterator[None]:
    """The clock pinned to the sample events' capture time, when their 5-minute tokens were fresh."""
    with time_machine.travel(event_time(), tick=False):
        yield


@pytest.fixture
def ssm() -> Iterator[Any]:
    """moto's SSM holding TEST_SECRET as a SecureString under SECRET_PARAMETER."""
    with mock_aws():
        client = boto3.client("ssm", region_name="eu-west-1")
        client.put_parameter(Name=SECRET_PARAMETER, Value=TEST_SECRET, Type="SecureString")
        yield client


@pytest.fixture
def hs256_settings(ssm: Any) -> AuthSettings:
    """AUTH_MODE=required with the HS256 secret in SSM."""
    return AuthSettings.from_env({"AUTH_MODE": "required", "AUTH_SECRET_PARAMETER": SECRET_PARAMETER})


@pytest.fixture(scope="session")
def keys() -> SigningKeys:
    return SigningKeys(
        rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec=ec.generate_private_key(ec.SECP256R1()),
        other_rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@pytest.fixture
def jwks_server(keys: SigningKeys) -> Iterator[JwksServer]:
    """A JWKS endpoint on 127.0.0.1 (free port) that counts the requests it serves."""
    state = JwksServer(url="", document=keys.jwks())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            body = json.dumps(state.document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def jwks_settings(jwks_server: JwksServer) -> AuthSettings:
    """AUTH_MODE=required with RS256/ES256 keys from the local JWKS server."""
    return AuthSettings.from_env(
        {
            "AUTH_MODE": "required",
            "AUTH_JWKS_URL": jwks_server.url,
            "AUTH_ISSUER": ISSUER,
            "AUTH_AUDIENCE": AUDIENCE,
        }
    )
