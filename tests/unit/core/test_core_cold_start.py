"""Handler modules stay light to import: boto3 and the X-Ray SDK load on first use, not at import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from core_support import ROOT, FakeLambdaContext
from lambdacast import observability


@pytest.mark.parametrize("route", ["connect", "disconnect", "default", "publish"])
def test_importing_a_handler_does_not_import_boto3_or_xray(route: str) -> None:
    # GIVEN a fresh interpreter with only the layer on the path (as on Lambda)
    code = (
        "import json, sys; import app; "
        "print(json.dumps({m: m in sys.modules for m in ('boto3', 'botocore.client', 'aws_xray_sdk.core')}))"
    )
    # WHEN the handler module is imported
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / "functions" / route,
        env={"PYTHONPATH": str(ROOT / "shared"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    # THEN none of the heavy modules were loaded
    assert json.loads(out.stdout) == {"boto3": False, "botocore.client": False, "aws_xray_sdk.core": False}


def test_trace_handler_traces_through_powertools_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN tracing not disabled by env (Powertools itself stays inert outside Lambda)
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    calls: list[str] = []

    @observability.trace_handler
    def handler(event: dict[str, str], context: object) -> dict[str, int]:
        calls.append(event["k"])
        return {"statusCode": 200}

    # WHEN invoked twice THEN the handler runs each time through one lazily created tracer
    assert handler({"k": "a"}, FakeLambdaContext()) == {"statusCode": 200}
    assert handler({"k": "b"}, FakeLambdaContext()) == {"statusCode": 200}
    assert calls == ["a", "b"]
    assert observability.get_tracer() is observability.get_tracer()
