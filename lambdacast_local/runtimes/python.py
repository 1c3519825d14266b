"""Python functions as Lambda runs them: the interpreter their ``Runtime`` names, their packages, boto3.

- The interpreter: ``interpreters.find_python`` (pyenv, uv, ``PATH``); missing, the emulator's own, with a
  loud warning.
- Packages as ``sam build`` installs them: the ``CodeUri``'s ``requirements.txt`` (and a layer's, when its
  ``Metadata.BuildMethod`` is ``pythonX``) go into a folder of the user cache named after the
  requirements' hash and the interpreter, installed once with pip for that interpreter.
- What Lambda's runtime provides: boto3 and its dependencies. They are pure Python, so the emulator's own
  copy is linked (offline) when its ``Requires-Python`` admits the function's version; else boto3 is
  installed once for that version.
- Or the artifacts of ``sam build`` when they are fresh and can run here (``artifacts.py``).

Workers run ``python -I -S worker.py``: no site-packages at all, ``sys.path`` is exactly what the worker
config lists, then the standard library, as on Lambda.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from lambdacast_local.model import Function, Layer
from lambdacast_local.runtimes.artifacts import Artifact, find_artifact, foreign_binary, foreign_wheel
from lambdacast_local.runtimes.cache import Installer, cache_root, digest
from lambdacast_local.runtimes.interpreters import Interpreter, current_python, find_python
from lambdacast_local.runtimes.launch import PYTHON_WORKER, Launch

RUNTIME_PACKAGES = ("boto3",)
"""What every Lambda Python runtime provides on top of the standard library (with their dependencies)."""


def _has_pip(interpreter: Interpreter) -> bool:
    probe = subprocess.run(
        [str(interpreter.path), "-I", "-c", "import pip"], capture_output=True, check=False
    )
    return probe.returncode == 0


def _pip(interpreter: Interpreter, target: Path, *args: str) -> list[str]:
    """Pip for ``interpreter``: its own when it has one, else the emulator's driving it (``pip --python``)."""
    if _has_pip(interpreter):
        pip = [str(interpreter.path), "-m", "pip"]
    else:  # uv-managed interpreters come without pip; the emulator's pip can drive them (Python >= 3.10)
        pip = [sys.executable, "-m", "pip", "--python", str(interpreter.path)]
    quiet = ["--disable-pip-version-check", "--no-input", "--quiet", "--progress-bar", "off"]
    return [*pip, "install", *quiet, "--target", str(target), *args]


def _runtime_closure(version: str) -> list[metadata.Distribution] | None:
    """The emulator's installed boto3 and its dependencies, if all of them suit Python ``version``."""
    environment = {"python_version": version, "python_full_version": f"{version}.0", "extra": ""}
    seen: dict[str, metadata.Distribution] = {}
    pending = [Requirement(name) for name in RUNTIME_PACKAGES]
    while pending:
        requirement = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        key = requirement.name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            return None
        requires_python = dist.metadata["Requires-Python"]
        if requires_python and version not in SpecifierSet(requires_python):
            return None
        if dist.version not in requirement.specifier:
            return None
        seen[key] = dist
        pending += [Requirement(text) for text in dist.requires or []]
    return list(seen.values())


def _top_level(dist: metadata.Distribution) -> Iterator[Path]:
    names = {Path(str(file)).parts[0] for file in dist.files or [] if not str(file).startswith("..")}
    for name in sorted(names - {"__pycache__"}):
        path = Path(str(dist.locate_file(name)))
        if path.exists():
            yield path


