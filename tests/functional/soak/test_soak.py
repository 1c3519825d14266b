"""A soak under injected faults: the delivery guarantees, checked end to end on the project's template.

Publishers publish with msgIds and retry until acked (and sometimes resend an acked msgId); steady
subscribers stay; recovering subscribers drop their sockets (closed or reset) and resubscribe with since +
epoch; while one of them is away the oldest messages of a channel expire from the history; presence tabs
join and leave (unsubscribing or closing); watchers keep the member list from versioned announcements.
All of it under DynamoDB throttles, 500s and lost replies, @connections 429/500 and Lambda crashes.

After the load the faults are switched off (their counts kept) so the final reads measure the state the
faults left, not new faults; then the invariants of docs/fanout.md ("Soak") are checked.

``LAMBDACAST_SOAK_SCALE=large`` (``make soak``) runs it bigger; ``LAMBDACAST_SOAK_SEED`` repeats a run's
workload and fault streams (thread scheduling still varies the order of calls, so faults land elsewhere).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from lambdacast.history import history_pk, seq_key
from soak_logs import LogTap
from soak_verdict import (
    Verdict,
    check_acks,
    check_invocations,
    check_logs,
    check_presence,
    check_streams,
    check_table,
    raw_duplicates,
)
from soak_workload import Soak, mint_token, scale_from_env

from lambdacast_local.runtime_env import FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from lambdacast_local.testing import RunningEmulator

ROOT = Path(__file__).resolve().parents[3]
SECRET_PARAMETER = "/lambdacast/functional/soak-secret"
FAULTS = os.environ.get(
    "LAMBDACAST_SOAK_FAULTS",
    "dynamodb:throttle=0.05,dynamodb:lost-reply=0.03,dynamodb:error=0.01,"
    "connections:429=0.03,connections:500=0.02,connections:410=0.001,lambda:crash=0.01",
)
SEED = int(os.environ.get("LAMBDACAST_SOAK_SEED", "9"))
SCALE_NAME, SCALE = scale_from_env()

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return ROOT / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {
        "parameter_overrides": {"AuthMode": "optional", "AuthSecretParameterName": SECRET_PARAMETER},
        "dev_token_parameter": SECRET_PARAMETER,
        "faults": FAULTS,
        "fault_seed": SEED,
    }


class Table:
    """The project's table, read and written on the emulator's fault-free endpoint (never faulted)."""

    def __init__(self, emulator: RunningEmulator) -> None:
        app = emulator.emulator.app_model
        assert app is not None
        self.name = app.functions["DefaultFunction"].environment["TABLE_NAME"]
        self.client = boto3.client(
            "dynamodb",
            endpoint_url=emulator.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id=FAKE_ACCESS_KEY,
            aws_secret_access_key=FAKE_SECRET_KEY,
        )

    def items(self, pk: str, sk: str | None = None) -> list[dict[str, Any]]:
        values: dict[str, Any] = {":pk": {"S": pk}}
        condition = "pk = :pk"
        if sk is not None:
            condition += " AND sk = :sk"
            values[":sk"] = {"S": sk}
        found: list[dict[str, Any]] = []
        for page in self.client.get_paginator("query").paginate(
            TableName=self.name,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
        ):
            found += page["Items"]
        return found

    def expire(self, channel: str, epoch: str, upto: int) -> None:
        """Seqs 1..upto of the channel's history pass their TTL (DynamoDB deletes lazily; reads skip them)."""
        past = str(int(time.time()) - 1)
        for seq in range(1, upto + 1):
            self.client.update_item(
                TableName=self.name,
                Key={"pk": history_pk(channel), "sk": {"S": seq_key(epoch, seq)}},
                UpdateExpression="SET #ttl = :past",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={":past": {"N": past}},
            )


