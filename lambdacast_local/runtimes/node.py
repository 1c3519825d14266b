"""Node.js functions as Lambda runs them: a ``node`` of the runtime's major version, the AWS SDK v3.

- ``node``: an nvm-installed one of the declared major version, else the one on ``PATH``; another major
  version runs anyway, with a one-line warning naming both.
- Module resolution as on Lambda: the function's own ``node_modules`` first, then (``NODE_PATH``, also for
  ES modules, as Lambda's Node.js 18+ runtimes do) each layer's ``nodejs/node<major>/node_modules`` and
  ``nodejs/node_modules``, then the AWS SDK for JavaScript v3 that Lambda's runtime bundles. Locally that
  SDK is a copy installed once with npm into the user cache (``SDK_PACKAGES``: the clients of the services
  the emulator serves).
- Or the artifacts of ``sam build`` (esbuild bundles, TypeScript) when they are fresh and can run here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from lambdacast_local.errors import LocalError
from lambdacast_local.model import Function
from lambdacast_local.runtimes.artifacts import find_artifact, foreign_binary
from lambdacast_local.runtimes.cache import Installer, cache_root, digest
from lambdacast_local.runtimes.launch import NODE_WORKER, Launch

SDK_PACKAGES = (
    "@aws-sdk/client-apigatewaymanagementapi",
    "@aws-sdk/client-dynamodb",
    "@aws-sdk/lib-dynamodb",
    "@aws-sdk/util-dynamodb",
    "@aws-sdk/client-sqs",
    "@aws-sdk/client-ssm",
    "@aws-sdk/client-secrets-manager",
    "@aws-sdk/client-sts",
)
"""The AWS SDK v3 packages the emulator provides (Lambda bundles every client; a function needing another
one installs it in its own ``node_modules``)."""

_VERSION = re.compile(r"v(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Node:
    """One ``node`` executable and its version."""

    path: Path
    version: str
    """``20.20.2``."""

    @property
    def major(self) -> int:
        """The major version (``20``)."""
        return int(self.version.split(".")[0])


@cache
def _version(path: Path) -> str | None:
    try:
        result = subprocess.run(
            [str(path), "--version"], check=False, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(result.stdout)
    return ".".join(match.groups()) if result.returncode == 0 and match else None


def _nvm(major: int) -> Iterator[Path]:
    root = Path(os.environ.get("NVM_DIR") or Path.home() / ".nvm") / "versions" / "node"
    found: list[tuple[tuple[int, ...], Path]] = []
    if root.is_dir():
        for folder in root.iterdir():
            match = _VERSION.fullmatch(folder.name)
            if match and int(match.group(1)) == major:
                found.append((tuple(int(part) for part in match.groups()), folder / "bin" / "node"))
    for _, path in sorted(found, reverse=True):
        yield path


def find_node(major: int) -> Node | None:
    """A ``node`` of ``major`` version (nvm, else ``PATH``), else the one on ``PATH``, else ``None``."""
    on_path = shutil.which("node")
    for candidate in (*_nvm(major), *([Path(on_path)] if on_path else [])):
        version = _version(candidate)
        if version is not None:
            return Node(candidate, version)
    return None


def _has_own_sdk(folders: list[Path]) -> bool:
    return any((folder / "@aws-sdk").is_dir() for folder in folders)


@dataclass
class NodeRuntime:
    """Prepares Node.js functions: ``node``, the AWS SDK v3, artifacts."""

    installer: Installer
    template_dir: Path
    use_artifacts: bool = True

    def __post_init__(self) -> None:
        self._warned: set[tuple[str, str]] = set()

    def node(self, function: Function) -> Node:
        """The ``node`` to run ``function`` on (warns once per runtime when its major version differs)."""
        major = int(function.runtime.removeprefix("nodejs").removesuffix(".x"))
        found = find_node(major)
        if found is None:
            raise LocalError(
                f"Function {function.logical_id} runs {function.runtime}, but node is not on PATH; "
                f"install Node.js {major}."
            )
        if found.major != major and (function.runtime, found.version) not in self._warned:
            self._warned.add((function.runtime, found.version))
            self.installer.log(
                f"WARNING: {function.runtime} functions run on this machine's Node.js {found.version} "
                f"({found.path}), not Node.js {major}."
            )
        return found

    @staticmethod
    def _sdk_entry() -> Path:
        return cache_root() / "node" / f"aws-sdk-v3-{digest(*SDK_PACKAGES)}"

    def sdk(self) -> Path:
        """The ``node_modules`` folder of the emulator's AWS SDK v3 copy, installed first if need be."""
        entry = self._sdk_entry()

        def install(staging: Path) -> list[str]:
            npm = shutil.which("npm")
            if npm is None:
                raise LocalError(
                    "Node.js functions need the AWS SDK for JavaScript v3, which lambdacast local installs "
                    "with npm, and npm is not on PATH."
                )
            manifest = {
                "private": True,
                "description": "The AWS SDK v3 as Lambda's Node.js runtimes bundle it",
            }
            (staging / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
            quiet = ["--no-audit", "--no-fund", "--loglevel=error", "--omit=dev"]
            return [npm, "install", "--prefix", str(staging), *quiet, *SDK_PACKAGES]

        what = f"the AWS SDK for JavaScript v3 ({len(SDK_PACKAGES)} packages, about 30 MB, with npm)"
        return self.installer.build(entry, what, install) / "node_modules"

    def _sdk_if_present(self) -> Path | None:
        modules = self._sdk_entry() / "node_modules"
        return modules if modules.is_dir() else None

    def _artifact(self, function: Function) -> Function:
        if not self.use_artifacts:
            return function

        def checks() -> Iterator[str | None]:
            yield foreign_binary(self.template_dir / ".aws-sam" / "build" / function.logical_id, (".node",))

        built = find_artifact(self.template_dir, function.logical_id, function.code_dir, checks())
        if built.reason:
            self.installer.log(built.reason)
        return function if built.folder is None else replace(function, code_dir=built.folder)

    def launch(self, function: Function) -> Launch:
        """Find ``node``, make sure the SDK is there when the function brings none, describe the workers."""
        node = self.node(function)
        function = self._artifact(function)
        layer_modules: list[Path] = []
        for layer in function.layer_dirs:
            layer_modules += [
                layer / "nodejs" / f"node{node.major}" / "node_modules",
                layer / "nodejs" / "node_modules",
            ]
        layer_modules = [folder for folder in layer_modules if folder.is_dir()]
        own = [function.code_dir / "node_modules", *layer_modules]
        sdk = self.sdk() if not _has_own_sdk(own) else self._sdk_if_present()
        modules = [str(folder) for folder in (*layer_modules, *([sdk] if sdk else []))]
        return Launch(
            function=function,
            argv=(str(node.path), str(NODE_WORKER)),
            config={"esm_paths": modules},
            env={"NODE_PATH": os.pathsep.join([*modules, str(function.code_dir)])},
            description=f"{function.runtime} on Node.js {node.version} ({node.path})",
        )
