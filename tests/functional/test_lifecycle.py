"""Connection limits (idle timeout, maximum duration), clean shutdown, the CLI and --reload."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from lambdacast_local.testing import RunningEmulator, running_emulator

ECHO = Path(__file__).parent / "apps" / "echo"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _disconnect_status(emulator: Any, connection_id: str) -> int | None:
    for inv in emulator.invocations_of("$disconnect"):
        if inv.connection_id == connection_id and inv.ok:
            return int(json.loads(inv.result["body"])["disconnectStatusCode"])
    return None


def _disconnect_logged(emulator: Any, connection_id: str) -> bool:
    return any(
        inv.connection_id == connection_id and inv.ok for inv in emulator.invocations_of("$disconnect")
    )


@pytest.fixture(scope="module")
def short_idle() -> Any:
    with running_emulator(ECHO / "template.yaml", idle_timeout_s=1.0, max_duration_s=3600.0) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def short_max() -> Any:
    with running_emulator(ECHO / "template.yaml", idle_timeout_s=3600.0, max_duration_s=2.0) as emulator:
        yield emulator


def connect_with_id(emulator: Any) -> tuple[Any, str]:
    """Connect and learn the connection id from the $connect invocation (no message: the idle clock runs)."""
    before = {inv.connection_id for inv in emulator.invocations_of("$connect")}
    ws = connect(emulator.ws_url)
    (connection_id,) = {inv.connection_id for inv in emulator.invocations_of("$connect")} - before
    return ws, connection_id


def test_idle_connection_is_closed_with_1001_and_disconnect_fires(short_idle):
    # GIVEN a connection that sends nothing (idle timeout 1 s)
    ws, connection_id = connect_with_id(short_idle)
    # WHEN it stays idle
    with ws, pytest.raises(ConnectionClosed):
        ws.recv(timeout=30)
    # THEN the server closed it with 1001 and $disconnect fired
    assert ws.close_code == 1001
    assert short_idle.wait_for(lambda e: _disconnect_logged(e, connection_id))
    assert _disconnect_status(short_idle, connection_id) == 1001


def test_busy_connection_is_closed_at_the_maximum_duration(short_max):
    # GIVEN a connection that keeps talking (idle timeout 1 h; maximum duration 2 s)
    with connect(short_max.ws_url) as ws:
        closed = False
        for _ in range(200):
            try:
                ws.send("tick")
                ws.recv(timeout=15)
            except ConnectionClosed:
                closed = True
                break
            time.sleep(0.2)
    # THEN it was closed with 1001 anyway
    assert closed
    assert ws.close_code == 1001


def test_stop_closes_sockets_fires_disconnect_and_reaps_workers():
    # GIVEN an emulator with an open connection and warm workers
    emulator = RunningEmulator(ECHO / "template.yaml").start()
    stopped = False
    try:
        with connect(emulator.ws_url) as ws:
            ws.send("whoami")
            connection_id = str(ws.recv(timeout=15))
            pids = {inv.worker_pid for inv in emulator.invocations}
            # WHEN the emulator stops
            emulator.stop()
            stopped = True
            # THEN the client saw 1001, $disconnect fired, and no worker process is left
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=15)
    finally:
        if not stopped:
            emulator.stop()
    assert ws.close_code == 1001
    assert _disconnect_logged(emulator, connection_id)
    assert pids
    assert not any(_alive(pid) for pid in pids)


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text()
        found |= {int(child) for child in text.split()}
    return found


def test_cli_prints_urls_logs_invocations_and_shuts_down_on_ctrl_c():
    # GIVEN `lambdacast local` running the echo app on a free port
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lambdacast_local.cli",
            "local",
            "--template",
            str(ECHO / "template.yaml"),
            "--port",
            "0",
            "--no-web",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        url = None
        while url is None:
            line = process.stdout.readline()
            assert line, "the CLI exited before printing its URL"
            lines.append(line)
            match = re.search(r"WebSocket URL:\s+(\S+)", line)
            url = match.group(1) if match else None
        with connect(url) as ws:
            ws.send("hello cli")
            assert ws.recv(timeout=15) == "hello cli"
            workers = _children(process.pid)
            # WHEN Ctrl-C arrives while a client is connected
            process.send_signal(signal.SIGINT)
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=30)
        output = process.communicate(timeout=30)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # THEN it exits cleanly, having logged each invocation (the $disconnect too) and reaped its workers
    assert process.returncode == 0
    assert re.search(r"\$default\s+EchoFunction\s+[\d.]+ ms\s+(cold|warm)", output)
    assert "$disconnect" in output
    assert workers
    assert not any(_alive(pid) for pid in workers)


def test_cli_refuses_a_bad_template_in_one_sentence(tmp_path):
    # GIVEN a template whose route targets a function that is not in the template
    template = tmp_path / "template.yaml"
    template.write_text(
        (ECHO / "template.yaml")
        .read_text()
        .replace("!GetAtt EchoFunction.Arn", "arn:aws:lambda:us-east-1:1:function:Elsewhere")
    )
    # WHEN the CLI is started on it
    result = subprocess.run(
        [sys.executable, "-m", "lambdacast_local.cli", "local", "--template", str(template), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # THEN it exits with status 2 and one line naming the resource, without a traceback
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Elsewhere" in result.stderr


def test_reload_restarts_workers_when_code_changes(tmp_path):
    # GIVEN a copy of the echo app served with --reload
    shutil.copytree(ECHO, tmp_path / "echo")
    handler = tmp_path / "echo" / "src" / "app.py"
    with (
        running_emulator(tmp_path / "echo" / "template.yaml", reload=True) as emulator,
        connect(emulator.ws_url) as ws,
    ):
        ws.send("before")
        assert ws.recv(timeout=15) == "before"
        # WHEN the handler's code changes
        handler.write_text(handler.read_text().replace("payload = body\n", "payload = 'v2:' + body\n"))
        # THEN a later message runs the new code in a fresh worker
        reply = ""
        for _ in range(100):
            ws.send("after")
            reply = str(ws.recv(timeout=15))
            if reply != "after":
                break
            time.sleep(0.1)
    assert reply == "v2:after"


def test_web_dir_is_served_with_a_config_naming_this_emulator(tmp_path):
    # GIVEN a web folder (with a stale config.json pointing elsewhere)
    (tmp_path / "index.html").write_text("<h1>demo</h1>")
    (tmp_path / "config.json").write_text('{"webSocketUrl": "wss://deployed.example"}')
    with running_emulator(ECHO / "template.yaml", web_dir=tmp_path, web_port=0) as emulator:
        base = f"http://127.0.0.1:{emulator.emulator.web_port}"
        # WHEN the page and its config are fetched
        with urllib.request.urlopen(f"{base}/", timeout=15) as page:
            html = page.read().decode()
        with urllib.request.urlopen(f"{base}/config.json", timeout=15) as response:
            config = json.loads(response.read())
    # THEN the page is served and config.json names the local WebSocket URL
    assert "<h1>demo</h1>" in html
    assert config == {"webSocketUrl": emulator.ws_url}


def test_server_posts_do_not_keep_an_idle_client_alive(short_idle):
    # GIVEN a client that only receives (the backend posts to it every 0.2 s)
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=short_idle.management_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    ws, connection_id = connect_with_id(short_idle)
    with ws:
        # WHEN the client itself stays silent past the idle timeout
        closed = False
        for _ in range(100):
            try:
                client.post_to_connection(ConnectionId=connection_id, Data=b"tick")
                ws.recv(timeout=15)
            except (ConnectionClosed, client.exceptions.GoneException):
                closed = True
                break
            time.sleep(0.2)
    # THEN it is closed as idle (1001) all the same
    assert closed
    assert ws.close_code == 1001


def test_dropped_tcp_connection_fires_disconnect_with_1006(short_max):
    # GIVEN a connection
    ws, connection_id = connect_with_id(short_max)
    with ws:
        # WHEN its TCP connection drops without a close frame
        ws.socket.shutdown(socket.SHUT_RDWR)
    # THEN $disconnect fires with 1006
    assert short_max.wait_for(lambda e: _disconnect_logged(e, connection_id))
    assert _disconnect_status(short_max, connection_id) == 1006
