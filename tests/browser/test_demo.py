"""The demo page and lambdacast.js in Chromium, against the real backend under ``lambdacast local``."""

from __future__ import annotations

import socket
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from demo_page import DemoPage

pytestmark = pytest.mark.browser


def _channel() -> str:
    return f"room-{uuid.uuid4().hex[:10]}"


def _open_joined(open_demo: Callable[..., DemoPage], ws: str, channel: str, name: str) -> DemoPage:
    """A tab on the demo whose subscription the server has confirmed."""
    from playwright.sync_api import expect

    demo = open_demo(ws=ws, channel=channel, name=name)
    expect(demo.page.locator("body")).to_have_attribute("data-state", "open")
    expect(demo.page.locator("#messages li.system").first).to_have_text(f"You joined #{channel}.")
    return demo


def _expect_texts(demo: DemoPage, texts: list[str]) -> None:
    from playwright.sync_api import expect

    expect(demo.page.locator("#messages li.message .text")).to_have_text(texts)


def test_two_pages_in_one_channel_exchange_messages_both_ways(
    open_demo: Callable[..., DemoPage], lambdacast: Any, artifacts_dir: Path
) -> None:
    # GIVEN two tabs subscribed to the same channel
    channel = _channel()
    alice = _open_joined(open_demo, lambdacast.ws_url, channel, "Alice")
    bob = _open_joined(open_demo, lambdacast.ws_url, channel, "Bob")

    # WHEN Alice writes, then Bob answers, then Alice again
    alice.send("Hi Bob! Is the serverless backend up?")
    _expect_texts(bob, ["Hi Bob! Is the serverless backend up?"])
    bob.send("Up and fanning out. Try killing my socket.")
    _expect_texts(
        alice, ["Hi Bob! Is the serverless backend up?", "Up and fanning out. Try killing my socket."]
    )
    alice.send("Messages arrive in seq order, without duplicates.")

    # THEN both tabs show the whole conversation, in the same order, from senders the server names
    # (anonymous here: no one signed in, and the name typed in the box is not an identity)
    conversation = [
        "Hi Bob! Is the serverless backend up?",
        "Up and fanning out. Try killing my socket.",
        "Messages arrive in seq order, without duplicates.",
    ]
    _expect_texts(alice, conversation)
    _expect_texts(bob, conversation)
    assert alice.page.locator("#messages li.message .author").all_inner_texts() == ["anonymous"] * 3
    # AND each tab marks its own messages as its own
    assert alice.page.locator("#messages li.message.mine").count() == 2
    assert bob.page.locator("#messages li.message.mine").count() == 1

    # AND a screenshot of the demo is kept as a test artifact
    shot = artifacts_dir / "demo-chat.png"
    alice.page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000