async def test_soak_under_faults_loses_nothing_duplicates_nothing_and_presence_converges(
    lambdacast: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the project's backend under DynamoDB, @connections and Lambda faults, its functions' logs tapped
    tap = LogTap(sys.stderr)
    monkeypatch.setattr(sys, "stderr", tap)
    table = Table(lambdacast)
    base = lambdacast.ws_url.replace("ws://", "http://").rsplit("/", 1)[0]
    soak = Soak(
        url=lambdacast.ws_url,
        mint=lambda name: mint_token(base, name),
        expire=table.expire,
        scale=SCALE,
        seed=SEED,
    )
    started = time.monotonic()
    try:
        # WHEN publishers, steady and recovering subscribers and presence tabs run their course
        await soak.load()
        await soak.settle()
        # AND, the load over and every frame in, the faults are switched off (counts kept) for the final reads
        faults = lambdacast.faults.as_json()
        lambdacast.faults.configure("")
        await soak.tails()
        await soak.settle(quiet_s=1.0)
        listed_before_flush, _ = await soak.flush_presence()
        listed = await soak.watchers[0].request({"action": "presence", "channel": soak.presence_channel})
        # THEN every invariant holds
        verdict = Verdict()
        tops = check_acks(soak, verdict)
        check_table(soak, tops, table.items, verdict)
        streams = check_streams(soak, tops, verdict)
        tally = table.items(f"PRES#{soak.presence_channel}", "COUNT")
        check_presence(soak, listed["members"], tally[0] if tally else None, verdict)
        failed = check_invocations(list(lambdacast.invocations), verdict)
        disconnected = {inv.connection_id for inv in lambdacast.invocations_of("$disconnect")}
        logged = check_logs(tap.errors, disconnected, verdict)
        verdict.check(not soak.tally.unexpected, f"unexpected frames: {soak.tally.unexpected[:5]}")
    finally:
        await soak.close()
    subscribers = [*soak.publishers, *soak.steady, *soak.recovering]
    figures = {
        "scale": SCALE_NAME,
        "seed": SEED,
        "faults": FAULTS,
        "load seconds": round(soak.load_seconds, 1),
        "total seconds": round(time.monotonic() - started, 1),
        "channels": {ch: {"epoch": e, "messages": n} for ch, (e, n) in tops.items()},
        "messages": sum(n for _, n in tops.values()),
        "msgId resends after an ack": sum(a.resent for a in soak.acks.values()),
        "subscribers": {
            "publishers (echo)": len(soak.publishers),
            "steady": len(soak.steady),
            "recovering": len(soak.recovering),
        },
        "offline periods": soak.offline_periods,
        "expired from history": [f"{e.channel} 1..{e.upto}" for e in soak.expiries],
        "streams": streams,
        "raw duplicate frames": raw_duplicates(subscribers),
        "history requests for live holes and tails": sum(c.history_fills for c in subscribers),
        "presence": {
            "tabs": len(soak.tabs),
            "truth": len(soak.presence_truth()),
            "members only the flush removed": len(listed_before_flush - soak.presence_truth()),
            "watcher frames applied": sum(w.presence[soak.presence_channel].applied for w in soak.watchers),
            "stale frames ignored": sum(
                w.presence[soak.presence_channel].stale_ignored for w in soak.watchers
            ),
            "version skips (refetched)": sum(w.presence[soak.presence_channel].skips for w in soak.watchers),
        },
        "client": {
            "requests": dict(soak.tally.requests),
            "retries": dict(soak.tally.retries),
            "late replies": soak.tally.late_replies,
            "connects": soak.tally.connects,
            "refused handshakes": dict(soak.tally.connect_failures),
            "sockets dropped by the server": soak.tally.drops,
            "recoveries": dict(soak.tally.recoveries),
        },
        "faults injected": faults,
        "failed invocations": failed,
        "function ERROR log lines": logged,
        "violations": len(verdict.violations),
    }
    print("\nSOAK FIGURES " + json.dumps(figures, indent=2, sort_keys=False))
    assert not verdict.violations, "\n".join(verdict.violations)
