"""serverless-offline for the side-by-side echo: installed from npm into the user cache, run on one app.

``install`` puts serverless v3 and serverless-offline 13 in ``~/.cache/lambdacast/bench/serverless-offline``
once (the bench may download; tests never run this); it answers why not, in one line, when npm cannot.
``running`` serves ``bench/apps/echo/src/app.py`` (the very handlers ``lambdacast local`` runs from the
app's template.yaml) from a throwaway service folder, on free ports of 127.0.0.1.

serverless-offline starts Python handlers as ``python3`` from ``PATH`` whatever the runtime says;
``VIRTUAL_ENV`` puts the bench's own interpreter first, the Python 3.11 that ``lambdacast local`` runs
the app's ``python3.11`` functions on, with the same boto3.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bench.local_measure import LocalEmulator
from lambdacast_local.runtimes.cache import cache_root

ROOT = Path(__file__).resolve().parent.parent
APP_SOURCE = ROOT / "bench" / "apps" / "echo" / "src"
PACKAGES = ("serverless@3", "serverless-offline@13")
_LISTENING = re.compile(r"Offline \[websocket\] listening on (ws://\S+)")
_SERVICE = """\
service: lambdacast-bench-echo
frameworkVersion: "3"
provider:
  name: aws
  runtime: python3.11
  region: us-east-1
  stage: bench
  timeout: 29
  environment:
    AWS_ACCESS_KEY_ID: bench
    AWS_SECRET_ACCESS_KEY: bench
    AWS_DEFAULT_REGION: us-east-1
    MANAGEMENT_ENDPOINT: http://127.0.0.1:{ws_port}
plugins:
  - serverless-offline
custom:
  serverless-offline:
    host: 127.0.0.1
    websocketPort: {ws_port}
    httpPort: {http_port}
    lambdaPort: {lambda_port}
    noPrependStageInUrl: true
functions:
  connect:
    handler: src/app.connect
    events:
      - websocket: $connect
  disconnect:
    handler: src/app.disconnect
    events:
      - websocket: $disconnect
  echo:
    handler: src/app.echo
    events:
      - websocket: $default
"""


def folder() -> Path:
    """Where serverless and serverless-offline are installed."""
    return cache_root() / "bench" / "serverless-offline"


def version(installed: Path) -> str:
    """``serverless-offline 13.x.y, serverless 3.x.y`` as installed."""
    import json

    def of(name: str) -> str:
        manifest = installed / "node_modules" / name / "package.json"
        return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])

    return f"serverless-offline {of('serverless-offline')}, serverless {of('serverless')}"


def install() -> Path | str:
    """The install folder, installing it when missing; or why it cannot be had (one line)."""
    target = folder()
    marker = target / "node_modules" / "serverless-offline" / "package.json"
    if marker.exists() and (target / "node_modules" / "serverless" / "package.json").exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed"
    target.mkdir(parents=True, exist_ok=True)
    (target / "package.json").write_text('{"name": "lambdacast-bench-offline", "private": true}\n')
    command = [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES]
    try:
        done = subprocess.run(command, cwd=target, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        return "npm install timed out after 15 minutes"
    if done.returncode != 0 or not marker.exists():
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"npm install {' '.join(PACKAGES)} failed: {lines[-1] if lines else done.returncode}"
    return target


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextmanager
def running(installed: Path) -> Iterator[LocalEmulator]:
    """serverless-offline serving the echo app until the block ends (its output kept, like the CLI's)."""
    ws_port, http_port, lambda_port = _free_ports(3)
    with tempfile.TemporaryDirectory(prefix="lambdacast-bench-offline-") as service:
        where = Path(service)
        shutil.copytree(APP_SOURCE, where / "src")
        (where / "node_modules").symlink_to(installed / "node_modules", target_is_directory=True)
        (where / "serverless.yml").write_text(
            _SERVICE.format(ws_port=ws_port, http_port=http_port, lambda_port=lambda_port)
        )
        env = {
            **os.environ,
            "VIRTUAL_ENV": sys.prefix,  # PATH gets this venv's bin first: its python3 runs the handlers
            "SLS_TELEMETRY_DISABLED": "1",
            "SLS_NOTIFICATIONS_MODE": "off",
            "SLS_DEPRECATION_DISABLE": "*",
        }
        serverless = installed / "node_modules" / "serverless" / "bin" / "serverless.js"
        process = subprocess.Popen(
            ["node", str(serverless), "offline", "start"],
            cwd=where,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # its Python workers go with it when the group is signalled
        )
        assert process.stdout is not None
        try:
            emulator = _await_listening(process)
            yield emulator
        finally:
            _stop(process)


def _await_listening(process: subprocess.Popen[str]) -> LocalEmulator:
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("serverless-offline exited before listening:\n" + "".join(seen[-20:]))
        seen.append(line)
        match = _LISTENING.search(line)
        if match:
            emulator = LocalEmulator(process, match.group(1))
            threading.Thread(
                target=_pump, args=(process.stdout, emulator), daemon=True, name="serverless-offline-output"
            ).start()
            return emulator
    raise RuntimeError("serverless-offline did not listen within 120 s:\n" + "".join(seen[-20:]))


def _pump(stream: IO[str], emulator: LocalEmulator) -> None:
    for text in stream:
        emulator.lines.append((time.monotonic(), text.rstrip("\n")))


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError):  # Python workers it left behind (the group is ours)
        os.killpg(process.pid, signal.SIGKILL)
