"""The ``$connect`` authorizer's settings: ``AUTH_*`` read once from the environment, validated.

Which key source verifies tokens (an SSM secret or an OIDC issuer's JWKS, never both), the
audience and issuer, the token lifetime and clock leeway, and the allowed web origins. An
inconsistent environment raises :class:`AuthConfigError` at cold start: the authorizer fails
closed rather than guessing. See docs/auth.md.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_AUDIENCE",
    "AuthConfigError",
    "AuthMode",
    "AuthSettings",
    "normalize_origin",
    "parse_allowed_origins",
]

MAX_LEEWAY_SECONDS: Final = 300
DEFAULT_AUDIENCE: Final = "lambdacast"
DEFAULT_MAX_TOKEN_LIFETIME_SECONDS: Final = 86400
MAX_TOKEN_LIFETIME_LIMIT_SECONDS: Final = 7 * 86400
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


class AuthMode(enum.StrEnum):
    """The ``AuthMode`` template parameter."""

    NONE = "none"  # anonymous only; tokens are ignored
    OPTIONAL = "optional"  # anonymous allowed, tokens honoured, a bad token denied
    REQUIRED = "required"  # a valid token or Deny


class AuthConfigError(ValueError):
    """The authorizer's environment is inconsistent (raised at cold start: fail closed)."""


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Authorizer settings, read once from the environment and frozen."""

    mode: AuthMode = AuthMode.NONE
    secret_parameter: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str = DEFAULT_AUDIENCE
    max_token_lifetime_seconds: int = DEFAULT_MAX_TOKEN_LIFETIME_SECONDS
    allowed_origins: frozenset[str] = frozenset()
    leeway_seconds: int = 30
    secret_max_age_seconds: int = 300
    jwks_cache_seconds: int = 300

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthSettings:
        """Reads ``AUTH_*`` variables.

        Args:
            environ: The environment (``os.environ`` when omitted).

        Returns:
            Validated settings.

        Raises:
            AuthConfigError: When a value is invalid or the key source is ambiguous or missing.
        """
        env = os.environ if environ is None else environ
        raw_mode = env.get("AUTH_MODE", "none").strip().lower()
        try:
            mode = AuthMode(raw_mode)
        except ValueError:
            allowed = ", ".join(m.value for m in AuthMode)
            raise AuthConfigError(f"AUTH_MODE is {raw_mode!r}; expected one of {allowed}") from None
        settings = cls(
            mode=mode,
            secret_parameter=env.get("AUTH_SECRET_PARAMETER") or None,
            jwks_url=env.get("AUTH_JWKS_URL") or None,
            issuer=env.get("AUTH_ISSUER") or None,
            audience=(env.get("AUTH_AUDIENCE") or "").strip() or DEFAULT_AUDIENCE,
            max_token_lifetime_seconds=_int_env(
                env,
                "AUTH_MAX_TOKEN_LIFETIME_SECONDS",
                DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
                60,
                MAX_TOKEN_LIFETIME_LIMIT_SECONDS,
            ),
            allowed_origins=parse_allowed_origins(env.get("AUTH_ALLOWED_ORIGINS", "")),
            leeway_seconds=_int_env(env, "AUTH_LEEWAY_SECONDS", 30, 0, MAX_LEEWAY_SECONDS),
            secret_max_age_seconds=_int_env(env, "AUTH_SECRET_MAX_AGE_SECONDS", 300, 1, 86400),
            jwks_cache_seconds=_int_env(env, "AUTH_JWKS_CACHE_SECONDS", 300, 1, 86400),
        )
        settings._validate()
        return settings

    def _validate(self) -> None:
        if self.mode is AuthMode.NONE:
            return
        if bool(self.secret_parameter) == bool(self.jwks_url):
            raise AuthConfigError(
                f"AUTH_MODE={self.mode.value} needs exactly one key source: "
                "AUTH_SECRET_PARAMETER (HS256) or AUTH_JWKS_URL (RS256/ES256)"
            )
        if self.jwks_url:
            url = urlsplit(self.jwks_url)
            if url.scheme != "https" and not (url.scheme == "http" and url.hostname in _LOCAL_HOSTS):
                raise AuthConfigError("AUTH_JWKS_URL must be https:// (http:// only for localhost)")
            if not self.issuer:
                raise AuthConfigError("AUTH_JWKS_URL needs AUTH_ISSUER")


def _int_env(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise AuthConfigError(f"{name} is {raw!r}; expected an integer") from None
    if not low <= value <= high:
        raise AuthConfigError(f"{name} is {value}; expected {low}..{high}")
    return value


def normalize_origin(value: str) -> str | None:
    """The canonical ``scheme://host[:port]`` of a web origin, or ``None`` when it is not one.

    Scheme and host are lowercased and a default port (80 for http, 443 for https) is dropped, as
    browsers send it in the ``Origin`` header. Anything with a path, query, fragment, user info, or
    another scheme (``null``, ``file://``) is not an origin.

    Args:
        value: An ``Origin`` header value or a configured origin.

    Returns:
        The normalized origin, or ``None``.
    """
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme.lower() not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "*" in host:
        return None
    scheme = parts.scheme.lower()
    host = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def parse_allowed_origins(raw: str) -> frozenset[str]:
    """Parses ``AUTH_ALLOWED_ORIGINS``: a comma-separated list of exact origins (empty: any origin).

    Args:
        raw: The variable's value, e.g. ``https://example.com, https://www.example.com``.

    Returns:
        The normalized origins.

    Raises:
        AuthConfigError: An entry is not an exact ``scheme://host[:port]`` origin (no paths, no
            wildcards), so a typo fails the cold start instead of letting every origin in.
    """
    origins: set[str] = set()
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        origin = normalize_origin(entry)
        if origin is None:
            raise AuthConfigError(
                f"AUTH_ALLOWED_ORIGINS entry {entry[:80]!r} is not an origin such as https://example.com "
                "(scheme://host[:port], no path, no wildcard)"
            )
        origins.add(origin)
    return frozenset(origins)
