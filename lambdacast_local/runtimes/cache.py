"""The user cache where prepared runtimes live: per-function Python environments, the AWS SDK for Node.js.

``$LAMBDACAST_CACHE_DIR``, else ``$XDG_CACHE_HOME/lambdacast``, else ``~/.cache/lambdacast``. Every entry is
a folder built in a temporary sibling and renamed into place when complete, so an interrupted install
never looks finished and two emulators preparing the same entry cannot corrupt it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lambdacast_local.errors import LocalError

Log = Callable[[str], None]


def cache_root() -> Path:
    """The cache folder (not created)."""
    explicit = os.environ.get("LAMBDACAST_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "lambdacast"


def digest(*parts: str | bytes, length: int = 16) -> str:
    """A short, stable hash of some parts (names a cache entry after what it was built from)."""
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
        sha.update(b"\0")
    return sha.hexdigest()[:length]


def stderr_log(line: str) -> None:
    """Print one progress or warning line on stderr (the emulator's log)."""
    print(f"lambdacast: {line}", file=sys.stderr, flush=True)


class NotPrepared(LocalError):
    """A runtime needs an install that this run may not do (tests, ``install=False``)."""


@dataclass(frozen=True)
class Installer:
    """What an emulator may do about a missing cache entry."""

    install: bool = True
    """Run pip / npm (network) now; ``False``: fail with the command that prepares it."""
    log: Log = stderr_log
    prepare_hint: str = "lambdacast local --prepare"
    """The command named in errors: it installs what is missing."""

    def build(
        self, entry: Path, what: str, fill: Callable[[Path], Sequence[str]], *, offline: bool = False
    ) -> Path:
        """Return ``entry``, building it first with ``fill(temporary folder) -> command`` if it is missing.

        ``offline``: the build needs no network (links to local files), so it runs even without ``install``.

        Raises:
            NotPrepared: ``entry`` is missing and installing is not allowed.
            LocalError: The command failed (offline...): one sentence naming the command that prepares it.
        """
        if entry.is_dir():
            return entry
        if not (self.install or offline):
            raise NotPrepared(
                f"{what} is not installed; run `{self.prepare_hint}` first (it needs the network)."
            )
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
        if not offline:  # an offline build is a few links: nothing to wait for, nothing to say
            self.log(f"installing {what} into {entry} (once)...")
        started = time.monotonic()
        try:
            command = fill(staging)
            if command:
                try:
                    result = subprocess.run(list(command), capture_output=True, text=True, check=False)
                except OSError as exc:
                    raise LocalError(f"Could not install {what}: {command[0]}: {exc.strerror}.") from exc
                if result.returncode != 0:
                    lines = (result.stderr or result.stdout).strip().splitlines()
                    reason = lines[-1].strip() if lines else f"exit status {result.returncode}"
                    raise LocalError(
                        f"Could not install {what} ({Path(command[0]).name} said: {reason}); "
                        f"run `{self.prepare_hint}` again while online."
                    )
            try:
                staging.rename(entry)
            except OSError:  # another emulator finished the same entry first
                if not entry.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if not offline:
            self.log(f"installed {what} in {time.monotonic() - started:.1f} s")
        return entry
