"""The emulator's events have the same keys as the project's sample events in events/ (AWS's shapes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdacast_local import events

EVENTS = Path(__file__).resolve().parents[3] / "events"
STAGE = events.Stage(api_id="abc123def4", stage="dev", domain_name="127.0.0.1:4443")


def _conn(query: bool, authorizer: dict[str, Any] | None = None) -> events.Connection:
    return events.Connection(
        connection_id=events.new_id(),
        connected_at=events.now_ms(),
        source_ip="127.0.0.1",
        user_agent="pytest",
        headers=[("Host", "x"), ("Sec-WebSocket-Key", "k")],
        query=[("token", "t")] if query else [],
        authorizer=authorizer,
    )


def _built(name: str) -> dict[str, Any]:
    authorized = {"principalId": "u", "integrationLatency": 1}
    builders = {
        "connect.json": lambda: events.connect_event(STAGE, _conn(query=False)),
        "connect-authorized.json": lambda: events.connect_event(
            STAGE, _conn(query=True, authorizer=authorized)
        ),
        "disconnect.json": lambda: events.disconnect_event(STAGE, _conn(query=False), 1001, "Going away"),
        "hello.json": lambda: events.message_event(
            STAGE, _conn(query=False), "$default", '{"action":"hello"}'
        ),
        "binary-frame.json": lambda: events.message_event(STAGE, _conn(query=False), "$default", b"\x00"),
        "authorizer-token.json": lambda: events.authorizer_event(STAGE, _conn(query=True)),
    }
    event: dict[str, Any] = builders[name]()
    return event


@pytest.mark.parametrize(
    "name",
    [
        "connect.json",
        "connect-authorized.json",
        "disconnect.json",
        "hello.json",
        "binary-frame.json",
        "authorizer-token.json",
    ],
)
def test_built_event_has_the_sample_events_keys(name):
    # GIVEN a sample event of the project (shaped after AWS captures)
    path = EVENTS / name
    if not path.is_file():
        pytest.skip(f"SKIPPED: sample event {path} is missing, nothing to compare the emulator's event with")
    sample = json.loads(path.read_text())
    # WHEN the emulator builds the same kind of event
    built = _built(name)
    # THEN the top-level keys, requestContext keys and identity keys are the same
    assert set(built) == set(sample)
    assert set(built["requestContext"]) == set(sample["requestContext"])
    assert set(built["requestContext"]["identity"]) == set(sample["requestContext"]["identity"])
