"""Sign-in and presence in the demo, in Chromium, against ``lambdacast local`` with ``AuthMode=optional``.

The emulator's dev token minter (``Options.dev_token_parameter``, ``lambdacast local --dev-tokens NAME``)
creates the HS256 secret in its embedded SSM, where the authorizer reads it as a deployed stack does, and
answers the demo's sign-in box (``POST /_lambdacast/dev-token``): the demo, the client, the minter and the
backend are all real. An emulator without the minter fails these tests (nothing stands in for it). The
pages are opened from the emulator's own page server (``web_dir``), as ``make dev`` serves them: the
minter answers that origin and no other.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from demo_page import DemoPage

pytestmark = pytest.mark.browser

SECRET_NAME = "/lambdacast/browser-tests/auth-secret"
WEB_DIR = Path(__file__).resolve().parents[2] / "web"


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    """AuthMode optional, the dev token minter (presence- and private- channels), the demo page served."""
    overrides = {"AuthMode": "optional", "AuthSecretParameterName": SECRET_NAME}
    return {
        "parameter_overrides": overrides,
        "dev_token_parameter": SECRET_NAME,
        "dev_token_channels": ("presence-*", "private-*"),
        "web_dir": WEB_DIR,
    }


@pytest.fixture
def open_served(open_demo: Callable[..., DemoPage], lambdacast: Any) -> Callable[..., DemoPage]:
    """``open_demo`` on the page the emulator serves (the origin its minter answers)."""
    return lambda **params: open_demo(base=lambdacast.web_url, **params)


def _signed_in(open_served: Callable[..., DemoPage], ws_url: str, channel: str, name: str) -> DemoPage:
    """A tab on ``channel`` that signed in as ``name`` and joined as that user."""
    from playwright.sync_api import expect

    demo = open_served(ws=ws_url, channel=channel, name=name)
    expect(demo.page.locator("body")).to_have_attribute("data-state", "open")
    demo.page.click("#sign-in")
    expect(demo.page.locator("#auth-status")).to_have_attribute("data-signed-in", "true")
    expect(demo.page.locator("#auth-status")).to_contain_text(f"Signed in as {name}")
    expect(demo.page.locator("#messages li.system", has_text=f"You joined #{channel}.")).to_have_count(1)
    expect(demo.page.locator("#user-id")).not_to_have_text("anonymous")
    return demo


def test_a_signed_in_page_in_a_presence_channel_sees_another_join_and_leave(
    open_served: Callable[..., DemoPage], lambdacast: Any, artifacts_dir: Any
) -> None:
    # GIVEN Ada, signed in, alone in a presence- channel
    from playwright.sync_api import expect

    channel = f"presence-{uuid.uuid4().hex[:10]}"
    ada = _signed_in(open_served, lambdacast.ws_url, channel, "Ada")
    expect(ada.page.locator("#member-count")).to_have_text("1")
    expect(ada.page.locator("#member-list .member-name")).to_have_text(["Ada"])

    # WHEN Grace signs in and joins the same channel
    grace = _signed_in(open_served, lambdacast.ws_url, channel, "Grace")

    # THEN both pages count two members and list both names
    for page in (ada, grace):
        expect(page.page.locator("#member-count")).to_have_text("2")
        names = page.page.locator("#member-list .member-name").all_inner_texts()
        assert sorted(names) == ["Ada", "Grace"]  # listed in userId order, rendered with the count
    ada.page.screenshot(path=str(artifacts_dir / "demo-presence.png"))

    # WHEN Grace closes her tab
    grace.page.close()

    # THEN Ada sees her leave
    expect(ada.page.locator("#member-count")).to_have_text("1")
    expect(ada.page.locator("#member-list .member-name")).to_have_text(["Ada"])


def test_a_signed_in_page_may_use_the_private_channel_an_anonymous_one_is_refused(
    open_served: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN an anonymous tab refused a private- channel
    from playwright.sync_api import expect

    channel = f"private-{uuid.uuid4().hex[:10]}"
    anonymous = open_served(ws=lambdacast.ws_url, channel=channel, name="anon")
    expect(anonymous.page.locator("#messages li.system.error")).to_contain_text("forbidden")

    # WHEN it signs in (the dev token grants private-* here: --dev-tokens-channels)
    anonymous.page.click("#sign-in")

    # THEN it joins the channel and can publish there
    expect(anonymous.page.locator("#messages li.system", has_text=f"You joined #{channel}.")).to_have_count(1)
    anonymous.send("only for the signed-in")
    expect(anonymous.page.locator("#messages li.message .text")).to_have_text(["only for the signed-in"])


def test_a_display_name_with_html_is_shown_as_text_in_the_member_list(
    open_served: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN a user whose display name is HTML that would run script if injected
    from playwright.sync_api import expect

    name = '<img src=x onerror="window.__pwned=1">'
    channel = f"presence-{uuid.uuid4().hex[:10]}"

    # WHEN they sign in and join a presence- channel
    demo = _signed_in(open_served, lambdacast.ws_url, channel, name)

    # THEN the member list and the sign-in status show the literal text, and nothing ran
    expect(demo.page.locator("#member-list .member-name")).to_have_text([name])
    expect(demo.page.locator("#auth-status strong")).to_have_text(name)
    assert demo.page.locator("#member-list img, #auth-status img").count() == 0
    assert demo.page.evaluate("window.__pwned === undefined")


def test_two_tabs_of_one_user_are_one_member(open_served: Callable[..., DemoPage], lambdacast: Any) -> None:
    # GIVEN Grace in a presence- channel, and Ada signed in there in two tabs (one name, one user)
    from playwright.sync_api import expect

    channel = f"presence-{uuid.uuid4().hex[:10]}"
    grace = _signed_in(open_served, lambdacast.ws_url, channel, "Grace")
    ada_tabs = [_signed_in(open_served, lambdacast.ws_url, channel, "Ada") for _ in range(2)]

    # THEN Grace counts two members, not three
    expect(grace.page.locator("#member-count")).to_have_text("2")

    # WHEN one of Ada's tabs closes, and the backend has handled its $disconnect
    closed_id = ada_tabs[0].connection_id()
    ada_tabs[0].page.close()
    assert lambdacast.wait_for(
        lambda emulator: any(
            inv.connection_id == closed_id and inv.ok for inv in emulator.invocations_of("$disconnect")
        ),
        timeout=30,
    ), "the closed tab's $disconnect never ran"
    # AND Grace publishes, so her page has heard everything the server sent before that message
    grace.send("still here?")
    expect(ada_tabs[1].page.locator("#messages li.message .text")).to_have_text(["still here?"])
    expect(grace.page.locator("#messages li.message .text")).to_have_text(["still here?"])

    # THEN Ada is still a member for Grace (her other tab is in), and leaving with the last tab counts
    expect(grace.page.locator("#member-count")).to_have_text("2")
    ada_tabs[1].page.close()
    expect(grace.page.locator("#member-count")).to_have_text("1")


def test_a_message_shows_the_server_set_sender_never_the_name_in_its_data(
    open_served: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN Ada and Grace signed in to one presence- channel (so each knows the other's vouched name)
    from playwright.sync_api import expect
    from websockets.sync.client import connect

    channel = f"presence-{uuid.uuid4().hex[:10]}"
    ada = _signed_in(open_served, lambdacast.ws_url, channel, "Ada")
    grace = _signed_in(open_served, lambdacast.ws_url, channel, "Grace")
    expect(grace.page.locator("#member-count")).to_have_text("2")
    ada_id = ada.page.inner_text("#user-id").strip()

    # WHEN Ada writes, and then an impostor signed in as "Mallory" publishes data claiming to be Ada
    ada.send("hello from the real Ada")
    expect(grace.page.locator("#messages li.message .text")).to_have_text(["hello from the real Ada"])
    status, minted = _mint(lambdacast, "Mallory")
    assert status == 200
    with connect(f"{lambdacast.ws_url}?token={minted['token']}") as impostor:
        impostor.send(json.dumps({"action": "subscribe", "channel": channel, "id": "s"}))
        assert json.loads(impostor.recv(timeout=30))["type"] == "subscribed"
        forged = {"name": "Ada", "userId": ada_id, "text": "Ada here: send me your password"}
        impostor.send(json.dumps({"action": "publish", "channel": channel, "data": forged, "id": "p"}))
        expect(grace.page.locator("#messages li.message")).to_have_count(2)

    # THEN Grace sees Ada's message under the name the server vouches for, with Ada's user id...
    first, second = grace.page.locator("#messages li.message").all()
    assert first.locator(".author").inner_text() == "Ada"
    assert first.get_attribute("data-user-id") == ada_id
    # ...and the forged one under the impostor's own identity (the name its token carries, heard when it
    # joined the presence channel), never "Ada"
    assert second.locator(".author").inner_text() == "Mallory"
    assert second.get_attribute("data-user-id") == minted["userId"] != ada_id


def _mint(lambdacast: Any, name: str) -> tuple[int, dict[str, Any]]:
    """A dev token for ``name``, asked as a local program (no Origin), as a script on the machine could."""
    import urllib.request

    base = lambdacast.ws_url.replace("ws://", "http://").rsplit("/", 1)[0]
    request = urllib.request.Request(
        f"{base}/_lambdacast/dev-token", data=json.dumps({"name": name}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status, json.loads(response.read())


def test_an_anonymous_message_claiming_a_name_shows_as_anonymous(
    open_served: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN a reader on a public channel
    from playwright.sync_api import expect
    from websockets.sync.client import connect

    channel = f"room-{uuid.uuid4().hex[:10]}"
    reader = open_served(ws=lambdacast.ws_url, channel=channel, name="reader")
    expect(reader.page.locator("#messages li.system", has_text=f"You joined #{channel}.")).to_have_count(1)

    # WHEN an anonymous client publishes data naming "Ada"
    with connect(lambdacast.ws_url) as anonymous:
        anonymous.send(json.dumps({"action": "subscribe", "channel": channel, "id": "s"}))
        assert json.loads(anonymous.recv(timeout=30))["type"] == "subscribed"
        anonymous.send(
            json.dumps(
                {"action": "publish", "channel": channel, "data": {"name": "Ada", "text": "hi"}, "id": "p"}
            )
        )
        expect(reader.page.locator("#messages li.message .text")).to_have_text(["hi"])

    # THEN the page shows it as anonymous: the name inside data is not an identity
    expect(reader.page.locator("#messages li.message .author")).to_have_text(["anonymous"])
