"""DynamoDB requests and capacity units per publish, through the real ``$default`` handler.

Run by :mod:`bench.__main__` in a child process (``python -m bench.dynamodb_cost``: a clean
environment, as a Lambda container has, and moto's in-process mock kept out of the bench process);
prints one JSON document.

Against moto, the project's table is created from template.yaml's own ``AWS::DynamoDB::Table``
(read with ``lambdacast_local.template.load_yaml``) and filled with ``connections`` connections, each
subscribed to one channel: channels of 1, 10, 100 and 1,000 subscribers, the rest in channels of 100.
``functions/default/app.py``'s handler then publishes to each measured channel (``echo: true``, so
every subscriber, the publisher too, is a recipient), with a recording transport for the management
API. botocore event hooks on the handler's own DynamoDB client count every request, keep each
Query's ``Count``/``ScannedCount`` and moto's ``ConsumedCapacity``; the capacity units are computed
from the items' sizes (:mod:`bench.ddb_units`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import ddb_units
from lambdacast_local.runtimes.worker import LambdaContext

ROOT = Path(__file__).resolve().parent.parent
TABLE = "lambdacast-bench"
REGION = "us-east-1"
READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
ENVIRONMENT = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "lambdacast",
    "POWERTOOLS_METRICS_NAMESPACE": "lambdacast-bench",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "TABLE_NAME": TABLE,
}


@dataclass
class Call:
    """One DynamoDB request made during a publish."""

    operation: str
    params: dict[str, Any]
    count: int | None = None
    scanned_count: int | None = None
    moto_capacity: float | None = None
    units: float = 0.0
    started: float = 0.0
    """``time.perf_counter()`` when botocore sent it (``before-call``)."""
    ended: float = 0.0
    """When its answer (or error) was parsed."""


@dataclass
class PublishCost:
    """What one publish to a channel of ``subscribers`` cost in DynamoDB."""

    subscribers: int
    table_connections: int
    delivered: int
    calls: list[Call] = field(default_factory=list)

    @property
    def reads(self) -> int:
        return sum(1 for c in self.calls if c.operation in READS)

    @property
    def writes(self) -> int:
        return sum(1 for c in self.calls if c.operation in WRITES)

    @property
    def round_trips(self) -> int:
        """Requests that had to wait for an earlier one's answer, plus one: the chain's length.

        A request that started before every earlier one had answered ran concurrently with it.
        """
        waves, answered_by = 0, float("-inf")
        for call in sorted(self.calls, key=lambda c: c.started):
            if call.started >= answered_by:
                waves += 1
                answered_by = call.ended
            else:
                answered_by = max(answered_by, call.ended)
        return waves

    @property
    def read_units(self) -> float:
        return sum(c.units for c in self.calls if c.operation in READS)

    @property
    def write_units(self) -> float:
        return sum(c.units for c in self.calls if c.operation in WRITES)

    def summary(self) -> dict[str, Any]:
        queries = [c for c in self.calls if c.operation == "Query"]
        return {
            "subscribers": self.subscribers,
            "table_connections": self.table_connections,
            "delivered": self.delivered,
            "reads": self.reads,
            "writes": self.writes,
            "read_units": self.read_units,
            "write_units": self.write_units,
            "query_count": sum(c.count or 0 for c in queries),
            "query_scanned_count": sum(c.scanned_count or 0 for c in queries),
            "queries": len(queries),
            "moto_capacity": sum(c.moto_capacity or 0 for c in self.calls),
            "operations": [c.operation for c in self.calls],
            "round_trips": self.round_trips,
        }


class Recorder:
    """botocore hooks on one client: every request while ``on`` (ReturnConsumedCapacity asked for)."""

    def __init__(self, client: Any) -> None:
        self.on = False
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        client.meta.events.register("provide-client-params.dynamodb.*", self._before)
        client.meta.events.register("before-call.dynamodb.*", self._sent)
        client.meta.events.register("after-call.dynamodb.*", self._after)
        client.meta.events.register("after-call-error.dynamodb.*", self._failed)

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self.on:
            return
        params["ReturnConsumedCapacity"] = "TOTAL"
        call = Call(model.name, json.loads(json.dumps(params)))
        context["bench_call"] = call
        with self._lock:
            self.calls.append(call)

    def _sent(self, context: dict[str, Any], **_: Any) -> None:
        call: Call | None = context.get("bench_call")
        if call is not None:
            call.started = time.perf_counter()

    def _failed(self, context: dict[str, Any], **_: Any) -> None:
        call: Call | None = context.get("bench_call")
        if call is not None:
            call.ended = time.perf_counter()

    def _after(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        call: Call | None = context.get("bench_call")
        if call is None:
            return
        call.ended = time.perf_counter()
        call.count, call.scanned_count = parsed.get("Count"), parsed.get("ScannedCount")
        capacity = parsed.get("ConsumedCapacity")
        if isinstance(capacity, dict):
            call.moto_capacity = float(capacity.get("CapacityUnits", 0))
        elif isinstance(capacity, list):
            call.moto_capacity = sum(float(c.get("CapacityUnits", 0)) for c in capacity)

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[Call]]:
        self.calls = []
        self.on = True
        try:
            yield self.calls
        finally:
            self.on = False


def _units(client: Any, call: Call) -> float:
    """The call's capacity units from the sizes of the items it touched (read back with hooks off)."""
    params = {k: v for k, v in call.params.items() if k != "ReturnConsumedCapacity"}
    consistent = bool(params.get("ConsistentRead"))
    if call.operation == "GetItem":
        item = client.get_item(TableName=params["TableName"], Key=params["Key"]).get("Item") or {}
        return ddb_units.read_units([ddb_units.item_size(item)], consistent=consistent)
    if call.operation == "Query":
        params.pop("ProjectionExpression", None)  # a projection does not lower the units
        page = client.query(**params)["Items"]
        return ddb_units.read_units([ddb_units.item_size(i) for i in page], consistent=consistent)
    if call.operation == "PutItem":
        return ddb_units.write_units(0, ddb_units.item_size(params["Item"]))
    if call.operation in ("UpdateItem", "DeleteItem"):
        item = client.get_item(TableName=params["TableName"], Key=params["Key"]).get("Item") or {}
        size = ddb_units.item_size(item)
        return ddb_units.write_units(size, size)
    if call.operation == "TransactWriteItems":  # each item twice a plain write's units, as AWS bills it
        return sum(2 * _transact_item_units(client, item) for item in params["TransactItems"])
    raise NotImplementedError(f"no unit rule for {call.operation} in the bench; add one")


