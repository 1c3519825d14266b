"""Suite-wide ordering: browser tests run last.

Playwright's sync API keeps its own event loop running for as long as the session-scoped
browser lives; an asyncio test collected after it would find "another loop is running".
Running the browser tier last keeps the tiers independent of collection order.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move every test marked ``browser`` to the end, keeping the relative order of the rest."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
