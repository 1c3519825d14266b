"""``@connections`` faults through lambdacast local: 410 on a live socket, 429/500 retried, latency.

Both transports that reach the management API are exercised: boto3's ``apigatewaymanagementapi`` in a
handler, and ``lambdacast.delivery.transport`` (signed aiohttp posts to the TLS listener).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botocore.credentials import ReadOnlyCredentials
from lambdacast.delivery import engine as fastpost
from lambdacast.delivery.policy import RetryPolicy
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from lambdacast_local.runtime_env import FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from lambdacast_local.testing import RunningEmulator, seed_where

APP = Path(__file__).parent / "apps" / "faults" / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {"concurrency": 2}


@pytest.fixture
def ws(lambdacast: RunningEmulator):
    lambdacast.faults.configure("")
    with connect(lambdacast.ws_url) as client:
        yield client


def connection_id(lambdacast: RunningEmulator) -> str:
    """The id of the connection opened last (the tests here open one at a time)."""
    return str(lambdacast.invocations_of("$connect")[-1].connection_id)


def work(lambdacast: RunningEmulator, ws: ClientConnection, **message: Any) -> dict[str, Any]:
    """Send one message to $default; return what boto3 saw once the invocation has finished."""
    before = len(lambdacast.invocations_of("$default"))
    ws.send(json.dumps(message))
    assert lambdacast.wait_for(lambda e: len(e.invocations_of("$default")) > before, timeout=60)
    invocation = lambdacast.invocations_of("$default")[before]
    assert invocation.ok, invocation.error
    result: dict[str, Any] = json.loads(invocation.result["body"])
    return result


def plan(lambdacast: RunningEmulator, spec: str, outcomes: list[str | None]) -> None:
    lambdacast.faults.configure(spec, seed_where(spec, "connections", outcomes))


def management_call(lambdacast: RunningEmulator, method: str, cid: str, data: bytes | None = None):
    url = f"{lambdacast.management_url}/@connections/{cid}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method), timeout=15) as r:
            return r.status, r.headers.get("x-amzn-ErrorType")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("x-amzn-ErrorType")


def test_410_on_a_live_connection_closes_its_socket_with_1001_and_fires_disconnect(lambdacast, ws):
    # GIVEN a live connection, and every @connections call getting the 410 fault
    cid = connection_id(lambdacast)
    lambdacast.faults.configure("connections:410=1", 1)
    # WHEN a backend posts to it
    status, error_type = management_call(lambdacast, "POST", cid, b"lost")
    # THEN the post is answered 410 GoneException
    assert (status, error_type) == (410, "GoneException")
    # AND the client's socket was closed by the server with 1001 Going away, the message never delivered
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=30)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "Going away")
    # AND $disconnect fired for that connection with the same code
    assert lambdacast.wait_for(lambda e: any(i.connection_id == cid for i in e.invocations_of("$disconnect")))
    disconnect = next(i for i in lambdacast.invocations_of("$disconnect") if i.connection_id == cid)
    assert json.loads(disconnect.result["body"]) == {"code": 1001, "reason": "Going away"}
    # AND the connection is gone for later calls too
    lambdacast.faults.configure("")
    assert management_call(lambdacast, "GET", cid) == (410, "GoneException")


@pytest.mark.parametrize("kind", ["429", "500"])
def test_a_429_or_500_is_retried_by_boto3_and_the_message_arrives_once(lambdacast, ws, kind):
    # GIVEN the next @connections call getting `kind` and the one after it not
    plan(lambdacast, f"connections:{kind}=0.5", [kind, None])
    # WHEN a handler posts to its own connection (3 attempts)
    seen = work(lambdacast, ws, do="post", data=f"after-{kind}", attempts=3)
    # THEN boto3 retried once and succeeded; the plan saw exactly those two calls
    assert seen == {"ok": True, "error": None, "retries": 1}
    assert lambdacast.faults.calls("connections") == 2
    assert lambdacast.faults.count("connections", kind) == 1
    # AND the client received the message, once: the next frame is the next post's
    assert ws.recv(timeout=30) == f"after-{kind}"
    lambdacast.faults.configure("")
    work(lambdacast, ws, do="post", data="next", attempts=1)
    assert ws.recv(timeout=30) == "next"


@pytest.mark.parametrize(
    ("kind", "error"), [("429", "LimitExceededException"), ("500", "InternalServerErrorException")]
)
def test_a_post_failing_every_attempt_reaches_boto3_as_api_gateways_error(lambdacast, ws, kind, error):
    # GIVEN every @connections call getting `kind`
    lambdacast.faults.configure(f"connections:{kind}=1", 1)
    # WHEN a handler posts to its own connection (2 attempts)
    seen = work(lambdacast, ws, do="post", data="never", attempts=2)
    # THEN boto3 gave up after its retry with API Gateway's error code
    assert seen == {"ok": False, "error": error, "retries": 1}
    assert lambdacast.faults.count("connections", kind) == 2
    # AND nothing was delivered: the next frame is the next post's
    lambdacast.faults.configure("")
    work(lambdacast, ws, do="post", data="next", attempts=1)
    assert ws.recv(timeout=30) == "next"


async def test_fastpost_retries_429_and_500_and_delivers_every_message_exactly_once(lambdacast):
    # GIVEN 60 simulated connections, and 429s and 500s on 40% of @connections calls (seeded)
    ids = lambdacast.simulated_connections(60)
    lambdacast.faults.configure("connections:429=0.2,connections:500=0.2", 17)
    credentials = ReadOnlyCredentials(FAKE_ACCESS_KEY, FAKE_SECRET_KEY, None)
    tls = ssl.create_default_context(cafile=str(lambdacast.ca_bundle))

    async def no_backoff(_: float) -> None:
        return None

    # WHEN the delivery transport posts one message to each over the TLS listener, one request at a time (so
    # the run repeats exactly from the seed), with up to 20 attempts per recipient
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session:
        outcome = await fastpost.post_many_async(
            lambdacast.tls_management_url,
            [(cid, f"to-{cid}".encode()) for cid in ids],
            session=session,
            concurrency=1,
            region="us-east-1",
            credentials=credentials,
            policy=RetryPolicy(max_attempts=20),
            sleep=no_backoff,
        )
    # THEN every recipient was delivered, none failed or gone
    assert sorted(outcome.delivered) == sorted(ids)
    assert (outcome.gone, outcome.failed) == ([], {})
    # AND every injected fault cost exactly one retry, every request was a call of the plan
    faults = lambdacast.faults
    injected = faults.count("connections", "429") + faults.count("connections", "500")
    assert injected > 0
    assert outcome.retries == injected
    assert outcome.attempts == faults.calls("connections")
    # AND each connection received its message exactly once
    assert [lambdacast.frames(cid) for cid in ids] == [[f"to-{cid}"] for cid in ids]


def test_latency_delays_every_call_fault_or_not(lambdacast):
    # GIVEN connections latency with 429s on every call
    lambdacast.faults.configure("connections:429=1,connections:latency=3", 1)
    # WHEN two calls are made
    answers = [management_call(lambdacast, "GET", "AAAAAAAAAAAAAAA=") for _ in range(2)]
    # THEN both were throttled, and both went through the delay first
    assert answers == [(429, "LimitExceededException")] * 2
    assert lambdacast.faults.count("connections", "latency") == 2


def test_every_operation_goes_through_the_faults(lambdacast, ws):
    # GIVEN every call throttled
    cid = connection_id(lambdacast)
    lambdacast.faults.configure("connections:429=1", 1)
    # WHEN a backend posts, reads and deletes
    answers = [
        management_call(lambdacast, "POST", cid, b"x"),
        management_call(lambdacast, "GET", cid),
        management_call(lambdacast, "DELETE", cid),
    ]
    # THEN each was answered 429 and counted, and the connection is still open
    assert answers == [(429, "LimitExceededException")] * 3
    assert lambdacast.faults.calls("connections") == 3
    lambdacast.faults.configure("")
    assert management_call(lambdacast, "GET", cid) == (200, None)
