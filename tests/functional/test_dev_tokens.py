"""The local-only token minter (``lambdacast local --dev-tokens``) against the project's real authorizer."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
import websockets

from lambdacast_local.testing import RunningEmulator

SECRET_PARAMETER = "/lambdacast/local/auth-secret"


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {
        "parameter_overrides": {"AuthMode": "optional", "AuthSecretParameterName": SECRET_PARAMETER},
        "dev_token_parameter": SECRET_PARAMETER,
    }


def _http_base(emulator: RunningEmulator) -> str:
    return emulator.ws_url.replace("ws://", "http://").rsplit("/", 1)[0]


async def _mint(emulator: RunningEmulator, body: Any) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{_http_base(emulator)}/_lambdacast/dev-token", data=json.dumps(body)) as response,
    ):
        return response.status, await response.json()


async def _hello(url: str) -> dict[str, Any]:
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"action": "hello", "id": "h"}))
        return dict(json.loads(await ws.recv()))


async def test_a_minted_token_signs_the_connection_in_as_that_user(lambdacast: RunningEmulator) -> None:
    # GIVEN a token minted for the display name "Ada"
    status, minted = await _mint(lambdacast, {"name": "Ada"})
    assert status == 200
    # WHEN a socket connects with it and says hello
    welcome = await _hello(f"{lambdacast.ws_url}?token={minted['token']}")
    # THEN the real authorizer accepted it and the backend reports that user
    assert welcome["type"] == "welcome"
    assert welcome["userId"] == minted["userId"]


async def test_one_display_name_is_one_user(lambdacast: RunningEmulator) -> None:
    # GIVEN two tokens minted for the same display name (two tabs)
    _, first = await _mint(lambdacast, {"name": "Grace"})
    _, second = await _mint(lambdacast, {"name": "Grace"})
    # THEN they name the same user, so presence counts one member
    assert first["userId"] == second["userId"]


async def test_a_token_signed_with_another_secret_is_refused(lambdacast: RunningEmulator) -> None:
    # GIVEN a well-formed token that was not signed with the emulator's secret
    import jwt

    forged = jwt.encode({"sub": "mallory", "exp": 4102444800}, "x" * 48, algorithm="HS256")
    # WHEN a socket connects with it
    # THEN the handshake is refused (the authorizer denies: 403)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await _hello(f"{lambdacast.ws_url}?token={forged}")
    assert refused.value.response.status_code == 403


async def test_a_bad_request_gets_a_clear_400_and_no_token(lambdacast: RunningEmulator) -> None:
    # WHEN the minter is asked without a display name
    status, answer = await _mint(lambdacast, {"name": ""})
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
