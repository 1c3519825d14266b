"""The emulator's exceptions: each carries one sentence a developer can act on."""

from __future__ import annotations


class LocalError(Exception):
    """Base class for every error the emulator reports to its user without a traceback."""


class TemplateError(LocalError):
    """The template cannot be served (unreadable, refused by the SAM transform, or unsupported)."""


class UsageError(LocalError):
    """A command-line argument is invalid (bad parameter override, missing folder...)."""
