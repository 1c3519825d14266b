"""lambdacast.js itself in Chromium, against ``lambdacast local``: behaviours the demo does not expose.

Each test loads the module into a page served from web/ and drives it with ``page.evaluate``; Playwright's
WebSocket routing sits between the page and the emulator where a test needs to see or break the traffic.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from demo_page import DemoPage

pytestmark = pytest.mark.browser

START_CLIENT = """
async ([url, options]) => {
  const { connect } = await import("./lambdacast.js");
  window.log = [];
  window.received = [];
  let minted = 0;
  const client = connect(url, { ...options, getToken: async () => `token-${++minted}` });
  client.on("state", (state) => window.log.push(state));
  client.on("error", (error) => window.log.push(error.code));
  client.subscribe("heartbeat-room", (message) => window.received.push(message.data));
  window.client = client;
}
"""


def _blank_page(open_demo: Callable[..., DemoPage], web_url: str) -> DemoPage:
    """A same-origin page without the demo's own client (the module is imported from web/)."""
    demo = open_demo()
    demo.page.goto(f"{web_url}lambdacast.d.ts")
    return demo


def _wait_for(demo: DemoPage, predicate: str, arg: Any = None) -> None:
    """Wait until ``predicate`` holds in the page; on timeout, fail with the client's event log."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        demo.page.wait_for_function(predicate, arg=arg, timeout=30_000)
    except PlaywrightTimeout:
        state = demo.page.evaluate(
            "({log: window.log, received: window.received, state: window.client.state})"
        )
        pytest.fail(f"timed out waiting for {predicate}; the client: {state}")


def _publish_from_python(ws_url: str, channel: str, data: object) -> None:
    from websockets.sync.client import connect

    with connect(ws_url) as ws:
        ws.send(json.dumps({"action": "subscribe", "channel": channel, "id": "s"}))
        assert json.loads(ws.recv(timeout=30))["type"] == "subscribed"
        ws.send(json.dumps({"action": "publish", "channel": channel, "data": data, "id": "p"}))
        assert json.loads(ws.recv(timeout=30))["type"] == "ack"


def test_a_socket_that_stops_answering_pings_is_replaced(
    open_demo: Callable[..., DemoPage], web_url: str, lambdacast: Any
) -> None:
    # GIVEN a client with a short heartbeat whose first socket silently loses every ping (half-open TCP)
    demo = _blank_page(open_demo, web_url)
    sockets: list[Any] = []
    swallowed: list[str] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()
        first = not sockets
        sockets.append(ws)

        def to_server(message: str | bytes) -> None:
            if first and isinstance(message, str) and json.loads(message).get("action") == "ping":
                swallowed.append(message)
                return
            server.send(message)

        ws.on_message(to_server)

    demo.page.route_web_socket(lambda url: url.startswith(lambdacast.ws_url), route)
    demo.page.evaluate(START_CLIENT, [lambdacast.ws_url, {"heartbeatIdle": 500, "heartbeatTimeout": 3000}])

    # WHEN the pong never comes
    _wait_for(demo, "window.log.includes('heartbeat_timeout')")

    # THEN the client replaced the socket, resubscribed, and receives on the new one
    _wait_for(demo, "window.client.state === 'open'")
    assert swallowed, "the first socket never pinged"
    assert len(sockets) >= 2
    _publish_from_python(lambdacast.ws_url, "heartbeat-room", "after the dead socket")
    _wait_for(demo, "window.received.includes('after the dead socket')")


def test_every_reconnect_asks_getToken_for_a_fresh_token(
    open_demo: Callable[..., DemoPage], web_url: str, lambdacast: Any
) -> None:
    # GIVEN a client whose getToken mints token-1, token-2, ... and a view of the URLs it opens
    demo = _blank_page(open_demo, web_url)
    urls: list[str] = []

    def route(ws: Any) -> None:
        urls.append(ws.url)
        ws.connect_to_server()

    demo.page.route_web_socket(lambda url: url.startswith(lambdacast.ws_url), route)
    demo.page.evaluate(START_CLIENT, [lambdacast.ws_url, {}])
    _wait_for(demo, "window.client.state === 'open'")
    first_id = demo.page.evaluate("window.client.connectionId")

    # WHEN the backend deletes the connection
    request = urllib.request.Request(
        f"{lambdacast.management_url}/@connections/{quote(first_id, safe='=')}", method="DELETE"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204
    _wait_for(
        demo, "(before) => window.client.state === 'open' && window.client.connectionId !== before", first_id
    )

    # THEN each attempt carried a freshly minted token in the token query parameter
    tokens = [parse_qs(urlsplit(url).query)["token"] for url in urls]
    assert tokens == [["token-1"], ["token-2"]]


def test_history_pages_back_through_a_channel(
    open_demo: Callable[..., DemoPage], web_url: str, lambdacast: Any
) -> None:
    # GIVEN a channel with five stored messages
    channel = f"history-{uuid.uuid4().hex[:10]}"
    for n in range(1, 6):
        _publish_from_python(lambdacast.ws_url, channel, f"m{n}")
    demo = _blank_page(open_demo, web_url)

    # WHEN a client (not subscribed) asks for two messages before seq 4, then for the newest 50
    pages = demo.page.evaluate(
        """async ([url, channel]) => {
          const { connect } = await import("./lambdacast.js");
          const client = connect(url);
          const older = await client.history(channel, { limit: 2, before: 4 });
          const newest = await client.history(channel);
          client.close();
          return [older, newest].map((page) => page.map((m) => [m.seq, m.data]));
        }""",
        [lambdacast.ws_url, channel],
    )

    # THEN the pages hold the stored messages in seq order
    assert pages == [[[2, "m2"], [3, "m3"]], [[n, f"m{n}"] for n in range(1, 6)]]