def _transact_item_units(client: Any, item: dict[str, Any]) -> int:
    ((kind, spec),) = item.items()
    if kind == "Put":
        return ddb_units.write_units(0, ddb_units.item_size(spec["Item"]))
    current = client.get_item(TableName=spec["TableName"], Key=spec["Key"]).get("Item") or {}
    size = ddb_units.item_size(current)
    return ddb_units.write_units(size, size)


def _create_table(client: Any) -> None:
    from lambdacast_local.template import load_yaml

    resources = load_yaml(ROOT / "template.yaml")["Resources"]
    tables = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table"]
    if len(tables) != 1:
        raise RuntimeError(f"template.yaml defines {len(tables)} DynamoDB tables; the bench expects one")
    props = tables[0]
    client.create_table(
        TableName=TABLE,
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        BillingMode=props["BillingMode"],
    )


def subscription_items(channel: str, connection_id: str, ttl: int) -> list[dict[str, Any]]:
    """Both sides of one subscription, in the store's item layout (docs/architecture.md)."""
    expires = {"N": str(ttl)}
    return [
        {"pk": {"S": f"CHAN#{channel}"}, "sk": {"S": f"CONN#{connection_id}"}, "ttl": expires},
        {"pk": {"S": f"CONN#{connection_id}"}, "sk": {"S": f"CHAN#{channel}"}, "ttl": expires},
    ]


