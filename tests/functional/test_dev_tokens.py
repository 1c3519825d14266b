"""The local-only token minter (``lambdacast local --dev-tokens``) against the project's real authorizer.

The emulator serves the demo page (``web_dir``), as ``make dev`` does: the minter answers that page's
origin and no other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from lambdacast_local.testing import RunningEmulator

SECRET_PARAMETER = "/lambdacast/local/auth-secret"
WEB_DIR = Path(__file__).resolve().parents[2] / "web"


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {
        "parameter_overrides": {"AuthMode": "optional", "AuthSecretParameterName": SECRET_PARAMETER},
        "dev_token_parameter": SECRET_PARAMETER,
        "web_dir": WEB_DIR,
    }


def _http_base(emulator: RunningEmulator) -> str:
    return emulator.ws_url.replace("ws://", "http://").rsplit("/", 1)[0]


def _page_origin(emulator: RunningEmulator) -> str:
    assert emulator.web_url is not None
    return emulator.web_url.rstrip("/")


async def _mint(
    emulator: RunningEmulator, body: Any, origin: str | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {"Origin": origin} if origin else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{_http_base(emulator)}/_lambdacast/dev-token", data=json.dumps(body), headers=headers
        ) as response,
    ):
        return response.status, await response.json(), dict(response.headers)


async def _preflight(emulator: RunningEmulator, origin: str) -> tuple[int, dict[str, str]]:
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    async with (
        aiohttp.ClientSession() as session,
        session.options(f"{_http_base(emulator)}/_lambdacast/dev-token", headers=headers) as response,
    ):
        return response.status, dict(response.headers)


async def _hello(url: str) -> dict[str, Any]:
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"action": "hello", "id": "h"}))
        return dict(json.loads(await ws.recv()))


async def test_a_minted_token_signs_the_connection_in_as_that_user(lambdacast: RunningEmulator) -> None:
    # GIVEN a token minted for the display name "Ada"
    status, minted, _ = await _mint(lambdacast, {"name": "Ada"})
    assert status == 200
    # WHEN a socket connects with it and says hello
    welcome = await _hello(f"{lambdacast.ws_url}?token={minted['token']}")
    # THEN the real authorizer accepted it and the backend reports that user
    assert welcome["type"] == "welcome"
    assert welcome["userId"] == minted["userId"]


async def test_one_display_name_is_one_user(lambdacast: RunningEmulator) -> None:
    # GIVEN two tokens minted for the same display name (two tabs)
    _, first, _ = await _mint(lambdacast, {"name": "Grace"})
    _, second, _ = await _mint(lambdacast, {"name": "Grace"})
    # THEN they name the same user, so presence counts one member
    assert first["userId"] == second["userId"]


async def test_a_token_signed_with_another_secret_is_refused(lambdacast: RunningEmulator) -> None:
    # GIVEN a well-formed token that was not signed with the emulator's secret
    import jwt

    forged = jwt.encode(
        {"sub": "mallory", "aud": "lambdacast", "iat": 4102444000, "exp": 4102444800},
        "x" * 48,
        algorithm="HS256",
    )
    # WHEN a socket connects with it
    # THEN the handshake is refused (the authorizer denies: 403)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await _hello(f"{lambdacast.ws_url}?token={forged}")
    assert refused.value.response.status_code == 403


async def test_a_bad_request_gets_a_clear_400_and_no_token(lambdacast: RunningEmulator) -> None:
    # WHEN the minter is asked without a display name
    status, answer, _ = await _mint(lambdacast, {"name": ""})
    # THEN it answers 400 with a sentence saying what is needed
    assert status == 400
    assert "name" in answer["message"]
    assert "token" not in answer


async def test_anonymous_connections_still_work_in_optional_mode(lambdacast: RunningEmulator) -> None:
    # WHEN a socket connects without a token
    welcome = await _hello(lambdacast.ws_url)
    # THEN it is welcomed as anonymous
    assert welcome["type"] == "welcome"
    assert welcome["userId"] is None


async def test_a_foreign_origin_gets_403_and_no_token(lambdacast: RunningEmulator) -> None:
    # GIVEN the attack: a page on another site the developer visits posts to the local minter
    # WHEN it asks for a token
    status, answer, headers = await _mint(lambdacast, {"name": "Ada"}, origin="https://evil.example")
    # THEN it is refused, with no token and no CORS header (the page cannot even read the refusal)
    assert status == 403
    assert "token" not in answer
    assert "Access-Control-Allow-Origin" not in headers


async def test_a_foreign_origins_preflight_is_refused(lambdacast: RunningEmulator) -> None:
    # WHEN a foreign page's browser asks whether it may POST
    status, headers = await _preflight(lambdacast, "https://evil.example")
    # THEN the answer is no
    assert status == 403
    assert "Access-Control-Allow-Origin" not in headers


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_the_served_page_gets_its_own_origin_never_a_wildcard(
    lambdacast: RunningEmulator, host: str
) -> None:
    # GIVEN the page the emulator serves (by either loopback name)
    origin = _page_origin(lambdacast).replace("127.0.0.1", host)
    # WHEN its browser preflights and posts
    preflight, allowed = await _preflight(lambdacast, origin)
    status, minted, headers = await _mint(lambdacast, {"name": "Ada"}, origin=origin)
    # THEN both are answered for that origin by name, never "*"
    assert (preflight, status) == (204, 200)
    assert allowed["Access-Control-Allow-Origin"] == headers["Access-Control-Allow-Origin"] == origin
    assert minted["token"]


async def test_a_chosen_user_id_is_ignored(lambdacast: RunningEmulator) -> None:
    # GIVEN a request naming another user's id (without --dev-tokens-any-user)
    status, minted, _ = await _mint(lambdacast, {"name": "Mallory", "userId": "user-42"})
    # WHEN the token signs a socket in
    welcome = await _hello(f"{lambdacast.ws_url}?token={minted['token']}")
    # THEN the connection is Mallory's own derived user, not user-42
    assert status == 200
    assert welcome["userId"] == minted["userId"] != "user-42"


async def test_the_token_opens_presence_channels_but_not_private_ones(lambdacast: RunningEmulator) -> None:
    # GIVEN a token from the default minter (what the demo needs: presence- rooms)
    _, minted, _ = await _mint(lambdacast, {"name": "Ada"})
    assert minted["channels"] == ["presence-*"]
    # WHEN its socket subscribes to a presence- and a private- channel
    async with websockets.connect(f"{lambdacast.ws_url}?token={minted['token']}") as ws:
        replies = []
        for channel in ("presence-room", "private-room"):
            await ws.send(json.dumps({"action": "subscribe", "channel": channel, "id": channel}))
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("id") == channel:
                    replies.append(frame)
                    break
    # THEN the presence room is open and the private one is forbidden
    assert replies[0]["type"] == "subscribed"
    assert (replies[1]["type"], replies[1]["code"]) == ("error", "forbidden")
