"""Render docs/cost.md: the cost model per million messages, its tables filled from measured numbers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import cost_model as cm

ROOT = Path(__file__).resolve().parent.parent


def template_memory_mb(template: Path = ROOT / "template.yaml") -> int:
    """The ``$default`` function's MemorySize: its own, else ``Globals.Function``'s, else Lambda's 128."""
    from lambdacast_local.template import load_yaml

    document = load_yaml(template)
    for resource in document["Resources"].values():
        props = resource.get("Properties", {})
        is_default = str(props.get("CodeUri", "")).rstrip("/") == "functions/default"
        if resource["Type"] == "AWS::Serverless::Function" and is_default and "MemorySize" in props:
            return int(props["MemorySize"])
    return int(document.get("Globals", {}).get("Function", {}).get("MemorySize", 128))


def queue_path(template: Path = ROOT / "template.yaml") -> cm.QueuePath:
    """The SQS path's threshold and batch sizes, from the template and ``lambdacast.delivery.queue``."""
    from lambdacast.delivery.queue import DEFAULT_BATCH_RECIPIENTS

    from lambdacast_local.template import load_yaml

    document = load_yaml(template)
    threshold = int(document.get("Parameters", {}).get("QueueFanoutThreshold", {}).get("Default", 0))
    esm_batch = 10  # Lambda's default BatchSize for SQS
    for resource in document["Resources"].values():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") == "SQS":
                esm_batch = int(event["Properties"].get("BatchSize", esm_batch))
    return cm.QueuePath(threshold=threshold, per_message=DEFAULT_BATCH_RECIPIENTS, esm_batch=esm_batch)


def _queue_table(path: cm.QueuePath, prices: cm.Prices) -> str:
    lines = [
        "| recipients | queued | SQS messages | SQS requests | SQS | FanoutFunction requests "
        "| API Gateway messages, for scale |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for recipients in (path.threshold + 1, 10_000, 100_000):
        q = cm.queue_cost(recipients, path)
        lines.append(
            f"| {recipients:,} | {q.queued:,} | {q.messages:,} | {q.sqs_requests:,} "
            f"| {_usd(q.sqs_requests * prices.sqs_per_million_requests)} "
            f"| {_usd(q.invocations * prices.lambda_per_million_requests)} "
            f"| {_usd((recipients + 2) * prices.apigw_per_million_messages)} |"
        )
    return "\n".join(lines)


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:,.3f}"


def _per_unit(rows: Sequence[cm.CostRow]) -> str:
    """Subscribers per extra read unit, between the smallest and the largest channel measured."""
    if len(rows) < 2:
        return "(too few sizes measured to say how many)"
    small, large = rows[0].inputs, rows[-1].inputs
    extra = large.read_units - small.read_units
    return f"about {(large.recipients - small.recipients) / extra:,.0f}" if extra > 0 else "(no growth seen)"


