"""Lambda runtimes: how each function's execution environments start, chosen from its ``Runtime``.

One worker protocol (``protocol.py``), one worker per language (``worker.py``, ``worker.mjs``); this package
decides which worker, on which interpreter, with which packages (``python.py``, ``node.py``), preparing
what is missing in the user cache (``cache.py``). The pool (``lambda_pool.py``) only starts what a
``Launch`` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from lambdacast_local.model import Function, runtime_family
from lambdacast_local.runtimes.cache import Installer
from lambdacast_local.runtimes.launch import Launch, launch_here
from lambdacast_local.runtimes.node import NodeRuntime
from lambdacast_local.runtimes.python import PythonRuntime

__all__ = ["Installer", "Launch", "launch_here", "prepare"]


def prepare(
    functions: Mapping[str, Function],
    template_dir: Path,
    installer: Installer,
    *,
    hosts: Mapping[str, int] | None = None,
    use_artifacts: bool = True,
) -> dict[str, Launch]:
    """Prepare every function's runtime (installing what is missing when ``installer`` may).

    Args:
        functions: The functions by name (every one runnable: ``model.runtime_family`` knows it).
        template_dir: The template's folder (``sam build`` artifacts are under it).
        installer: Whether and how to install missing environments, and where progress lines go.
        hosts: AWS ``host:port`` pairs the workers connect to the emulator instead (see ``protocol.py``).
        use_artifacts: Run fresh ``.aws-sam/build`` artifacts that can run here.

    Returns:
        The launch of each function, by name.

    Raises:
        LocalError: A runtime cannot be prepared (no ``node``, offline install...), in one sentence.
    """
    python = PythonRuntime(installer, template_dir, use_artifacts)
    node = NodeRuntime(installer, template_dir, use_artifacts)
    launches: dict[str, Launch] = {}
    for name, function in functions.items():
        family = runtime_family(function.runtime)
        launch = node.launch(function) if family == "node" else python.launch(function)
        launches[name] = replace(launch, config={**launch.config, "hosts": dict(hosts or {})})
    return launches
