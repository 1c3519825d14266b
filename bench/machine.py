"""Name the machine a benchmark ran on (cores and CPU model from /proc/cpuinfo)."""

from __future__ import annotations

import os
import platform


def describe() -> str:
    """E.g. ``2 cores, AMD EPYC, Linux 6.8, Python 3.11.7``."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = os.cpu_count() or 0
    system = f"{platform.system()} {platform.release()}"
    return f"{cores} cores, {model}, {system}, Python {platform.python_version()}"


def load() -> str:
    """The 1/5/15-minute load averages, e.g. ``0.52/0.61/0.40``."""
    try:
        return "/".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"
