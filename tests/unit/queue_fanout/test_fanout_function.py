"""functions/fanout/app.py: as light to import as the other handlers; what it logs and counts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lambdacast.delivery.queue_worker import REFUSED_BATCHES
from lambdacast.handlers import Runtime
from queue_fanout_support import ROOT, LambdaContext, ManagementApi, batch_of, core


def test_importing_the_fanout_handler_does_not_import_boto3_aiohttp_or_xray() -> None:
    # GIVEN a fresh interpreter with only the layer on the path (as on Lambda)
    heavy = ("boto3", "botocore.client", "aiohttp", "aws_xray_sdk.core")
    code = f"import json, sys; import app; print(json.dumps({{m: m in sys.modules for m in {heavy!r}}}))"
    # WHEN the handler module is imported
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / "functions" / "fanout",
        env={"PYTHONPATH": str(ROOT / "shared"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    # THEN none of the heavy modules were loaded (they load on the first batch)
    assert json.loads(out.stdout) == dict.fromkeys(heavy, False)


def test_the_deployed_handler_logs_counts_and_drops_batches_naming_another_endpoint(
    runtime: Runtime,
    api: ManagementApi,
    capsys: pytest.CaptureFixture[str],
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    # GIVEN functions/fanout/app.py with this stack's endpoint configured, and an SQS event whose
    # two batches name plain http on another host and another API's execute-api host
    handler = core._load_app("fanout").handler
    event = json.loads((Path(__file__).parent / "sqs-fanout.json").read_text())
    event["Records"][0]["body"] = batch_of(["E1"], endpoint="http://evil.example/dev").to_body()
    other = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/dev"
    event["Records"][1]["body"] = batch_of(["E2"], endpoint=other).to_body()
    capsys.readouterr()
    # WHEN Lambda invokes it
    result = handler(event, LambdaContext())
    # THEN no request was made and neither record goes back to SQS (dropping is final)...
    assert sum(api.attempts.values()) == 0
    assert result == {"batchItemFailures": []}
    # ...each is logged at ERROR with the endpoint it named...
    errors = [x for x in log_lines() if x.get("level") == "ERROR"]
    assert sorted(x["endpoint"] for x in errors) == sorted(["http://evil.example/dev", other])
    # ...and counted in the invocation's EMF document
    (emf,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    refused = emf[REFUSED_BATCHES]
    assert (sum(refused) if isinstance(refused, list) else refused) == 2
