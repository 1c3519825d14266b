"""Functional tests: real sockets through ``lambdacast local`` (the fixture comes from the plugin)."""

from __future__ import annotations

from pathlib import Path

import pytest

APPS = Path(__file__).parent / "apps"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.functional)