@dataclass
class PythonRuntime:
    """Prepares Python functions: interpreters, environments, artifacts."""

    installer: Installer
    template_dir: Path
    use_artifacts: bool = True

    def __post_init__(self) -> None:
        self._warned: set[str] = set()

    def interpreter(self, function: Function) -> Interpreter:
        """The interpreter ``function.runtime`` names, or the emulator's own with a loud warning."""
        version = function.runtime.removeprefix("python")
        found = find_python(version)
        if found is not None:
            return found
        fallback = current_python()
        if version not in self._warned:
            self._warned.add(version)
            self.installer.log(
                f"WARNING: no Python {version} on this machine (pyenv, uv, python{version} on PATH): "
                f"{function.runtime} functions run on Python {fallback.version} ({fallback.path}) instead."
            )
        return fallback

    def _entry(self, interpreter: Interpreter, name: str) -> Path:
        return cache_root() / "python" / f"{interpreter.tag}-{_machine()}" / name

    def runtime_packages(self, interpreter: Interpreter) -> Path:
        """boto3 as Lambda's runtime provides it: the emulator's copy linked, or installed for that Python."""
        closure = _runtime_closure(interpreter.version)
        if closure is not None:
            versions = ",".join(sorted(f"{dist.metadata['Name']}={dist.version}" for dist in closure))
            entry = self._entry(interpreter, f"lambda-runtime-{digest(sys.prefix, versions)}")
            if entry.is_dir() and not all((entry / path.name).exists() for path in _top_level(closure[0])):
                shutil.rmtree(entry)  # links into a virtual environment that was deleted since

            def link(staging: Path) -> list[str]:
                for dist in closure:
                    for path in _top_level(dist):
                        (staging / path.name).symlink_to(path)
                return []

            what = f"boto3 for Python {interpreter.version} (links to the emulator's copy)"
            return self.installer.build(entry, what, link, offline=True)
        entry = self._entry(interpreter, f"lambda-runtime-{digest(*RUNTIME_PACKAGES)}")
        what = f"boto3 for Python {interpreter.version} (Lambda's runtime provides it)"
        return self.installer.build(
            entry, what, lambda staging: _pip(interpreter, staging, *RUNTIME_PACKAGES)
        )

    def requirements(self, interpreter: Interpreter, folder: Path, owner: str) -> Path | None:
        """The packages ``folder/requirements.txt`` names, installed for ``interpreter``; ``None``: none."""
        requirements = folder / "requirements.txt"
        if not requirements.is_file():
            return None
        text = requirements.read_bytes()
        # Paths inside (-r other.txt, ./pkg) are relative to the folder: then the folder is part of the key.
        local = any(line.strip().startswith((b"-", b".", b"/", b"file:")) for line in text.splitlines())
        entry = self._entry(interpreter, f"requirements-{digest(text, str(folder) if local else '')}")
        what = f"{owner}'s requirements.txt for Python {interpreter.version}"
        return self.installer.build(
            entry, what, lambda staging: [*_pip(interpreter, staging, "-r", str(requirements))]
        )

    def _artifact(self, logical_id: str, source: Path, interpreter: Interpreter, sub: str = "") -> Artifact:
        if not self.use_artifacts:
            return Artifact(None)

        def checks() -> Iterator[str | None]:
            folder = self.template_dir / ".aws-sam" / "build" / logical_id / sub
            yield foreign_wheel([folder], interpreter.version)
            yield foreign_binary(folder, (".so",))

        return find_artifact(self.template_dir, logical_id, source, checks())

    def _layer_paths(self, layer: Layer, interpreter: Interpreter) -> list[str]:
        built = self._artifact(layer.logical_id, layer.content_dir, interpreter, "python")
        if built.reason:
            self.installer.log(built.reason)
        if built.folder is not None:
            return [str(built.folder / "python")]
        folder = layer.content_dir
        if layer.build_method and layer.build_method.startswith("python"):
            packages = self.requirements(interpreter, folder, f"layer {layer.logical_id}")
            return [str(folder), *([str(packages)] if packages else [])]
        return [str(folder / "python"), str(folder)] if (folder / "python").is_dir() else [str(folder)]

    def launch(self, function: Function) -> Launch:
        """Find the interpreter, install what is missing (if allowed), and describe the workers' start."""
        interpreter = self.interpreter(function)
        built = self._artifact(function.logical_id, function.code_dir, interpreter)
        if built.reason:
            self.installer.log(built.reason)
        if built.folder is not None:
            function = replace(function, code_dir=built.folder)
            paths = [str(built.folder)]
        else:
            packages = self.requirements(interpreter, function.code_dir, function.logical_id)
            paths = [str(function.code_dir), *([str(packages)] if packages else [])]
        for layer in function.layers:
            paths += self._layer_paths(layer, interpreter)
        paths.append(str(self.runtime_packages(interpreter)))
        source = "sam build artifact" if built.folder is not None else "CodeUri"
        return Launch(
            function=function,
            argv=(str(interpreter.path), "-I", "-S", str(PYTHON_WORKER)),
            config={"paths": paths},
            description=f"{function.runtime} on Python {interpreter.version} ({interpreter.path}), {source}",
        )


def _machine() -> str:
    return os.uname().machine
