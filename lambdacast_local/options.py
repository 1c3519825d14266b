"""Everything ``lambdacast local`` can be told (``Options``), and its defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lambdacast_local.devtokens import DEFAULT_CHANNELS
from lambdacast_local.faults import FaultSpec
from lambdacast_local.runtimes import Installer
from lambdacast_local.runtimes.cache import Log, stderr_log


def default_concurrency() -> int:
    """Workers per function by default: the core count (more only adds contention), 2 to 8."""
    return min(8, max(2, os.cpu_count() or 2))


@dataclass
class Options:
    """Everything ``lambdacast local`` can be told."""

    template: Path = Path("template.yaml")
    host: str = "127.0.0.1"
    port: int = 3001
    web_dir: Path | None = None
    web_port: int = 8000
    dynamodb_endpoint: str | None = None
    reload: bool = False
    concurrency: int = field(default_factory=default_concurrency)
    idle_timeout_s: float = 600.0
    max_duration_s: float = 7200.0
    management_latency_ms: float = 0.0
    """The same as ``connections:latency=MS`` in ``faults`` (the older flag, kept)."""
    faults: str | FaultSpec = ""
    """``--faults``: ``target:kind=rate,...`` (docs/local.md, "Fault injection")."""
    fault_seed: int | None = None
    """``--fault-seed``: repeat a fault run; ``None`` picks a seed (``Emulator.faults.seed``)."""
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    api: str | None = None
    http_port: int = 3002
    iam_auth: bool = True
    ssm_parameters: dict[str, str] = field(default_factory=dict)
    """SSM parameters (SecureString) created in the embedded AWS and used to resolve the template."""
    secrets: dict[str, str] = field(default_factory=dict)
    """Secrets Manager secrets created in the embedded AWS and used to resolve the template."""
    region: str = "us-east-1"
    dev_token_parameter: str | None = None
    """Serve the local-only token minter, its secret stored as this SSM parameter (``--dev-tokens``)."""
    dev_token_channels: tuple[str, ...] = DEFAULT_CHANNELS
    """The channel patterns minted tokens grant (``--dev-tokens-channels``)."""
    dev_token_any_user: bool = False
    """Honour a client-chosen ``userId`` (``--dev-tokens-any-user``)."""
    integration_timeout_s: float = 29.0
    """API Gateway's integration timeout (a test may shorten it)."""
    install: bool = True
    """Install missing runtime environments at start (pip, npm); ``False``: fail naming ``--prepare``."""
    build_artifacts: bool = True
    """Run fresh ``sam build`` artifacts (``.aws-sam/build``) that can run here (never with ``reload``)."""
    log: Log = stderr_log
    """Where runtime progress lines and warnings go."""

    management_iam_auth: bool | None = None
    """Verify SigV4 on ``@connections``; ``None``: when ``host`` is not loopback and ``iam_auth`` is on."""

    def installer(self) -> Installer:
        """What the emulator may install, and the command its errors name."""
        hint = f"lambdacast local --prepare --template {self.template}"
        return Installer(install=self.install, log=self.log, prepare_hint=hint)