def test_user_content_is_shown_as_text_never_as_html(
    open_demo: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN two tabs in one channel
    channel = _channel()
    sender = _open_joined(open_demo, lambdacast.ws_url, channel, "<b>mallory</b>")
    reader = _open_joined(open_demo, lambdacast.ws_url, channel, "reader")

    # WHEN a message carries HTML that would run script if injected
    payload = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    sender.send(payload)

    # THEN the reader sees the literal text, no element was created, and nothing ran
    _expect_texts(reader, [payload])
    assert reader.page.locator("#messages img, #messages script, #messages b").count() == 0
    assert reader.page.locator("#messages li.message .author").inner_text() == "anonymous"
    assert reader.page.evaluate("window.__pwned === undefined")


def test_a_page_keeps_receiving_after_the_server_force_closes_its_socket(
    open_demo: Callable[..., DemoPage], lambdacast: Any, artifacts_dir: Path
) -> None:
    # GIVEN a reader and a writer in one channel, and the reader's connection id
    from playwright.sync_api import expect

    channel = _channel()
    reader = _open_joined(open_demo, lambdacast.ws_url, channel, "reader")
    writer = _open_joined(open_demo, lambdacast.ws_url, channel, "writer")
    writer.send("before the cut")
    _expect_texts(reader, ["before the cut"])
    old_id = reader.connection_id()

    # WHEN the backend deletes the reader's connection through the @connections API
    request = urllib.request.Request(
        f"{lambdacast.management_url}/@connections/{quote(old_id, safe='=')}", method="DELETE"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204

    # THEN the reader notices, reconnects with a new connection and resubscribes
    expect(reader.page.locator("#messages li.system.warn")).to_have_text(["Connection lost; reconnecting…"])
    expect(reader.page.locator("#messages li.system", has_text="Back online")).to_have_count(1)
    expect(reader.page.locator("body")).to_have_attribute("data-state", "open")
    assert reader.connection_id() not in (old_id, "—")

    # AND nothing published after the reconnect is missed, and it arrives in order
    after = [f"after the cut #{n}" for n in range(1, 6)]
    for text in after:
        writer.send(text)
    _expect_texts(reader, ["before the cut", *after])
    _expect_texts(writer, ["before the cut", *after])
    reader.page.screenshot(path=str(artifacts_dir / "demo-reconnected.png"))


def test_an_oversized_publish_shows_the_servers_too_large_error(
    open_demo: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN a tab in a channel (the template's MaxDataBytes is 30720)
    from playwright.sync_api import expect

    demo = _open_joined(open_demo, lambdacast.ws_url, _channel(), "big")

    # WHEN it sends a 31,000-character message: data over MaxDataBytes, the frame under API Gateway's 32 KB
    demo.send("x" * 31_000)

    # THEN the page shows the SERVER's too_large error and the message is not in the channel
    error = demo.page.locator("#send-error")
    expect(error).to_have_attribute("data-code", "too_large")
    expect(error).to_contain_text("the limit is 30720 bytes")
    assert demo.message_texts() == []
    # AND the connection is still usable
    demo.send("small enough")
    _expect_texts(demo, ["small enough"])


def test_a_publish_over_the_32_kb_frame_quota_is_refused_by_the_client_and_the_socket_stays_open(
    open_demo: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN a tab in a channel, and what the server has been asked by its connection so far
    from playwright.sync_api import expect

    demo = _open_joined(open_demo, lambdacast.ws_url, _channel(), "huge")
    connection_id = demo.connection_id()
    before = [i for i in lambdacast.invocations if i.connection_id == connection_id]

    # WHEN it sends a 40,000-character message (one frame over 32 KB: API Gateway would close with 1009)
    demo.send("x" * 40_000)

    # THEN the client refuses it itself: too_large naming the frame limit, nothing reached the server
    error = demo.page.locator("#send-error")
    expect(error).to_have_attribute("data-code", "too_large")
    expect(error).to_contain_text("frame limit is 32768")
    after = [i for i in lambdacast.invocations if i.connection_id == connection_id]
    assert after == before
    # AND the same socket is still open and usable
    demo.send("still here")
    _expect_texts(demo, ["still here"])
    assert demo.connection_id() == connection_id


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_wrong_url_ends_in_a_clear_error_state(
    open_demo: Callable[..., DemoPage], artifacts_dir: Path
) -> None:
    # GIVEN a URL where nothing listens, and the demo allowed two attempts
    from playwright.sync_api import expect

    url = f"ws://127.0.0.1:{_closed_port()}/dev"

    # WHEN the demo tries to connect
    demo = open_demo(ws=url, attempts="2")

    # THEN it stops in the closed state and says why, instead of hanging
    expect(demo.page.locator("body")).to_have_attribute("data-state", "closed")
    expect(demo.page.locator("#state-badge")).to_have_text("offline")
    expect(demo.page.locator("#status-detail")).to_contain_text(
        f"gave up after 2 failed attempts to connect to {url}"
    )
    expect(demo.page.locator("#send")).to_be_disabled()
    demo.page.screenshot(path=str(artifacts_dir / "demo-wrong-url.png"))


def test_messages_sent_while_reconnecting_go_out_after_the_resubscribe(
    open_demo: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN a reader, and a writer whose sockets pass through a switch the test controls
    from playwright.sync_api import expect

    channel = _channel()
    reader = _open_joined(open_demo, lambdacast.ws_url, channel, "reader")
    link: dict[str, Any] = {"refuse": False, "sockets": []}

    def route(ws: Any) -> None:
        if link["refuse"]:
            ws.close(code=1011, reason="test: network down")
            return
        link["sockets"].append((ws, ws.connect_to_server()))

    writer = open_demo()  # a blank tab first, so the route is in place before the demo connects
    writer.page.route_web_socket(lambda url: url.startswith(lambdacast.ws_url), route)
    writer.page.goto(reader.page.url.replace("name=reader", "name=writer"))
    expect(writer.page.locator("body")).to_have_attribute("data-state", "open")
    expect(writer.page.locator("#messages li.system").first).to_have_text(f"You joined #{channel}.")

    # WHEN the writer's network goes down, and it sends while reconnecting
    link["refuse"] = True
    page_side, server_side = link["sockets"][-1]
    page_side.close(code=1006)
    server_side.close()
    expect(writer.page.locator("body")).to_have_attribute("data-state", "reconnecting")
    queued = [f"queued while offline #{n}" for n in range(1, 4)]
    for text in queued:
        writer.send(text)
    assert reader.message_texts() == []

    # THEN, once the network is back, the writer resubscribes and its queued messages arrive in order
    link["refuse"] = False
    expect(writer.page.locator("body")).to_have_attribute("data-state", "open")
    _expect_texts(reader, queued)
    _expect_texts(writer, queued)
    expect(writer.page.locator("#send-error")).to_have_text("")


def test_joining_a_channel_shows_its_earlier_messages_in_order(
    open_demo: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN a channel where a first tab already wrote three messages
    channel = _channel()
    first = _open_joined(open_demo, lambdacast.ws_url, channel, "first")
    earlier = ["one", "two", "three"]
    for text in earlier:
        first.send(text)
    _expect_texts(first, earlier)

    # WHEN a second tab joins the channel
    late = _open_joined(open_demo, lambdacast.ws_url, channel, "late")

    # THEN it shows the earlier messages from the history, in order, then new ones live, each once
    _expect_texts(late, earlier)
    first.send("four")
    _expect_texts(late, [*earlier, "four"])


def test_sign_in_explains_it_is_local_only_when_the_emulator_mints_no_dev_tokens(
    open_demo: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN the demo against an emulator started without dev tokens, on a public channel
    from playwright.sync_api import expect

    demo = _open_joined(open_demo, lambdacast.ws_url, _channel(), "Ada")
    expect(demo.page.locator("#auth-status")).to_contain_text("Not signed in")

    # WHEN the user tries to sign in
    demo.page.click("#sign-in")

    # THEN the page says sign-in is local-only and stays anonymous and connected
    expect(demo.page.locator("#auth-error")).to_contain_text("Sign-in here is local-only")
    expect(demo.page.locator("#auth-status")).to_have_attribute("data-signed-in", "false")
    expect(demo.page.locator("#user-id")).to_have_text("anonymous")
    expect(demo.page.locator("body")).to_have_attribute("data-state", "open")


def test_an_anonymous_page_is_refused_a_private_channel_with_forbidden(
    open_demo: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN the demo, not signed in
    from playwright.sync_api import expect

    channel = f"private-{uuid.uuid4().hex[:10]}"

    # WHEN it opens a private- channel
    demo = open_demo(ws=lambdacast.ws_url, channel=channel, name="anon")

    # THEN it says the channel needs sign-in, and shows the server's forbidden refusal
    expect(demo.page.locator("#messages li.system.warn")).to_contain_text("need sign-in")
    refusal = demo.page.locator("#messages li.system.error")
    expect(refusal).to_contain_text(f"Could not join #{channel}: forbidden")
    # AND the connection itself stays open for public channels
    expect(demo.page.locator("body")).to_have_attribute("data-state", "open")
    assert demo.page.locator("#members").is_hidden()


def _record_sockets(page: Any, hosts: list[str], refused: list[str]) -> None:
    """Route every WebSocket of ``page``: ones to ``hosts`` are recorded and held (nothing leaves the
    machine), the rest go to the server as usual."""

    def route(ws: Any) -> None:
        if any(host in ws.url for host in hosts):
            refused.append(ws.url)  # never connected to a server: the test only learns the page tried
        else:
            ws.connect_to_server()

    page.route_web_socket(lambda url: True, route)


def test_a_link_with_a_foreign_ws_is_ignored(open_demo: Callable[..., DemoPage], lambdacast: Any) -> None:
    # GIVEN the attack: a link to the demo that points it at someone else's server
    from playwright.sync_api import expect

    attempted: list[str] = []
    evil = "wss://evil.example/prod"

    def before(page: Any) -> None:
        _record_sockets(page, ["evil.example"], attempted)
        page.route(  # the site's config.json names this stack (here: the local emulator)
            "**/config.json",
            lambda route: route.fulfill(json={"webSocketUrl": lambdacast.ws_url}),
        )

    # WHEN the page is opened with ?ws=wss://evil.example
    demo = open_demo(before=before, ws=evil, channel=_channel())

    # THEN it says it ignored the link and connects to the configured server instead, never to evil.example
    expect(demo.page.locator("#endpoint-warning")).to_contain_text(f"Ignored ?ws={evil}")
    expect(demo.page.locator("#endpoint")).to_have_text(lambdacast.ws_url)
    expect(demo.page.locator("body")).to_have_attribute("data-state", "open")
    assert attempted == []


def test_a_link_with_the_configured_ws_is_followed(open_demo: Callable[..., DemoPage]) -> None:
    # GIVEN a site whose config.json names its deployed stack, and a link naming that same stack
    from playwright.sync_api import expect

    stack = "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    attempted: list[str] = []

    def before(page: Any) -> None:
        _record_sockets(page, ["execute-api"], attempted)
        page.route("**/config.json", lambda route: route.fulfill(json={"webSocketUrl": stack}))

    # WHEN the page is opened with ?ws=<that stack>
    demo = open_demo(before=before, ws=stack, attempts="1")

    # THEN the page uses it and opens its socket there (held by the test: nothing leaves the machine)
    expect(demo.page.locator("#endpoint")).to_have_text(stack)
    expect(demo.page.locator("#endpoint-warning")).to_have_text("")
    for _ in range(200):  # bounded wait for the page's connection attempt, in small steps
        if attempted:
            break
        demo.page.wait_for_timeout(50)
    assert attempted[:1] == [stack]
