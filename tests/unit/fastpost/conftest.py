"""Fixtures for the fast fan-out transport's tests (the fake API lives in fastpost_fake_api.py)."""

from __future__ import annotations

from fastpost_fake_api import dead_endpoint, management_api, management_api_tls, no_sleep

__all__ = ["dead_endpoint", "management_api", "management_api_tls", "no_sleep"]
