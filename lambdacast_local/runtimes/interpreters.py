"""Find the Python interpreter a function's ``Runtime`` names (``python3.13`` -> a Python 3.13 here).

Looked for, in this order: the interpreter running the emulator (when it is that version), pyenv
(``$PYENV_ROOT/versions/3.13.*``), uv-managed interpreters (``uv python install``), then ``python3.13`` on
``PATH`` (pyenv's shims excepted: they fail unless that version is selected). Each candidate is run once to
check it really is that version.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_PATCH = re.compile(r"(\d+)\.(\d+)\.(\d+)$")
_UV_DIR = re.compile(r"cpython-(\d+)\.(\d+)\.(\d+)-[^+]*$")  # free-threaded builds (+freethreaded) excluded


@dataclass(frozen=True)
class Interpreter:
    """One Python interpreter found on this machine."""

    path: Path
    version: str
    """``3.13``."""

    @property
    def tag(self) -> str:
        """``cp313``: names this interpreter's cache entries (wheels are built per minor version)."""
        return "cp" + self.version.replace(".", "")


def _newest_first(candidates: list[tuple[tuple[int, ...], Path]]) -> Iterator[Path]:
    for _, path in sorted(candidates, key=lambda item: item[0], reverse=True):
        yield path


def _pyenv(version: str) -> Iterator[Path]:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found: list[tuple[tuple[int, ...], Path]] = []
    if root.is_dir():
        for folder in root.iterdir():
            match = _PATCH.fullmatch(folder.name)
            if match and f"{match.group(1)}.{match.group(2)}" == version:
                found.append(
                    (tuple(int(part) for part in match.groups()), folder / "bin" / f"python{version}")
                )
    yield from _newest_first(found)


def _uv(version: str) -> Iterator[Path]:
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    root = Path(os.environ.get("UV_PYTHON_INSTALL_DIR") or data / "uv" / "python")
    found: list[tuple[tuple[int, ...], Path]] = []
    if root.is_dir():
        for folder in root.iterdir():
            match = _UV_DIR.match(folder.name)
            if match and f"{match.group(1)}.{match.group(2)}" == version:
                found.append(
                    (tuple(int(part) for part in match.groups()), folder / "bin" / f"python{version}")
                )
    yield from _newest_first(found)


def _on_path(version: str) -> Iterator[Path]:
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or Path(folder).name == "shims":  # pyenv (and asdf) shims need a selected version
            continue
        found = shutil.which(f"python{version}", path=folder)
        if found:
            yield Path(found)


def _own(version: str) -> Iterator[Path]:
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        # The base interpreter, not the virtual environment: workers see none of the emulator's packages.
        yield Path(getattr(sys, "_base_executable", None) or sys.executable)


def _is_version(path: Path, version: str) -> bool:
    if not os.access(path, os.X_OK):
        return False
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    try:
        result = subprocess.run(
            [str(path), "-I", "-S", "-c", probe], check=False, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == version


@cache
def find_python(version: str) -> Interpreter | None:
    """The first working Python ``version`` (``3.13``) on this machine, or ``None``."""
    for source in (_own, _pyenv, _uv, _on_path):
        for candidate in source(version):
            if _is_version(candidate, version):
                return Interpreter(candidate, version)
    return None


def current_python() -> Interpreter:
    """The interpreter running the emulator (its base, outside any virtual environment)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Interpreter(Path(getattr(sys, "_base_executable", None) or sys.executable), version)
