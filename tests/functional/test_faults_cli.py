"""``lambdacast local --faults ... --fault-seed N`` as a user runs it: the banner and the summary on exit."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

APP = Path(__file__).parent / "apps" / "faults" / "template.yaml"


def dynamodb_calls(base: str) -> int:
    with urllib.request.urlopen(f"{base}/_lambdacast/faults", timeout=10) as response:
        return int(json.load(response)["targets"]["dynamodb"]["calls"])


def test_cli_announces_its_faults_and_prints_a_one_line_summary_on_exit():
    # GIVEN `lambdacast local` with DynamoDB errors on every call, a latency, lambda crashes at rate 0
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lambdacast_local.cli",
            "local",
            "--template",
            str(APP),
            "--port",
            "0",
            "--no-web",
            "--faults",
            "dynamodb:error=1,lambda:crash=0",
            "--management-latency-ms",
            "1",
            "--fault-seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = []
        while not banner or "Press Ctrl-C" not in banner[-1]:
            line = process.stdout.readline()
            assert line, f"the CLI exited before it was ready: {banner}"
            banner.append(line)
        url = next(m.group(1) for line in banner if (m := re.search(r"WebSocket URL:\s+(\S+)", line)))
        base = url.rsplit("/", 1)[0].replace("ws://", "http://")
        # WHEN one client's message makes a handler try a DynamoDB write twice (both attempts fail)
        with connect(url) as ws:
            ws.send(json.dumps({"do": "add", "key": "k", "attempts": 2}))
            deadline = time.monotonic() + 60
            while dynamodb_calls(base) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert dynamodb_calls(base) == 2
        # AND the user presses Ctrl-C
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # THEN the banner named the faults (the latency flag folded in) and the seed that repeats them
    assert any(
        "Faults:" in line
        and "dynamodb:error=1,connections:latency=1,lambda:crash=0 (--fault-seed 3 repeats them)" in line
        for line in banner
    )
    # AND it exited cleanly, its last line the summary: 2 DynamoDB calls, both errors; no @connections
    # call; 3 invocations ($connect, $default, $disconnect), none crashed
    assert process.returncode == 0
    assert output.strip().splitlines()[-1] == (
        "faults injected (seed 3): dynamodb error 2/2; connections latency 1 ms 0/0; lambda crash 0/3"
    )
