"""The soak's client logic lives beside the soak (tests/functional/soak); its pure parts are tested here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functional" / "soak"))
