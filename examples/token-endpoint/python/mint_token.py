"""Mint short-lived lambdacast tokens from a site's own backend (example).

The site already knows who its user is (its own session, login, SSO...). This module turns that
user into a short-lived HS256 JWT that lambdacast's ``$connect`` authorizer accepts:

* ``sub``: the user id (becomes ``userId`` in every frame and presence list);
* ``name``: a display name shown to other presence members;
* ``channels``: glob patterns of the ``private-``/``presence-`` channels the user may use;
* ``aud``: ``lambdacast`` (the authorizer's ``AuthAudience``), so the token is good for nothing else;
* ``iat`` and ``exp``: now, and a few minutes from now (the browser fetches a fresh token on every
  reconnect; the authorizer refuses tokens minted to live longer than ``MaxTokenLifetimeSeconds``).

The secret is the same value as the SSM SecureString the authorizer reads (``AUTH_SECRET_PARAMETER``);
give it to this backend through its own secret store, never in source code.

Usage as a WSGI app (any WSGI server; Flask/Django users call :func:`mint_token` from a view)::

    app = make_app(secret=os.environ["LAMBDACAST_TOKEN_SECRET"], authenticate=my_session_user)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

DEFAULT_TTL_SECONDS = 300
DEFAULT_AUDIENCE = "lambdacast"  # the template's AuthAudience default
MAX_TTL_SECONDS = 86400  # the template's MaxTokenLifetimeSeconds default


@dataclass(frozen=True)
class SiteUser:
    """Who the site's own session says the caller is, and what they may join."""

    user_id: str
    name: str | None = None
    channels: Sequence[str] = field(default_factory=tuple)


def mint_token(
    secret: str,
    user: SiteUser,
    *,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    issuer: str | None = None,
    audience: str = DEFAULT_AUDIENCE,
    now: float | None = None,
) -> str:
    """Returns an HS256 JWT for ``user`` that expires after ``ttl_seconds``.

    Args:
        secret: The shared secret (at least 32 bytes; the authorizer refuses shorter ones).
        user: The authenticated user.
        ttl_seconds: Lifetime; keep it short (minutes). At most ``MAX_TTL_SECONDS``.
        issuer: Sets ``iss``; needed when the stack sets ``AuthIssuer``.
        audience: ``aud``: the stack's ``AuthAudience`` (``lambdacast`` unless you changed it).
        now: The current time in seconds (for tests).

    Returns:
        The compact JWT to pass as ``?token=``.
    """
    if len(secret.encode()) < 32:
        raise ValueError("the secret must be at least 32 bytes")
    if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be 1..{MAX_TTL_SECONDS} (the authorizer refuses longer tokens)")
    if not audience:
        raise ValueError("the audience is required (the authorizer refuses tokens without aud)")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"sub": user.user_id, "aud": audience, "iat": issued}
    claims["exp"] = issued + ttl_seconds
    if user.name:
        claims["name"] = user.name
    if user.channels:
        claims["channels"] = list(user.channels)
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def make_app(
    secret: str,
    authenticate: Callable[[dict[str, Any]], SiteUser | None],
    *,
    audience: str = DEFAULT_AUDIENCE,
    issuer: str | None = None,
) -> WsgiApp:
    """A WSGI app answering ``POST`` with ``{"token": ...}`` for the signed-in user, else 401.

    Args:
        secret: The shared secret.
        authenticate: The site's own session check: the WSGI environ -> the user, or None.
        audience: The stack's ``AuthAudience``.
        issuer: The stack's ``AuthIssuer``, if it sets one.

    Returns:
        The WSGI application.
    """

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":  # POST: never cached, not triggered by a link
            return _json(start_response, "405 Method Not Allowed", {"error": "use POST"})
        user = authenticate(environ)
        if user is None:
            return _json(start_response, "401 Unauthorized", {"error": "sign in first"})
        token = mint_token(secret, user, audience=audience, issuer=issuer)
        return _json(start_response, "200 OK", {"token": token})

    return app


def _json(start_response: Callable[..., Any], status: str, body: dict[str, str]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("Content-Length", str(len(data))),
        ],
    )
    return [data]
