"""``sam build`` artifacts (``.aws-sam/build/<LogicalId>``): used when they are fresh and can run here.

``sam build`` may build for another machine (``Architectures: [arm64]`` on an x86_64 laptop: pip fetches
aarch64 wheels) or another Python; such an artifact cannot run locally, so it is ignored with a line
saying why, and the function runs from its ``CodeUri`` with its requirements installed for this machine.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging import tags

_ELF_MACHINES = {62: "x86_64", 183: "aarch64", 3: "i386", 40: "arm"}
_SKIPPED = {"__pycache__", ".aws-sam", "node_modules", ".git", ".venv"}


@dataclass(frozen=True)
class Artifact:
    """A usable ``sam build`` artifact, or why one was not used."""

    folder: Path | None
    reason: str = ""
    """Why the artifact folder was ignored (empty when used, or when there is none)."""


def build_root(template_dir: Path) -> Path:
    """Where ``sam build`` writes its artifacts for the template in ``template_dir``."""
    return template_dir / ".aws-sam" / "build"


def _files(folder: Path, skip: set[str]) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = [name for name in dirs if name not in skip]
        for name in files:
            yield Path(root) / name


def _newest_mtime(folder: Path) -> float:
    newest = 0.0
    for path in _files(folder, _SKIPPED):
        try:
            newest = max(newest, path.stat().st_mtime)
        except OSError:
            continue
    return newest


def _host_machine() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def _elf_machine(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            header = handle.read(20)
    except OSError:
        return None
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    code = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return _ELF_MACHINES.get(code, f"machine {code}")


def foreign_binary(folder: Path, suffixes: tuple[str, ...]) -> str | None:
    """The first native library in ``folder`` built for another processor, described; ``None`` if none."""
    host = _host_machine()
    for path in _files(folder, {"__pycache__"}):
        if path.name.endswith(suffixes) or ".so." in path.name:
            machine = _elf_machine(path)
            if machine is not None and machine != host:
                return f"{path.relative_to(folder)} is built for {machine}, this machine is {host}"
    return None


@cache
def _supported_tags(version: str) -> frozenset[str]:
    major, minor = (int(part) for part in version.split("."))
    platforms = list(tags.platform_tags())
    supported = tags.cpython_tags(python_version=(major, minor), platforms=platforms)
    compatible = tags.compatible_tags(python_version=(major, minor), platforms=platforms)
    return frozenset(str(tag) for tag in (*supported, *compatible))


def _wheel_tags(dist_info: Path) -> list[str]:
    try:
        text = (dist_info / "WHEEL").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]


def foreign_wheel(folders: Iterable[Path], python_version: str) -> str | None:
    """The first installed wheel in ``folders`` that Python ``python_version`` cannot use here, described."""
    supported = _supported_tags(python_version)
    for folder in folders:
        if not folder.is_dir():
            continue
        for dist_info in folder.glob("*.dist-info"):
            wheel_tags = _wheel_tags(dist_info)
            if wheel_tags and not supported.intersection(wheel_tags):
                name = dist_info.name.removesuffix(".dist-info")
                return f"{name} is a {wheel_tags[0]} wheel, which Python {python_version} here cannot load"
    return None


def find_artifact(template_dir: Path, logical_id: str, source: Path, check: Iterable[str | None]) -> Artifact:
    """The artifact ``sam build`` made for ``logical_id`` if it exists, is fresh and passes ``check``.

    Args:
        template_dir: The template's folder (``.aws-sam/build`` is under it).
        logical_id: The function's or layer's logical id in the template (``sam build``'s folder name).
        source: Its ``CodeUri`` / ``ContentUri`` folder (newer files there make the artifact stale).
        check: Lazily computed reasons the artifact cannot run here (the first non-``None`` one wins).
    """
    folder = build_root(template_dir) / logical_id
    if not folder.is_dir():
        return Artifact(None)
    relative = folder.relative_to(template_dir)
    if _newest_mtime(source) > folder.stat().st_mtime:
        return Artifact(None, f"ignoring {relative}: {source.name}/ changed after sam build")
    for reason in check:
        if reason is not None:
            return Artifact(None, f"ignoring {relative}: {reason}")
    return Artifact(folder)
