"""``lambdacast check URL``, the real CLI as a subprocess, against the emulator.

Serving the project's template (AuthMode optional, a dev token granting presence channels) every
behaviour passes; serving the echo test app, which answers every frame with the frame itself, the
command names what broke and exits 1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lambdacast_local.testing import RunningEmulator, running_emulator

ROOT = Path(__file__).resolve().parents[2]
ECHO_APP = Path(__file__).parent / "apps" / "echo" / "template.yaml"
SECRET_PARAMETER = "/lambdacast/functional/check-secret"
LAMBDACAST = Path(sys.executable).with_name("lambdacast")


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return ROOT / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_options() -> dict[str, Any]:
    return {
        "parameter_overrides": {"AuthMode": "optional", "AuthSecretParameterName": SECRET_PARAMETER},
        "dev_token_parameter": SECRET_PARAMETER,
    }


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LAMBDACAST), "check", *args], capture_output=True, text=True, timeout=600, check=False
    )


def verdicts(stdout: str) -> dict[str, str]:
    """Behaviour name -> PASS / FAIL / SKIP, from the report's lines."""
    found = {}
    for line in stdout.splitlines():
        status, _, rest = line.partition("  ")
        if status in ("PASS", "FAIL", "SKIP"):
            found[rest.split()[0]] = status
    return found


async def _mint(emulator: RunningEmulator, name: str) -> str:
    base = emulator.ws_url.replace("ws://", "http://").rsplit("/", 1)[0]
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/_lambdacast/dev-token", json={"name": name}) as response,
    ):
        assert response.status == 200
        return str((await response.json())["token"])


async def test_every_behaviour_passes_against_the_project_and_the_exit_status_is_0(
    lambdacast: RunningEmulator,
):
    # GIVEN the project's backend and a token granting presence- channels
    token = await _mint(lambdacast, "Checker")
    listed = check("--list").stdout.splitlines()
    # WHEN `lambdacast check` runs against it with that token and a channel prefix
    result = check(lambdacast.ws_url, "--token", token, "--prefix", "ci-check-", "--timeout", "30")
    # THEN every listed behaviour has a PASS line, the summary says so, and the exit status is 0
    seen = verdicts(result.stdout)
    assert len(listed) == len(seen) >= 25, result.stdout
    assert set(seen.values()) == {"PASS"}, result.stdout
    assert f"{len(seen)} passed, 0 failed, 0 skipped" in result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_a_token_presence_is_skipped_loudly_and_strict_fails_on_it(lambdacast: RunningEmulator):
    # GIVEN the project's backend and no token
    # WHEN only the presence behaviour runs, then again with --strict
    plain = check(lambdacast.ws_url, "--only", "presence")
    strict = check(lambdacast.ws_url, "--only", "presence", "--strict")
    # THEN it is skipped saying why; only --strict turns the skip into exit status 1
    assert verdicts(plain.stdout) == {"presence": "SKIP"}
    assert "needs --token" in plain.stdout
    assert plain.returncode == 0
    assert strict.returncode == 1


def test_against_an_app_that_breaks_the_protocol_it_fails_and_exits_1() -> None:
    # GIVEN the echo test app: every frame is posted back as it came, no welcome, no ack, no errors
    with running_emulator(ECHO_APP) as echo_app:
        # WHEN `lambdacast check` runs against it
        result = check(echo_app.ws_url, "--timeout", "3")
    # THEN the behaviours it breaks are FAIL lines saying what came instead, and the exit status is 1
    seen = verdicts(result.stdout)
    assert result.returncode == 1, result.stdout
    for name in ("hello", "ping", "subscribe", "publish", "error:invalid_json", "history", "recovery"):
        assert seen[name] == "FAIL", result.stdout
    assert "FAIL  hello" in result.stdout
    assert "expected a welcome frame, got {" in result.stdout
