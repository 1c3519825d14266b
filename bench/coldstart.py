"""Cold start: the time to import each ``functions/*/app.py`` in a fresh interpreter vs ``import boto3``.

Each measurement is a new ``python`` process that times only the import (interpreter start-up is
the same for every row and excluded), with ``PYTHONPATH=shared:functions/<name>`` as the layer and
the code would be laid out in Lambda, and the environment Lambda would give it: the template's
variables (``!Ref`` parameters resolved to their defaults, other intrinsics to placeholders) plus
the runtime's own (``AWS_LAMBDA_FUNCTION_NAME`` and friends, so Powertools' Tracer is enabled as
it is in Lambda). Rows alternate within each round; the figure is the median of the rounds.
One extra ``-X importtime`` run per handler names the heaviest top-level imports.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdacast_local.template import load_yaml

# The import, then what ``import boto3`` still costs afterwards: a handler that defers boto3 to its
# first invocation has moved that cost, not removed it, and the report says so.
_TIMER = (
    "import time, json; t0 = time.perf_counter(); import {module}; t1 = time.perf_counter(); "
    "import boto3; print(json.dumps([t1 - t0, time.perf_counter() - t1]))"
)


@dataclass
class Row:
    """One thing imported, timed over several fresh interpreters."""

    name: str
    module: str
    pythonpath: str
    env: dict[str, str]
    samples: list[float] = field(default_factory=list)
    deferred: list[float] = field(default_factory=list)
    heaviest: list[tuple[str, float]] = field(default_factory=list)
    error: str = ""

    @property
    def median_ms(self) -> float:
        return 1000 * statistics.median(self.samples) if self.samples else float("nan")

    @property
    def deferred_ms(self) -> float:
        """Median ms ``import boto3`` still took after the import (0 if it was already loaded)."""
        return 1000 * statistics.median(self.deferred) if self.deferred else float("nan")


def _value(raw: Any, parameters: Mapping[str, Any]) -> str:
    if isinstance(raw, dict) and "Ref" in raw:
        default = parameters.get(str(raw["Ref"]), {}).get("Default")
        return str(default) if default is not None else f"bench-{raw['Ref']}"
    if isinstance(raw, dict):
        return "https://abc123.execute-api.us-east-1.amazonaws.com/prod" if "Fn::Sub" in raw else "bench"
    return str(raw)


def handler_envs(root: Path) -> dict[str, dict[str, str]]:
    """Function folder name -> the environment variables the template gives it."""
    template = load_yaml(root / "template.yaml")
    parameters = template.get("Parameters", {})
    shared = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    envs: dict[str, dict[str, str]] = {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        folder = Path(str(props.get("CodeUri", ""))).name
        own = props.get("Environment", {}).get("Variables", {})
        envs[folder] = {k: _value(v, parameters) for k, v in {**shared, **own}.items()}
    return envs


def _lambda_env(function: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "PYTHONDONTWRITEBYTECODE"}}
    return {
        **keep,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDBENCHMARK",
        "AWS_SECRET_ACCESS_KEY": "bench-secret-key",
        "AWS_SESSION_TOKEN": "bench-token",
        "AWS_LAMBDA_FUNCTION_NAME": f"lambdacast-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "_HANDLER": "app.handler",
    }


def rows(root: Path) -> list[Row]:
    """``import boto3`` first, then every handler, then the delivery transport module on its own."""
    envs = handler_envs(root)
    baseline_env = _lambda_env("baseline")
    out = [Row("import boto3 (baseline)", "boto3", "", baseline_env)]
    for app in sorted((root / "functions").glob("*/app.py")):
        name = app.parent.name
        env = {**_lambda_env(name), **envs.get(name, {})}
        out.append(Row(f"functions/{name}/app.py", "app", f"{root / 'shared'}:{app.parent}", env))
    out.append(
        Row(
            "lambdacast.delivery.transport (module only)",
            "lambdacast.delivery.transport",
            str(root / "shared"),
            baseline_env,
        )
    )
    return out


def _run(row: Row, *, importtime: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**row.env, "PYTHONPATH": row.pythonpath} if row.pythonpath else dict(row.env)
    command = [
        sys.executable,
        *(["-X", "importtime"] if importtime else []),
        "-c",
        _TIMER.format(module=row.module),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def _heaviest(stderr: str, module: str, top: int = 6) -> list[tuple[str, float]]:
    """Where the import of ``module`` spends its time: self ms summed per top-level package.

    ``-X importtime`` prints a module's imports before the module itself, so the block that
    ends with ``module`` at depth 0 is exactly what importing it pulled in.
    """
    block: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, _, raw_name = line.split(":", 1)[1].split("|")
        name = raw_name.strip()
        root = name.split(".", 1)[0]
        block[root] = block.get(root, 0.0) + int(self_us) / 1000
        if raw_name.startswith("  "):
            continue
        if name == module:
            return sorted(block.items(), key=lambda item: -item[1])[:top]
        block = {}
    return []


def run(root: Path, runs: int, progress: Callable[[str], None] = print) -> list[Row]:
    """Time every row ``runs`` times (interleaved), plus one ``-X importtime`` run per handler."""
    measured = rows(root)
    for row in measured:  # warm the OS page cache; not recorded
        _run(row)
    for round_no in range(runs):
        for row in measured:
            if row.error:
                continue
            done = _run(row)
            if done.returncode != 0:
                row.error = (done.stderr.strip().splitlines() or ["failed"])[-1]
                continue
            imported, then_boto3 = json.loads(done.stdout.strip().splitlines()[-1])
            row.samples.append(float(imported))
            row.deferred.append(float(then_boto3))
        progress(f"  cold start round {round_no + 1}/{runs} done")
    for row in measured:
        if not row.error:
            row.heaviest = _heaviest(_run(row, importtime=True).stderr, row.module)
    return measured
