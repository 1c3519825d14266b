"""examples/token-endpoint: tokens minted by the Python and JS examples pass the real authorizer."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from auth_helpers import TEST_SECRET
from lambdacast.auth.access import Identity
from lambdacast.auth.settings import AuthSettings
from lambdacast.auth.tokens import AuthError, JwtVerifier

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "token-endpoint"
NODE = shutil.which("node")


def load_python_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "lambdacast_example_mint_token", EXAMPLES / "python" / "mint_token.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


mint = load_python_example()


def call_wsgi(app: Any, method: str) -> tuple[str, dict[str, Any]]:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        captured["status"] = status
        captured["headers"] = dict(headers)

    body = b"".join(app({"REQUEST_METHOD": method, "wsgi.input": io.BytesIO()}, start_response))
    return captured["status"], json.loads(body)


def test_python_token_passes_the_authorizer(hs256_settings: AuthSettings) -> None:
    # GIVEN a token minted by the Python example with the authorizer's secret
    token = mint.mint_token(TEST_SECRET, mint.SiteUser("user-5", "Kim", ("private-kim-*",)))
    # WHEN the authorizer verifies it
    identity = JwtVerifier(hs256_settings).verify(token)
    # THEN the site's user is the connection's identity
    assert identity == Identity("user-5", ("private-kim-*",), "Kim")


def test_python_token_expires_after_its_ttl(hs256_settings: AuthSettings) -> None:
    # GIVEN a 5-minute token minted ten minutes ago
    import time

    token = mint.mint_token(TEST_SECRET, mint.SiteUser("user-5"), now=time.time() - 600)
    # WHEN the authorizer verifies it
    # THEN it has expired
    with pytest.raises(AuthError, match="expired"):
        JwtVerifier(hs256_settings).verify(token)


def test_python_example_refuses_a_lifetime_the_authorizer_would_refuse() -> None:
    # GIVEN a 30-day TTL
    # WHEN a token is minted
    # THEN the example refuses, as the authorizer would (MaxTokenLifetimeSeconds, 24 h by default)
    with pytest.raises(ValueError, match="ttl_seconds"):
        mint.mint_token(TEST_SECRET, mint.SiteUser("u"), ttl_seconds=30 * 86400)


def test_python_token_names_the_audience_and_its_issue_time() -> None:
    # GIVEN a token minted by the Python example
    import jwt

    token = mint.mint_token(TEST_SECRET, mint.SiteUser("u"), now=1_800_000_000)
    # WHEN its claims are read
    payload = jwt.decode(token, options={"verify_signature": False})
    # THEN it carries aud "lambdacast" and a 5-minute iat..exp
    assert (payload["aud"], payload["exp"] - payload["iat"]) == ("lambdacast", 300)


def test_python_example_refuses_a_short_secret() -> None:
    # GIVEN a 16-byte secret
    # WHEN a token is minted
    # THEN the example refuses, as the authorizer would
    with pytest.raises(ValueError, match="32 bytes"):
        mint.mint_token("0123456789abcdef", mint.SiteUser("u"))


def test_wsgi_app_answers_401_without_a_session() -> None:
    # GIVEN the WSGI app whose session check finds nobody
    app = mint.make_app(TEST_SECRET, authenticate=lambda environ: None)
    # WHEN it is POSTed to
    status, body = call_wsgi(app, "POST")
    # THEN it refuses to mint
    assert status.startswith("401")
    assert "token" not in body


def test_wsgi_app_refuses_get() -> None:
    # GIVEN the WSGI app
    app = mint.make_app(TEST_SECRET, authenticate=lambda environ: mint.SiteUser("u"))
    # WHEN it is fetched with GET (a link, a prefetch)
    status, _ = call_wsgi(app, "GET")
    # THEN it answers 405
    assert status.startswith("405")


def test_wsgi_app_mints_for_the_session_user(hs256_settings: AuthSettings) -> None:
    # GIVEN the WSGI app with a signed-in user
    app = mint.make_app(TEST_SECRET, authenticate=lambda environ: mint.SiteUser("user-8", "Noor"))
    # WHEN it is POSTed to
    status, body = call_wsgi(app, "POST")
    # THEN it answers a token the authorizer accepts
    assert status.startswith("200")
    assert JwtVerifier(hs256_settings).verify(body["token"]).user_id == "user-8"


def run_node(script: str) -> Any:
    if NODE is None:
        pytest.skip("SKIPPED LOUDLY: `node` is not installed, the JS token example cannot be run")
    module_url = (EXAMPLES / "js" / "lambdacast-token.mjs").as_uri()
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", f"const m = await import({json.dumps(module_url)});\n{script}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_js_token_passes_the_authorizer(hs256_settings: AuthSettings) -> None:
    # GIVEN a token minted by the Netlify/Vercel example with Web Crypto
    token = run_node(
        f"console.log(JSON.stringify(await m.mintToken({{secret: {json.dumps(TEST_SECRET)},"
        " userId: 'user-js', name: 'Zoë', channels: ['presence-room-1']})));"
    )
    # WHEN the authorizer verifies it
    identity = JwtVerifier(hs256_settings).verify(token)
    # THEN it is accepted with every claim intact (non-ASCII name included)
    assert identity == Identity("user-js", ("presence-room-1",), "Zoë")


def test_js_example_refuses_a_lifetime_the_authorizer_would_refuse() -> None:
    # GIVEN a 30-day TTL WHEN the JS example mints THEN it refuses with a clear error
    outcome = run_node(
        f"try {{ await m.mintToken({{secret: {json.dumps(TEST_SECRET)}, userId: 'u', ttlSeconds: 2592000}});"
        " console.log('null'); } catch (e) { console.log(JSON.stringify(e.message)); }"
    )
    assert "ttlSeconds" in outcome


def test_js_default_export_answers_401_until_wired_to_a_session() -> None:
    # GIVEN the example's default export, as deployed unchanged (with a secret configured)
    # WHEN it is POSTed to
    outcome = run_node(
        "const r = await m.default(new Request('https://site.test/t', {method: 'POST'}));"
        " console.log(JSON.stringify({status: r.status, body: await r.json()}));"
    )
    # THEN it mints nothing: the site must plug in its own session check first
    assert outcome == {"status": 401, "body": {"error": "sign in first"}}


def test_js_handler_mints_for_the_session_user(hs256_settings: AuthSettings) -> None:
    # GIVEN createTokenHandler with a session check that finds a user
    outcome = run_node(
        f"const h = m.createTokenHandler({{secret: {json.dumps(TEST_SECRET)},"
        " authenticate: async () => ({userId: 'user-9', channels: ['private-9-*']})});"
        " const r = await h(new Request('https://site.test/t', {method: 'POST'}));"
        " console.log(JSON.stringify({status: r.status, cache: r.headers.get('cache-control'),"
        " body: await r.json()}));"
    )
    # WHEN its token is verified
    identity = JwtVerifier(hs256_settings).verify(outcome["body"]["token"])
    # THEN the response is uncached and the token names the user
    assert (outcome["status"], outcome["cache"]) == (200, "no-store")
    assert identity == Identity("user-9", ("private-9-*",), None)
