"""Sign-in and presence in the demo, in Chromium, against ``lambdacast local`` with ``AuthMode=optional``.

The emulator's dev token minter (``Options.dev_token_parameter``, ``lambdacast local --dev-tokens NAME``)
creates the HS256 secret in its embedded SSM, where the authorizer reads it as a deployed stack does, and
answers the demo's sign-in box (``POST /_lambdacast/dev-token``): the demo, the client, the minter and the
backend are all real. An emulator without the minter fails these tests (nothing stands in for it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from demo_page import DemoPage

pytestmark = pytest.mark.browser

SECRET_NAME = "/lambdacast/browser-tests/auth-secret"


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    """AuthMode optional, and the emulator's dev token minter holding the HS256 secret in its embedded SSM."""
    overrides = {"AuthMode": "optional", "AuthSecretParameterName": SECRET_NAME}
    return {"parameter_overrides": overrides, "dev_token_parameter": SECRET_NAME}


def _signed_in(open_demo: Callable[..., DemoPage], ws_url: str, channel: str, name: str) -> DemoPage:
    """A tab on ``channel`` that signed in as ``name`` and joined as that user."""
    from playwright.sync_api import expect

    demo = open_demo(ws=ws_url, channel=channel, name=name)
    expect(demo.page.locator("body")).to_have_attribute("data-state", "open")
    demo.page.click("#sign-in")
    expect(demo.page.locator("#auth-status")).to_have_attribute("data-signed-in", "true")
    expect(demo.page.locator("#auth-status")).to_contain_text(f"Signed in as {name}")
    expect(demo.page.locator("#messages li.system", has_text=f"You joined #{channel}.")).to_have_count(1)
    expect(demo.page.locator("#user-id")).not_to_have_text("anonymous")
    return demo


def test_a_signed_in_page_in_a_presence_channel_sees_another_join_and_leave(
    open_demo: Callable[..., DemoPage], lambdacast: Any, artifacts_dir: Any
) -> None:
    # GIVEN Ada, signed in, alone in a presence- channel
    from playwright.sync_api import expect

    channel = f"presence-{uuid.uuid4().hex[:10]}"
    ada = _signed_in(open_demo, lambdacast.ws_url, channel, "Ada")
    expect(ada.page.locator("#member-count")).to_have_text("1")
    expect(ada.page.locator("#member-list .member-name")).to_have_text(["Ada"])

    # WHEN Grace signs in and joins the same channel
    grace = _signed_in(open_demo, lambdacast.ws_url, channel, "Grace")

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
    open_demo: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN an anonymous tab refused a private- channel
    from playwright.sync_api import expect

    channel = f"private-{uuid.uuid4().hex[:10]}"
    anonymous = open_demo(ws=lambdacast.ws_url, channel=channel, name="anon")
    expect(anonymous.page.locator("#messages li.system.error")).to_contain_text("forbidden")

    # WHEN it signs in (the dev token grants every channel)
    anonymous.page.click("#sign-in")

    # THEN it joins the channel and can publish there
    expect(anonymous.page.locator("#messages li.system", has_text=f"You joined #{channel}.")).to_have_count(1)
    anonymous.send("only for the signed-in")
    expect(anonymous.page.locator("#messages li.message .text")).to_have_text(["only for the signed-in"])


def test_a_display_name_with_html_is_shown_as_text_in_the_member_list(
    open_demo: Callable[..., DemoPage], lambdacast: Any
) -> None:
    # GIVEN a user whose display name is HTML that would run script if injected
    from playwright.sync_api import expect

    name = '<img src=x onerror="window.__pwned=1">'
    channel = f"presence-{uuid.uuid4().hex[:10]}"

    # WHEN they sign in and join a presence- channel
    demo = _signed_in(open_demo, lambdacast.ws_url, channel, name)

    # THEN the member list and the sign-in status show the literal text, and nothing ran
    expect(demo.page.locator("#member-list .member-name")).to_have_text([name])
    expect(demo.page.locator("#auth-status strong")).to_have_text(name)
    assert demo.page.locator("#member-list img, #auth-status img").count() == 0
    assert demo.page.evaluate("window.__pwned === undefined")


def test_two_tabs_of_one_user_are_one_member(open_demo: Callable[..., DemoPage], lambdacast: Any) -> None:
    # GIVEN Grace in a presence- channel, and Ada signed in there in two tabs (one name, one user)
    from playwright.sync_api import expect

    channel = f"presence-{uuid.uuid4().hex[:10]}"
    grace = _signed_in(open_demo, lambdacast.ws_url, channel, "Grace")
    ada_tabs = [_signed_in(open_demo, lambdacast.ws_url, channel, "Ada") for _ in range(2)]

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
