"""What the pool needs to start one function's workers, whatever the runtime."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdacast_local.model import Function

PYTHON_WORKER = Path(__file__).with_name("worker.py")
NODE_WORKER = Path(__file__).with_name("worker.mjs")


@dataclass(frozen=True)
class Launch:
    """How to start a function's execution environments (one worker process each)."""

    function: Function
    """The function as it runs (its ``code_dir`` may be a ``sam build`` artifact)."""
    argv: tuple[str, ...]
    """The interpreter, its flags and the worker file; the pool appends the worker config."""
    config: dict[str, Any] = field(default_factory=dict)
    """The runtime's part of the worker config (``paths``, ``esm_paths``, ``hosts``; see ``protocol.py``)."""
    env: dict[str, str] = field(default_factory=dict)
    """Variables the runtime adds to the function's environment (``NODE_PATH``...)."""
    description: str = ""
    """One phrase for the log: ``python3.13 on /usr/bin/python3.13``."""


def python_paths(function: Function) -> list[str]:
    """The code folder then each layer folder (its ``python/`` subfolder first when it has one)."""
    paths = [str(function.code_dir)]
    for layer in function.layer_dirs:
        paths += [str(layer / "python"), str(layer)] if (layer / "python").is_dir() else [str(layer)]
    return paths


def launch_here(function: Function) -> Launch:
    """Run a Python function on the emulator's own interpreter and packages (tests, embedding).

    ``-I`` keeps the user's site-packages and ``PYTHON*`` variables out; the emulator's installed packages
    (boto3 among them) stay importable. ``lambdacast local`` itself uses ``runtimes.prepare`` instead.
    """
    return Launch(
        function=function,
        argv=(sys.executable, "-I", str(PYTHON_WORKER)),
        config={"paths": python_paths(function)},
        description=f"{function.runtime} on {sys.executable}",
    )
