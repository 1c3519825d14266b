"""A process that posted through the transport exits quietly: its cached session is closed at exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared"

# One post to a port nothing listens on (refused at once), then a plain exit without ``close()``, as a
# local emulator's worker exits when its stdin closes.
SCRIPT = """
from botocore.credentials import Credentials
from lambdacast.delivery.transport import post_many

outcome = post_many(
    "http://127.0.0.1:9/dev", [("abc", b"x")], concurrency=1, region="us-east-1",
    credentials=Credentials("AKIDEXAMPLE", "secret"), max_attempts=1,
)
print("failed", len(outcome.failed))
"""


def test_an_exiting_process_leaves_no_unclosed_session_behind() -> None:
    # GIVEN a process whose transport opened its pooled session for a post
    environment = {**os.environ, "PYTHONPATH": str(SHARED), "PYTHONWARNINGS": "default"}
    # WHEN it exits without closing anything
    command = [sys.executable, "-c", SCRIPT]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=60, check=False)
    # THEN the post was made (and failed: nothing listens), and aiohttp had nothing to warn about
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "failed 1"
    assert "Unclosed" not in done.stderr, done.stderr