def _table(rows: Sequence[cm.CostRow], memory_mb: int) -> str:
    lines = [
        "| recipients | API Gateway messages | API Gateway | Lambda requests "
        f"| Lambda compute ({memory_mb} MB arm64, measured duration) | DynamoDB | **total** "
        "| per million deliveries |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        i = row.inputs
        lines.append(
            f"| {i.recipients:,} | {row.apigw_messages:,} per publish | {_usd(row.apigw)} "
            f"| {_usd(row.lambda_requests)} | {_usd(row.lambda_compute)} ({i.duration_ms:,.0f} ms) "
            f"| {_usd(row.dynamodb)} ({i.read_units:g} RRU + {i.write_units:g} WRU) | **{_usd(row.total)}** "
            f"| {_usd(row.per_million_deliveries)} |"
        )
    return "\n".join(lines)


def _cpu_table(rows: Sequence[cm.CostRow], memory_mb: int) -> str:
    lines = [
        f"| recipients | measured duration | CPU-bound floor at {memory_mb} MB | Lambda compute, the longer "
        "| total with it |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row.cpu_bound_ms is None or row.lambda_compute_cpu_bound is None:
            continue
        total = row.total - row.lambda_compute + row.lambda_compute_cpu_bound
        lines.append(
            f"| {row.inputs.recipients:,} | {row.inputs.duration_ms:,.0f} ms | {row.cpu_bound_ms:,.0f} ms "
            f"| {_usd(row.lambda_compute_cpu_bound)} | {_usd(total)} |"
        )
    return "\n".join(lines)


def render(
    *,
    when: str,
    machine: str,
    rows: Sequence[cm.CostRow],
    memory_mb: int,
    sources: dict[str, str],
    extra: dict[str, Any],
) -> str:
    """The whole of docs/cost.md."""
    p = cm.PRICES
    cpu = extra.get("cpu_ms_per_post")
    latency = extra.get("latency_ms", 10.0)
    path = queue_path()
    minutes = cm.connection_minutes_per_month(1_000)
    parts = [
        "# What a message costs on AWS",
        "",
        f"Tables generated by `make bench` (`python -m bench`) on {when}, machine: {machine}. "
        "Do not edit the numbers: re-run the bench. Sources of the measured inputs: "
        + "; ".join(f"{name} {value}" for name, value in sources.items())
        + ".",
        "",
        "## Prices used",
        "",
        f"AWS on-demand list prices, **us-east-1**: {p.taken}. **Check them before relying on them** "
        "(API Gateway, Lambda, DynamoDB and SQS pricing pages on aws.amazon.com); every table below is "
        "recomputed from `bench/cost_model.py`'s `PRICES` when they change.",
        "",
        "| service | price used |",
        "|---|---|",
        f"| API Gateway WebSocket messages | ${p.apigw_per_million_messages:.2f} per million (first billion "
        "a month; $0.80 after), each message metered in 32 KB units, sent and received alike |",
        f"| API Gateway connection minutes | ${p.apigw_per_million_connection_minutes:.2f} per million |",
        f"| Lambda duration, arm64 | ${p.lambda_per_gb_second_arm64:.10f} per GB-second "
        "(1 ms billing steps) |",
        f"| Lambda requests | ${p.lambda_per_million_requests:.2f} per million |",
        f"| DynamoDB on-demand writes | ${p.dynamodb_per_million_wru:.3f} per million write request "
        "units (1 KB) |",
        f"| DynamoDB on-demand reads | ${p.dynamodb_per_million_rru:.3f} per million read request units "
        "(4 KB strongly consistent) |",
        f"| SQS standard requests | ${p.sqs_per_million_requests:.2f} per million (64 KB chunks) |",
        "",
        "Free tiers are left out (they matter only for small apps).",
        "",
        "## The model: one million published messages",
        "",
        "A client publishes a message of a few hundred bytes (well under 32 KB) to a channel whose other "
        "subscribers are the *recipients*. Per publish:",
        "",
        "* **API Gateway:** the publish frame in, one frame out per recipient, the `ack` back to the "
        "publisher: recipients + 2 messages (a message over 32 KB counts once per started 32 KB).",
        "* **Lambda:** one `$default` invocation at the template's MemorySize "
        f"({memory_mb} MB, arm64), billed for its duration. The duration is the **median measured** "
        "`$default` duration of a publish to that many real WebSocket subscribers of `lambdacast local` "
        f"with {latency:g} ms injected per management-API call (docs/benchmarks.md, *lambdacast local*); "
        "it includes the DynamoDB calls (to the emulator's moto server), the fan-out through the shipped "
        "engine (`DirectBroadcaster`: SigV4-signed posts over one pooled aiohttp session) and the ack.",
        "* **DynamoDB:** the request units of the publish's own requests, counted through the real "
        "`$default` handler against the template's table (docs/benchmarks.md, *DynamoDB per publish*): "
        "the numbering `TransactWriteItems` (the channel's counter, the history item, a `ConditionCheck` "
        "that the publisher is subscribed, the connection's shared rate-limit window; every item of a "
        "transaction costs 2 write units per KB), one strongly consistent `Query` per 1 MB of the "
        "channel's subscription items, and the `UpdateItem` that charges the bytes posted. Units follow "
        "AWS's size rules (`bench/ddb_units.py`).",
        "",
        "USD per **million published messages**:",
        "",
        _table(rows, memory_mb),
        "",
        "API Gateway dominates from 10 recipients on: every delivery is a billed message, so cost grows "
        "with deliveries whatever the backend does. The backend's own share (Lambda + DynamoDB) per "
        "delivery falls as the fan-out grows: DynamoDB stays at "
        f"{max((r.inputs.writes for r in rows), default=0)} write requests and a Query whose units grow "
        f"by one read unit per {_per_unit(rows)} subscribers (measured).",
        "",
        "### What the delivery guarantees and limits cost",
        "",
        "Of those write units, per 1 KB publish: the counter's compare-and-set and the history item "
        "(2 + 2: numbering exactly once, stored atomically with its number), the subscription check "
        "(2), the connection's rate window (2), the bytes charged (1). A publish with a `msgId` (the web "
        "client always sends one) adds its record (2) and, once it reached someone, its `done` mark (1); "
        "a signed-in publisher adds its user's window (2). `SharedRateLimits=false` removes the windows "
        "and the bytes charge (3 write units); `HistoryTtlSeconds=0` the history item. At $0.625 per "
        "million write units that is about $5.6 per million publishes for an anonymous publish with no "
        "`msgId` (9 write units, as measured above), about $8.8 with one and a signed-in user (14), "
        "beside $1 per million of every API Gateway "
        "message delivered.",
        "",
        "### Lambda gets a fraction of a CPU",
        "",
        f"At {memory_mb} MB Lambda gives the function {memory_mb}/{cm.FULL_VCPU_MB} of a vCPU, while "
        "the durations above were measured on a full core of this machine. The fan-out bench measured "
        + (
            f"**{cpu:.3f} ms of CPU per post** for the shipped engine (`DirectBroadcaster`) in "
            "the same run; a publish cannot finish before its posts' CPU time stretched by "
            f"{cm.FULL_VCPU_MB}/{memory_mb}. Where that floor is longer than the measured duration, "
            "the compute cost follows the floor:"
            if cpu is not None
            else "no CPU per post in this run (run the fan-out suite too)."
        ),
        "",
        _cpu_table(rows, memory_mb) if cpu is not None else "",
        "",
        "A boto3 fan-out would be CPU-bound much sooner at this memory size "
        + (
            f"(a boto3 `post_to_connection` pool with 64 threads: "
            f"{extra['boto3_cpu_ms_per_post']:.3f} ms of CPU per post, same run); "
            if extra.get("boto3_cpu_ms_per_post") is not None
            else "(docs/benchmarks.md); "
        )
        + "that is why the handlers ship the fast engine. More memory (more CPU per second, the same "
        "GB-s per unit of CPU work) shortens a CPU-bound publish further; API Gateway's messages stay "
        "the larger share either way.",
        "",
        "## Beside the per-message cost",
        "",
        f"* **Connection minutes:** 1,000 clients connected all month are {minutes / 1e6:,.1f} million "
        f"connection minutes, {_usd(minutes / 1e6 * p.apigw_per_million_connection_minutes)} a month, "
        "plus a `$connect` and a `$disconnect` invocation and a few DynamoDB writes per connection "
        "(and API Gateway closes every connection after 2 hours: 12 reconnects a day per client).",
        "* **History storage:** one item per message (the frame plus ~40 bytes of keys), deleted by TTL "
        "after `HistoryTtlSeconds` (1 day by default); DynamoDB storage is $0.25 per GB-month, "
        "so a million 300-byte messages kept for a day cost about a cent.",
        "",
        "## Channels beyond one Lambda: the SQS path",
        "",
        f"Past `QueueFanoutThreshold` ({path.threshold:,} recipients in template.yaml) the publishing "
        f"function queues the rest on `FanoutQueue`, {path.per_message} recipients per SQS message, "
        f"10 messages per `SendMessageBatch`, and `FanoutFunction` posts them, {path.esm_batch} messages "
        "per invocation (docs/fanout.md). Modelled from that configuration, not measured "
        "(`bench/cost_model.py`, `queue_cost`): a send call is billed per started 64 KB, each "
        "invocation adds one receive and one delete; USD per **million publishes**:",
        "",
        _queue_table(path, p),
        "",
        "SQS and the extra invocations are noise beside the API Gateway messages of the same "
        "deliveries. The `FanoutFunction` durations add up to about the posting work the publisher "
        "would have done itself (the same engine, the same posts), spread over parallel invocations.",
        "",
        "## What this leaves out",
        "",
        "* Real DynamoDB and API Gateway latencies: the durations come from the emulator on loopback with "
        "an injected management latency; DynamoDB calls went to moto over loopback.",
        "* Retries and 410 cleanups (a gone recipient costs a few deletes), CloudWatch Logs ingestion "
        "($0.50 per GB; the handlers log one line per publish) and X-Ray traces (Tracing is Active).",
        "* Data transfer out to the internet, which API Gateway charges on top of its messages.",
        "",
    ]
    return "\n".join(parts)