def _seed(client: Any, channels: dict[str, list[str]]) -> None:
    """Connections (``META``, as ``$connect`` writes it) and one subscription each, batched."""
    ttl = int(time.time()) + 7200
    items: list[dict[str, Any]] = []
    for channel, ids in channels.items():
        for cid in ids:
            meta = {
                "subs": {"N": "1"},
                "connectedAt": {"N": "1795626612345"},
                "sourceIp": {"S": "203.0.113.24"},
            }
            items.append({"pk": {"S": f"CONN#{cid}"}, "sk": {"S": "META"}, "ttl": {"N": str(ttl)}, **meta})
            items += subscription_items(channel, cid, ttl)
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        if client.batch_write_item(RequestItems={TABLE: chunk}).get("UnprocessedItems"):
            raise RuntimeError("moto left items unprocessed while seeding")


class _Transport:
    """The management API stand-in (an ``Exchange``): accepts every post and counts them."""

    def __init__(self) -> None:
        self.posts = 0
        self._lock = threading.Lock()

    async def exchange(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float | None
    ) -> Any:
        from lambdacast.delivery.exchange import Reply

        with self._lock:
            self.posts += method == "POST"
        return Reply(200)


def _publish_event(connection_id: str, channel: str, n: int) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / "publish.json").read_text())
    event["requestContext"]["connectionId"] = connection_id
    body = {"action": "publish", "channel": channel, "data": {"text": "hello, world", "n": n}, "echo": True}
    event["body"] = json.dumps({**body, "id": f"p{n}"})
    return event


def measure(sizes: list[int], connections: int) -> list[PublishCost]:
    """Publish once to a channel of each size in a table of ``connections`` connections."""
    os.environ.update(ENVIRONMENT)
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _create_table(client)
        channels = {f"bench-{size}": [f"B{size:05d}x{i:05d}=" for i in range(size)] for size in sizes}
        rest = connections - sum(sizes)
        for k in range(0, max(rest, 0), 100):
            channels[f"room-{k // 100}"] = [f"R{k // 100:05d}x{i:05d}=" for i in range(min(100, rest - k))]
        _seed(client, channels)
        total = sum(len(ids) for ids in channels.values())

        from lambdacast import handlers
        from lambdacast.channels import ChannelStore
        from lambdacast.config import get_settings

        recorder = Recorder(client)
        transport = _Transport()
        runtime = handlers.Runtime(
            get_settings(), store=ChannelStore(TABLE, client=client), exchange=transport.exchange
        )
        handlers.get_runtime = lambda: runtime  # type: ignore[assignment]  # the seam handlers.py documents
        spec = importlib.util.spec_from_file_location("bench_default_app", ROOT / "functions/default/app.py")
        assert spec is not None
        assert spec.loader is not None
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
        context = _lambda_context()
        results: list[PublishCost] = []
        for size in sizes:
            channel = f"bench-{size}"
            publisher = channels[channel][0]
            app.handler(_publish_event(publisher, channel, 0), context)  # warm-up (first seq item, imports)
            before = transport.posts
            with recorder.recording() as calls, contextlib.redirect_stdout(io.StringIO()):
                app.handler(_publish_event(publisher, channel, 1), context)
            cost = PublishCost(size, total, transport.posts - before, list(calls))  # the ack is the reply
            for call in cost.calls:
                call.units = _units(client, call)
            results.append(cost)
        return results


def _lambda_context() -> LambdaContext:
    """The emulator's own LambdaContext, with Lambda's 29 s of an API Gateway integration left."""
    config = {
        "function_name": "lambdacast-DefaultFunction",
        "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:lambdacast-DefaultFunction",
        "memory_mb": 512,
        "log_stream_name": "bench",
    }
    return LambdaContext(config, "3c4d7a1e-0f6b-4d5c-9a8e-7b6c5d4e3f21", time.time_ns() // 1_000_000 + 29_000)


def main() -> None:
    sizes = [int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "1,10,100,1000").split(",")]
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # handler logs and metrics must not corrupt the JSON
        costs = measure(sizes, connections)
    json.dump([{**c.summary(), "calls": [asdict(call) for call in c.calls]} for c in costs], out)
    out.write("\n")


if __name__ == "__main__":
    main()
