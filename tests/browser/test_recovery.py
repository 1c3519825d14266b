"""Recovery in Chromium against ``lambdacast local``: a page that was offline shows every message it missed.

The reader's sockets pass through Playwright's WebSocket routing, so a test can cut its connection and
refuse every reconnect for as long as it likes, then let it back: an outage the page cannot tell from a
real one (close code 1006, then failed attempts with backoff).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from demo_page import DemoPage

pytestmark = pytest.mark.browser


class Link:
    """A switch between one page and the emulator: ``cut()`` drops the socket and refuses new ones."""

    def __init__(self, demo: DemoPage, ws_url: str) -> None:
        self.demo = demo
        self.down = False
        self.handshakes = 0
        self._sockets: list[tuple[Any, Any]] = []
        demo.page.route_web_socket(lambda url: url.startswith(ws_url), self._route)

    def _route(self, ws: Any) -> None:
        self.handshakes += 1
        if self.down:
            ws.close(code=1011, reason="test: network down")
            return
        self._sockets.append((ws, ws.connect_to_server()))

    def cut(self) -> None:
        self.down = True
        page_side, server_side = self._sockets[-1]
        page_side.close(code=1006)
        server_side.close()

    def restore(self) -> None:
        """Let sockets through again and fire the page's online event (it skips the rest of the backoff)."""
        self.down = False
        self.demo.page.evaluate("window.dispatchEvent(new Event('online'))")


def _channel() -> str:
    return f"room-{uuid.uuid4().hex[:10]}"


def _open_reader(open_demo: Callable[..., DemoPage], ws_url: str, channel: str) -> tuple[DemoPage, Link]:
    """The demo in a tab whose sockets go through a Link, joined to ``channel``."""
    from playwright.sync_api import expect

    demo = open_demo()  # a blank tab first, so the route is in place before the demo connects
    link = Link(demo, ws_url)
    url = demo.page.url.split("?")[0]
    demo.page.goto(f"{url}?ws={ws_url}&channel={channel}&name=reader")
    expect(demo.page.locator("body")).to_have_attribute("data-state", "open")
    expect(demo.page.locator("#messages li.system", has_text=f"You joined #{channel}.")).to_have_count(1)
    return demo, link


def _publish_from_python(ws_url: str, channel: str, texts: list[str]) -> None:
    """Publish each text in order from one WebSocket connection, waiting for each ack."""
    from websockets.sync.client import connect

    with connect(ws_url) as ws:
        ws.send(json.dumps({"action": "subscribe", "channel": channel, "id": "s"}))
        assert json.loads(ws.recv(timeout=30))["type"] == "subscribed"
        for n, text in enumerate(texts):
            ws.send(
                json.dumps(
                    {
                        "action": "publish",
                        "channel": channel,
                        "data": {"name": "py", "text": text},
                        "id": f"p{n}",
                    }
                )
            )
            reply = json.loads(ws.recv(timeout=30))
            assert reply["type"] == "ack", reply


def _expect_offline(demo: DemoPage) -> None:
    from playwright.sync_api import expect

    expect(demo.page.locator("body")).to_have_attribute("data-state", "reconnecting")


def test_a_page_offline_for_a_while_recovers_every_missed_message_in_order(
    open_demo: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN a reader and a writer in one channel, the reader having seen the first message
    from playwright.sync_api import expect

    channel = _channel()
    reader, link = _open_reader(open_demo, lambdacast.ws_url, channel)
    writer = open_demo(ws=lambdacast.ws_url, channel=channel, name="writer")
    expect(writer.page.locator("body")).to_have_attribute("data-state", "open")
    expect(writer.page.locator("#messages li.system", has_text=f"You joined #{channel}.")).to_have_count(1)
    writer.send("before the outage")
    expect(reader.page.locator("#messages li.message .text")).to_have_text(["before the outage"])

    # WHEN the reader loses its network, has a reconnect refused, and misses six messages meanwhile
    link.cut()
    _expect_offline(reader)
    # (attempt N >= 2 means an attempt through the link was refused; the text moves on with each retry)
    expect(reader.page.locator("#status-detail")).to_contain_text(re.compile(r"\(attempt ([2-9]|\d\d+)\)"))
    missed = [f"missed #{n}" for n in range(1, 7)]
    for text in missed:
        writer.send(text)
    expect(writer.page.locator("#messages li.message .text")).to_have_text(["before the outage", *missed])
    refused = link.handshakes
    assert reader.message_texts() == ["before the outage"]

    # THEN once the network is back, the reader shows every missed message, in order, exactly once
    link.restore()
    expect(reader.page.locator("body")).to_have_attribute("data-state", "open")
    expect(reader.page.locator("#messages li.message .text")).to_have_text(["before the outage", *missed])
    # AND nothing was reported lost, and new messages keep coming after the recovered ones
    writer.send("after the outage")
    expect(reader.page.locator("#messages li.message .text")).to_have_text(
        ["before the outage", *missed, "after the outage"]
    )
    assert reader.page.locator("#messages li.system.warn", has_text="could not be shown").count() == 0
    assert link.handshakes > refused  # it did reconnect through the link


def test_an_outage_longer_than_the_replay_window_is_filled_from_history(
    open_demo: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN a reader in a channel
    from playwright.sync_api import expect

    channel = _channel()
    reader, link = _open_reader(open_demo, lambdacast.ws_url, channel)

    # WHEN it is offline while 130 messages are published (more than the server replays: 100)
    link.cut()
    _expect_offline(reader)
    missed = [f"missed #{n:03d}" for n in range(1, 131)]
    # Several publishers, each within the per-connection burst (20), one after another to keep the order
    for start in range(0, len(missed), 19):
        _publish_from_python(lambdacast.ws_url, channel, missed[start : start + 19])
    assert reader.message_texts() == []

    # THEN after reconnecting it shows all 130 in order, exactly once (no replay that long: history filled it)
    link.restore()
    expect(reader.page.locator("body")).to_have_attribute("data-state", "open")
    expect(reader.page.locator("#messages li.message .text")).to_have_text(missed)
    assert reader.page.locator("#messages li.system.warn", has_text="could not be shown").count() == 0
