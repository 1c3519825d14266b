"""Browser tests: Debian's Chromium driven by Playwright, the demo page served from web/, and the real
backend under ``lambdacast local`` (the ``lambdacast`` fixture of the ``lambdacast_local.testing`` plugin).

Without /usr/bin/chromium the tests are skipped with a loud reason, unless LAMBDACAST_REQUIRE_BROWSER=1
(set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from demo_page import DemoPage

ROOT = Path(__file__).resolve().parents[2]
WEB_DIR = ROOT / "web"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# The first invocation of each function starts a worker process (a cold start); allow for it.
UI_TIMEOUT_MS = 30_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


def _missing_browser() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the session (skip loudly, or fail under LAMBDACAST_REQUIRE_BROWSER=1)."""
    missing = _missing_browser()
    if missing is not None:
        message = f"BROWSER TESTS NOT RUN: {missing}."
        if os.environ.get("LAMBDACAST_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message} LAMBDACAST_REQUIRE_BROWSER=1 makes this a failure.", pytrace=False)
        pytest.skip(f"{message} Set LAMBDACAST_REQUIRE_BROWSER=1 to fail instead of skipping.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@pytest.fixture(scope="session")
def web_url() -> Iterator[str]:
    """web/ served over HTTP on 127.0.0.1, on a free port, like any static host would."""
    handler = functools.partial(_QuietHandler, directory=str(WEB_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="web-dir", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    """The project's own SAM template, served by ``lambdacast local``."""
    return ROOT / "template.yaml"


@pytest.fixture
def open_demo(chromium: Any, web_url: str) -> Iterator[Callable[..., DemoPage]]:
    """Open the demo in a fresh browser context: ``open_demo(ws=..., channel=..., name=...)``.

    ``base=`` opens it from another server (the emulator's own page, whose origin its dev token minter
    answers) instead of the plain static server; ``before=`` gets the page before it navigates (to
    install routes).
    """
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    contexts: list[Any] = []
    pages: list[DemoPage] = []

    def _open(
        base: str | None = None, before: Callable[[Any], None] | None = None, **params: str
    ) -> DemoPage:
        context = chromium.new_context(viewport={"width": 1100, "height": 720})
        contexts.append(context)
        demo = DemoPage(context.new_page())
        pages.append(demo)
        if before is not None:
            before(demo.page)
        demo.page.goto(f"{base or web_url}?{urlencode(params)}")
        return demo

    yield _open
    for context in contexts:
        context.close()
    errors = [error for demo in pages for error in demo.errors]
    assert errors == [], f"uncaught errors in the page: {errors}"


@pytest.fixture
def artifacts_dir() -> Path:
    """test-artifacts/ at the repo root (git-ignored), for screenshots."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
