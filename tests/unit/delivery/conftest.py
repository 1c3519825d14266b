"""Fixtures for the delivery transport's tests (the fake API lives in fake_management_api.py)."""

from __future__ import annotations

from fake_management_api import dead_endpoint, management_api, management_api_tls, no_sleep

__all__ = ["dead_endpoint", "management_api", "management_api_tls", "no_sleep"]
