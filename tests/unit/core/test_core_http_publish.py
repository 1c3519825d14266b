"""Server-side publish: POST /channels/{channel}/messages through functions/publish/app.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from core_support import EVENTS
from lambdacast.handlers import Runtime
from world_support import World

SUB = "BFHSub11oAMCAAA="
Invoke = Callable[[dict[str, Any]], dict[str, Any]]


def http_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


@pytest.fixture
def post(world: World, invoke: Callable[[str], Invoke], runtime: Runtime) -> Invoke:
    """The deployed publish handler, with a subscriber on lobby and the template's endpoint set."""
    runtime.settings = replace(
        runtime.settings, management_endpoint="https://k3xq9w2m7d.execute-api.eu-west-1.amazonaws.com/dev"
    )
    world.open(SUB)
    world.send({"action": "subscribe", "channel": "lobby"}, SUB)
    world.transport.clear()
    return invoke("publish")


def body(response: dict[str, Any]) -> Any:
    assert response["headers"]["content-type"] == "application/json"
    return json.loads(response["body"])


def test_a_signed_publish_reaches_subscribers_and_answers_seq_and_delivered(
    world: World, post: Invoke
) -> None:
    # GIVEN a subscriber on lobby WHEN the backend POSTs events/http-publish.json
    response = post(http_event("http-publish"))
    # THEN 200 {channel, seq, epoch, delivered}
    assert response["statusCode"] == 200
    assert body(response) == {"channel": "lobby", "seq": 1, "epoch": world.epoch("lobby"), "delivered": 1}
    # AND the subscriber received a normal message frame from the server (no user)
    message = world.last(SUB)
    assert (message["type"], message["seq"], message["data"]) == (
        "message",
        1,
        {"text": "deploy finished", "build": 812},
    )
    assert message["from"] == {"userId": None}


def test_a_server_publish_repeated_with_the_same_msg_id_is_numbered_once(world: World, post: Invoke) -> None:
    # GIVEN a backend that retries its publish (the first answer was lost) with the same msgId
    event = http_event("http-publish")
    event["body"] = json.dumps({"data": {"text": "deploy finished"}, "msgId": "deploy-812"})
    first = body(post(event))
    # WHEN it sends it again
    again = body(post(event))
    # THEN the second answer carries the first seq and says duplicate, and the subscriber got it once
    assert (first["seq"], first["msgId"], "duplicate" in first) == (1, "deploy-812", False)
    assert (again["seq"], again["epoch"], again["duplicate"]) == (1, first["epoch"], True)
    assert [f["seq"] for f in world.frames(SUB, "message")] == [1]


def test_the_published_message_is_in_the_history(world: World, post: Invoke) -> None:
    # GIVEN a server-side publish WHEN the subscriber asks for history THEN the message is there
    post(http_event("http-publish"))
    world.send({"action": "history", "channel": "lobby"}, SUB)
    assert [m["data"]["build"] for m in world.last(SUB)["messages"]] == [812]


def test_a_base64_body_is_decoded(world: World, post: Invoke) -> None:
    # GIVEN events/http-publish-base64.json (API Gateway base64-encodes some bodies)
    response = post(http_event("http-publish-base64"))
    # THEN it is published like any other
    assert response["statusCode"] == 200
    assert world.last(SUB)["data"] == "from a webhook"


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("http-publish-missing-data", 400, "invalid_frame"),
        ("http-publish-bad-channel", 400, "invalid_channel"),
        ("http-publish-invalid-json", 400, "invalid_json"),
        ("http-publish-too-large", 413, "too_large"),
    ],
)
def test_a_bad_request_gets_its_status_and_code_and_publishes_nothing(
    world: World, post: Invoke, name: str, status: int, code: str
) -> None:
    # GIVEN a malformed request WHEN posted
    before = world.items()
    response = post(http_event(name))
    # THEN its status and JSON error, no message posted and nothing written
    assert response["statusCode"] == status
    error = body(response)
    assert error["code"] == code
    assert error["message"]
    assert world.transport.posts == []
    assert world.items() == before


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "[1,2]", '{"data": NaN}', "\u00ff" * 3, '{"data": ' + "[" * 5000 + "]" * 5000 + "}"],
)
def test_any_body_gets_a_json_answer_never_an_exception(post: Invoke, raw: str) -> None:
    # GIVEN odd bodies WHEN posted THEN a 4xx JSON error (never a raise, never a 500 for client input)
    event = http_event("http-publish")
    event["body"] = raw
    response = post(event)
    assert 400 <= response["statusCode"] < 500
    assert "code" in body(response)


def test_bad_base64_is_invalid_json(post: Invoke) -> None:
    # GIVEN a body flagged base64 that is not WHEN posted THEN 400 invalid_json
    event = http_event("http-publish-base64")
    event["body"] = "***"
    assert body(post(event))["code"] == "invalid_json"


def test_a_store_failure_is_a_500_json_error(
    post: Invoke, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a table that refuses the numbering transaction
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("throttled")

    monkeypatch.setattr(runtime.store.client, "transact_write_items", boom)
    # WHEN a valid request is posted THEN 500 internal_error without internals
    response = post(http_event("http-publish"))
    assert response["statusCode"] == 500
    assert body(response)["code"] == "internal_error"
    assert "throttled" not in response["body"]


def test_without_a_management_endpoint_the_function_answers_500(post: Invoke, runtime: Runtime) -> None:
    # GIVEN a deployment that did not set MANAGEMENT_ENDPOINT (the HTTP event cannot supply it)
    runtime.settings = replace(runtime.settings, management_endpoint=None)
    # WHEN a request arrives THEN 500 internal_error (logged), never a crash
    response = post(http_event("http-publish"))
    assert (response["statusCode"], body(response)["code"]) == (500, "internal_error")


def test_a_gone_subscriber_is_cleaned_and_the_publish_goes_on(world: World, post: Invoke) -> None:
    # GIVEN a second subscriber that vanished without $disconnect
    world.open("BFHGone1oAMCAAA=")
    world.send({"action": "subscribe", "channel": "lobby"}, "BFHGone1oAMCAAA=")
    world.transport.gone.add("BFHGone1oAMCAAA=")
    # WHEN the backend publishes THEN the live one is counted and the gone one removed
    assert body(post(http_event("http-publish")))["delivered"] == 1
    assert world.store.get_connection("BFHGone1oAMCAAA=") is None
