"""Helpers and fixtures for the backend tests: moto DynamoDB from template.yaml, a fake transport, events."""

from __future__ import annotations

import importlib.util
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from lambdacast.channels import ChannelStore
from lambdacast.config import Settings
from lambdacast.delivery.exchange import Reply
from lambdacast.handlers import Runtime
from moto import mock_aws

from lambdacast_local.template import load_yaml

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "events"
TABLE = "lambdacast-test"


# -- template.yaml's own table definition -----------------------------------------------------------


def template_table() -> dict[str, Any]:
    """The Properties of the DynamoDB table in template.yaml."""
    template = load_yaml(ROOT / "template.yaml")
    tables = [r for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert len(tables) == 1, "template.yaml must define exactly one DynamoDB table"
    return dict(tables[0]["Properties"])


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "lambdacast",
        "POWERTOOLS_METRICS_NAMESPACE": "lambdacast-test",
        "TABLE_NAME": TABLE,
    }.items():
        monkeypatch.setenv(name, value)


#: moto applies requests from several threads at once without locking (a TransactWriteItems
#: checks its conditions, then writes, while another thread does the same); DynamoDB itself is
#: linearizable per item. Tests serialize moto's work so threads race as they would on AWS.
MOTO_LOCK = threading.RLock()


def serialize_moto(client: Any) -> None:
    """Run each request of ``client`` under :data:`MOTO_LOCK`, first before-send handler to last."""

    def acquire(**_kwargs: Any) -> None:
        MOTO_LOCK.acquire()

    def release(**_kwargs: Any) -> None:
        MOTO_LOCK.release()

    client.meta.events.register_first("before-send.dynamodb", acquire)
    client.meta.events.register_last("before-send", release)


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    """A moto DynamoDB client holding the table exactly as template.yaml defines it."""
    props = template_table()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        serialize_moto(client)
        client.create_table(
            TableName=TABLE,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode=props["BillingMode"],
        )
        ttl = props["TimeToLiveSpecification"]
        client.update_time_to_live(
            TableName=TABLE,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]},
        )
        yield client


@pytest.fixture
def store(dynamodb: Any) -> ChannelStore:
    return ChannelStore(TABLE, client=dynamodb, sleep=lambda _s: None)


# -- an in-memory @connections API that records what reaches each connection ------------------------


