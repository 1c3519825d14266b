"""functions/fanout/app.py is as light to import as the other handlers."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


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
