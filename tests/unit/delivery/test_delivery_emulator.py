"""The contract with ``lambdacast local``: fastpost reaches real clients through its @connections API.

Real sockets on 127.0.0.1 through the emulator (marked ``functional``); one emulator for the module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from botocore.credentials import Credentials
from lambdacast.delivery import transport as fastpost
from websockets.sync.client import ClientConnection, connect

from lambdacast_local.testing import RunningEmulator

pytestmark = pytest.mark.functional

CREDS = Credentials("AKIDLOCAL", "local-secret")
FRAME = {"type": "message", "channel": "lobby", "seq": 1, "data": "hi"}


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return Path(__file__).resolve().parents[3] / "template.yaml"


@pytest.fixture
def clients(lambdacast: RunningEmulator) -> Iterator[dict[str, ClientConnection]]:
    """Five connected clients, by connection id (learned through ``hello``)."""
    opened: dict[str, ClientConnection] = {}
    with ExitStack() as stack:
        stack.callback(fastpost.close)
        for _ in range(5):
            ws = stack.enter_context(connect(lambdacast.ws_url, open_timeout=10))
            ws.send(json.dumps({"action": "hello"}))
            opened[json.loads(ws.recv(timeout=10))["connectionId"]] = ws
        yield opened


def test_every_connected_client_receives_the_post_and_a_closed_one_is_gone(
    lambdacast: RunningEmulator, clients: dict[str, ClientConnection]
) -> None:
    # GIVEN five clients, one of which has hung up
    disconnects = len(lambdacast.invocations_of("$disconnect"))
    closed_id, closed_ws = next(iter(clients.items()))
    closed_ws.close()
    live = {cid: ws for cid, ws in clients.items() if cid != closed_id}
    assert lambdacast.wait_for(lambda emu: len(emu.invocations_of("$disconnect")) > disconnects)
    # WHEN the frame is posted to all five through the emulator's management API
    outcome = fastpost.post_many(
        lambdacast.management_url,
        [(cid, json.dumps(FRAME).encode()) for cid in clients],
        region="us-east-1",
        credentials=CREDS,
    )
    # THEN the four live clients got it, and the closed one is reported gone
    assert sorted(outcome.delivered) == sorted(live)
    assert outcome.gone == [closed_id]
    assert all(json.loads(ws.recv(timeout=10)) == FRAME for ws in live.values())


def test_the_tls_listener_works_with_the_ca_bundle_the_emulator_hands_its_workers(
    lambdacast: RunningEmulator, clients: dict[str, ClientConnection], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the emulator's https:// management listener and its throwaway CA
    monkeypatch.setenv("AWS_CA_BUNDLE", str(lambdacast.ca_bundle))
    # WHEN the frame is posted over TLS
    outcome = fastpost.post_many(
        lambdacast.tls_management_url,
        [(cid, json.dumps(FRAME).encode()) for cid in clients],
        region="us-east-1",
        credentials=CREDS,
    )
    # THEN every client got it
    assert sorted(outcome.delivered) == sorted(clients)
    assert all(json.loads(ws.recv(timeout=10)) == FRAME for ws in clients.values())