@dataclass
class RecordingTransport:
    """API Gateway's side of ``@connections``, in memory: the delivery engine's ``exchange``.

    Every signed request the deployed engine sends lands here instead of on a socket. Connections
    in ``gone`` answer 410, those in ``failing`` 403 (refused for good, no retry), those in
    ``throttled`` 429 a given number of times (retried by the engine); a POST to any
    other connection is recorded in ``posts``, a DELETE in ``deleted``. Replies returned as a
    route's response are recorded in ``posts`` too (:meth:`route_response`), in arrival order, as
    the client would receive them.
    """

    gone: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    throttled: dict[str, int] = field(default_factory=dict)
    """Connection id -> how many more posts to it answer 429 (then it is served)."""
    posts: list[tuple[str, bytes]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def exchange(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float | None
    ) -> Reply:
        assert headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "), "unsigned request"
        connection_id = unquote(url.rsplit("/@connections/", 1)[1])
        with self._lock:
            self.requests += 1
            if self.throttled.get(connection_id, 0) > 0:
                self.throttled[connection_id] -= 1
                return Reply(429, "LimitExceededException", b'{"message":"Rate exceeded"}')
        if connection_id in self.gone:
            return Reply(410, "GoneException", b'{"message":null}')
        if connection_id in self.failing:
            return Reply(403, "ForbiddenException", b'{"message":"Forbidden"}')
        with self._lock:
            if method == "DELETE":
                self.deleted.append(connection_id)
                self.gone.add(connection_id)
                return Reply(204)
            self.posts.append((connection_id, bytes(body)))
        return Reply(200)

    def route_response(self, connection_id: str, response: dict[str, Any]) -> None:
        """Deliver a ``$default`` response's body to its caller, as a route response does."""
        body = response.get("body")
        if body is not None and connection_id not in self.gone:
            with self._lock:
                self.posts.append((connection_id, str(body).encode()))

    def frames(self, connection_id: str) -> list[dict[str, Any]]:
        """The frames posted to one connection, decoded, in posting order."""
        with self._lock:
            return [json.loads(d) for c, d in self.posts if c == connection_id]

    def clear(self) -> None:
        with self._lock:
            self.posts.clear()


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def settings() -> Settings:
    return Settings(table_name=TABLE, max_data_bytes=32768, max_channels=100, fanout_concurrency=16)


#: When the sample events were captured (their requestTimeEpoch, ms); the handlers' clock starts here.
EVENTS_EPOCH_MS = 1_795_626_616_334


@pytest.fixture
def runtime(
    settings: Settings, store: ChannelStore, transport: RecordingTransport, monkeypatch: pytest.MonkeyPatch
) -> Runtime:
    """The handlers' runtime, pointed at moto and the recording transport.

    The handlers' clock runs from the sample events' capture time rather than today's: items
    take their TTL from the events' ``connectedAt``, so against the real clock they would all
    read as expired once the machine's date passed it (presence and history would go empty).
    """
    rt = Runtime(settings, store=store, exchange=transport.exchange)
    monkeypatch.setattr("lambdacast.handlers.get_runtime", lambda: rt)
    offset = time.time_ns() // 1_000_000 - EVENTS_EPOCH_MS
    monkeypatch.setattr("lambdacast.handlers.now_ms", lambda: time.time_ns() // 1_000_000 - offset)
    return rt


# -- events and the deployed handler modules --------------------------------------------------------


def load_event(name: str, **context: Any) -> dict[str, Any]:
    """Load ``events/<name>.json``; keyword arguments override ``requestContext`` fields."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    event["requestContext"].update(context)
    return event


def message_event(body: str | None, connection_id: str, *, binary: bool = False) -> dict[str, Any]:
    """A $default event (events/ping.json) carrying another body, from another connection."""
    event = load_event("ping", connectionId=connection_id)
    event["body"] = body
    event["isBase64Encoded"] = binary
    return event


@dataclass(frozen=True)
class FakeLambdaContext:
    function_name: str = "lambdacast-DefaultFunction"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:lambdacast-DefaultFunction"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "3c4d7a1e-0f6b-4d5c-9a8e-7b6c5d4e3f21"
    log_group_name: str = "/aws/lambda/lambdacast-DefaultFunction"
    log_stream_name: str = "2026/11/25/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def _load_app(route: str) -> ModuleType:
    path = ROOT / "functions" / route / "app.py"
    spec = importlib.util.spec_from_file_location(f"lambdacast_function_{route}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


Invoke = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture
def invoke(runtime: Runtime, transport: RecordingTransport) -> Callable[[str], Invoke]:
    """``invoke("default")(event)`` calls functions/default/app.py's handler like Lambda would.

    A ``$default`` response's body reaches the caller as API Gateway's route response delivers
    it: it is recorded in ``transport`` after whatever the invocation posted.
    """

    def for_route(route: str) -> Invoke:
        module = _load_app(route)

        def call(event: dict[str, Any]) -> dict[str, Any]:
            response: dict[str, Any] = module.handler(event, FakeLambdaContext())
            if route == "default":
                transport.route_response(event["requestContext"]["connectionId"], response)
            return response

        return call

    return for_route


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[dict[str, Any]]]:
    """The JSON lines the Powertools logger writes during the test (its handler's stream is swapped)."""
    from lambdacast.observability import logger

    buffer = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", buffer)

    def read() -> list[dict[str, Any]]:
        lines = [json.loads(x) for x in buffer.getvalue().splitlines() if x.strip()]
        buffer.seek(0)
        buffer.truncate()
        return lines

    return read


def seed_subscribers(dynamodb: Any, channel: str, connection_ids: list[str], *, ttl: int) -> None:
    """Write many connections subscribed to one channel, fast (batched), in the store's item layout.

    The store's own transactional subscribe is tested on its own; this only sets up fan-out tests.
    """
    items: list[dict[str, Any]] = []
    for cid in connection_ids:
        for pk, sk, extra in (
            (f"CONN#{cid}", "META", {"connectedAt": {"N": "1795626612345"}, "subs": {"N": "1"}}),
            (f"CHAN#{channel}", f"CONN#{cid}", {}),
            (f"CONN#{cid}", f"CHAN#{channel}", {}),
        ):
            items.append({"pk": {"S": pk}, "sk": {"S": sk}, "ttl": {"N": str(ttl)}, **extra})
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        response = dynamodb.batch_write_item(RequestItems={TABLE: chunk})
        assert not response.get("UnprocessedItems")


# -- DynamoDB faults: a reply lost after the request was applied, a throttle, an error -------------


@dataclass
class DynamoFaults:
    """Faults injected into one boto3 DynamoDB client under moto, below botocore's retries.

    ``lose[op]``: call numbers (1-based) of operation ``op`` that moto applies and whose reply is
    then replaced by a 500 (as when a response is lost on the way back): botocore retries them.
    ``throttle[op]`` / ``fail[op]``: call numbers answered 400 ProvisionedThroughputExceeded /
    500 without being applied. ``calls[op]`` counts every request sent, retries included.
    """

    lose: dict[str, set[int]] = field(default_factory=dict)
    throttle: dict[str, set[int]] = field(default_factory=dict)
    fail: dict[str, set[int]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def install(self, client: Any) -> DynamoFaults:
        from botocore.awsrequest import AWSResponse
        from moto.core.models import botocore_stubber

        class _Raw:
            def __init__(self, body: bytes) -> None:
                self._body = body

            def stream(self, **_kwargs: Any) -> Iterator[bytes]:
                yield self._body

        def answer(request: Any, status: int, code: str) -> AWSResponse:
            body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": code})
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault"}
            return AWSResponse(request.url, status, headers, _Raw(body.encode()))  # type: ignore[arg-type]

        # botocore calls every before-send handler and keeps the first response, so moto's own
        # handler (on the root event, called after this more specific one) would still apply a
        # request answered here: it is switched off for that one request, and switched back on by
        # a handler registered last on the root event, after moto's.
        def handler(event_name: str, request: Any, **kwargs: Any) -> Any:
            with MOTO_LOCK:
                return decide(event_name, request, **kwargs)

        def decide(event_name: str, request: Any, **kwargs: Any) -> Any:
            op = event_name.rsplit(".", 1)[-1]
            n = self.calls[op] = self.calls.get(op, 0) + 1
            if n in self.throttle.get(op, set()):
                botocore_stubber.enabled = False
                return answer(request, 400, "ProvisionedThroughputExceededException")
            if n in self.fail.get(op, set()):
                botocore_stubber.enabled = False
                return answer(request, 500, "InternalServerError")
            if n in self.lose.get(op, set()):
                botocore_stubber(event_name, request, **kwargs)  # applied...
                botocore_stubber.enabled = False
                return answer(request, 500, "InternalServerError")  # ...but the reply is lost
            return None

        def restore(**_kwargs: Any) -> None:
            botocore_stubber.enabled = True

        client.meta.events.register_first("before-send.dynamodb", handler)
        client.meta.events.register_last("before-send", restore)
        return self
