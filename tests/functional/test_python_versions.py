"""Python functions on the interpreter their Runtime names, each with its own packages, through real sockets.

Each function posts a report of its own runtime to the client through ``@connections`` at the endpoint it
builds from the API id and the region (so the report arriving at all shows that hostname reached the
emulator).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from lambdacast_local.runtimes.interpreters import find_python

APP = Path(__file__).parent / "apps" / "python-versions"
VERSIONS = {"py39": (3, 9), "py312": (3, 12)}


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP / "template.yaml"


def report(lambdacast: Any, action: str) -> dict[str, Any]:
    with connect(lambdacast.ws_url, open_timeout=30) as ws:
        ws.send(json.dumps({"action": action}))
        answer: dict[str, Any] = json.loads(ws.recv(timeout=60))
    return answer


@pytest.mark.parametrize("action", sorted(VERSIONS))
def test_each_function_runs_on_the_python_its_runtime_names(lambdacast, action):
    major, minor = VERSIONS[action]
    if find_python(f"{major}.{minor}") is None:
        pytest.skip(f"SKIPPED LOUDLY: no Python {major}.{minor} on this machine (pyenv, uv, PATH)")
    # WHEN the function reports its interpreter
    answer = report(lambdacast, action)
    # THEN it is the declared version, with boto3 as Lambda's runtime provides it
    assert tuple(answer["version"][:2]) == (major, minor)
    assert answer["boto3"]


def test_requirements_are_installed_for_their_own_function_only(lambdacast):
    # WHEN both functions report what they can import
    py39, py312 = report(lambdacast, "py39"), report(lambdacast, "py312")
    # THEN only the 3.9 function, whose CodeUri has a requirements.txt naming tomli, can import tomli
    assert py39["tomli"] is True
    assert py312["tomli"] is False
    # AND neither sees the emulator's own packages
    assert not any(answer[name] for answer in (py39, py312) for name in ("aiohttp", "moto"))


def test_aws_hostnames_resolve_to_the_emulator_and_others_are_untouched(lambdacast):
    # WHEN the 3.12 function lists DynamoDB tables at https://dynamodb.<region>.amazonaws.com
    answer = report(lambdacast, "py312")
    # THEN the embedded DynamoDB answered over verified TLS, reached on 127.0.0.1
    assert answer["tables"] == ["versions_table"]
    host, port = answer["dynamodb_resolves_to"]
    assert host == "127.0.0.1"
    assert port != 443
    # AND localhost:443 still resolves to itself, port 443
    assert answer["localhost_resolves_to"] == ["127.0.0.1", 443]
