"""The authorizer's cold start stays small: PyJWT and boto3 load only when a token must be verified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from auth_helpers import EVENTS

SHARED = Path(__file__).resolve().parents[3] / "shared"

PROBE = """
import json, sys
from lambdacast.auth.authorizer import default_authorizer
result = default_authorizer().authorize(json.load(open(sys.argv[1])))
print(json.dumps({"principal": result["principalId"], "loaded": sorted(
    m for m in ("jwt", "boto3", "cryptography") if m in sys.modules)}))
"""


def run_probe(event_name: str, mode: str) -> dict[str, object]:
    env = {
        **os.environ,
        "AUTH_MODE": mode,
        "AUTH_SECRET_PARAMETER": "/never/read",
        "PYTHONPATH": str(SHARED),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(EVENTS / f"{event_name}.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_anonymous_connect_loads_neither_pyjwt_nor_boto3() -> None:
    # GIVEN a fresh interpreter (a cold start) with AUTH_MODE=optional
    # WHEN a $connect without a token is authorized
    outcome = run_probe("authorizer-no-token", "optional")
    # THEN it is allowed anonymously and neither PyJWT nor boto3 was imported
    assert outcome == {"principal": "anonymous", "loaded": []}


def test_token_connect_loads_pyjwt() -> None:
    # GIVEN a fresh interpreter with AUTH_MODE=required
    # WHEN a $connect with a malformed token is authorized (refused before any key is fetched)
    outcome = run_probe("authorizer-bad-token", "required")
    # THEN PyJWT was loaded to read it (so the probe above can see an import when one happens)
    assert outcome["principal"] == "anonymous"
    assert "jwt" in outcome["loaded"]  # type: ignore[operator]
