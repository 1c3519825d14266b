"""``AllowedOrigins`` through the project's real authorizer under ``lambdacast local``.

A handshake from another site's page is refused with 403 before ``$connect`` runs: it costs one
authorizer invocation and nothing else (no ``$connect`` invocation, no DynamoDB write).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import websockets

from lambdacast_local.testing import RunningEmulator

SITE = "https://chat.example.com"


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    # AuthMode none: the origin is checked in every mode, before any token.
    return {"parameter_overrides": {"AllowedOrigins": f"{SITE},http://localhost:8000"}}


async def _hello(url: str, origin: str | None) -> dict[str, Any]:
    async with websockets.connect(url, origin=origin) as ws:
        await ws.send(json.dumps({"action": "hello", "id": "h"}))
        return dict(json.loads(await ws.recv()))


async def test_a_foreign_origin_is_refused_with_403_and_no_connect_runs(lambdacast: RunningEmulator) -> None:
    # GIVEN the invocations so far
    connects = len(lambdacast.invocations_of("$connect"))
    authorizations = len(lambdacast.invocations_of("$connect authorizer"))
    # WHEN a page of another site opens a socket (the attack)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await _hello(lambdacast.ws_url, "https://evil.example")
    # THEN the handshake gets 403, the authorizer ran once, and $connect never ran
    assert refused.value.response.status_code == 403
    assert len(lambdacast.invocations_of("$connect authorizer")) == authorizations + 1
    assert len(lambdacast.invocations_of("$connect")) == connects


@pytest.mark.parametrize("origin", [SITE, "HTTPS://CHAT.EXAMPLE.COM:443", "http://localhost:8000", None])
async def test_the_sites_own_pages_and_programs_connect(
    lambdacast: RunningEmulator, origin: str | None
) -> None:
    # WHEN the site's page (any spelling of its origin) or a program without Origin connects
    welcome = await _hello(lambdacast.ws_url, origin)
    # THEN it is welcomed
    assert welcome["type"] == "welcome"
