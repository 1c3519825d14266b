"""A local-only token minter, so a demo page can sign in without a site backend.

``lambdacast local --dev-tokens NAME`` creates a random HS256 secret, stores it in the embedded SSM
Parameter Store as the SecureString ``NAME`` (the app's authorizer reads it from there, as it would on
AWS), and serves ``POST /_lambdacast/dev-token`` on the emulator's port. It exists only in the
emulator, never in a deployed stack, and it is fenced because any web page the developer visits can
send requests to 127.0.0.1:

* it answers only this machine (a loopback peer), even when ``--host`` exposes the emulator;
* a browser request must come from the page the emulator serves (``--web-dir``:
  ``http://127.0.0.1:<web port>``, ``http://localhost:<web port>``); any other ``Origin`` gets 403 and
  no CORS header, so a foreign page can neither mint nor read a token. ``Access-Control-Allow-Origin``
  names that origin, never ``*``. A request without ``Origin`` (curl, a test) is a local program;
* the user id is derived from the display name; a ``userId`` in the body is ignored unless
  ``--dev-tokens-any-user``;
* the token grants only the channel patterns ``--dev-tokens-channels`` names (``presence-*`` by
  default: the demo's presence room).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PATH = "/_lambdacast/dev-token"
TOKEN_LIFETIME_S = 3600
MAX_NAME_CHARS = 64
AUDIENCE = "lambdacast"
DEFAULT_CHANNELS = ("presence-*",)
"""What the demo needs: its presence room (and any other presence- room). ``private-`` needs the flag."""
_PATTERN = re.compile(r"[A-Za-z0-9_\-=@.;:*?\[\]!]{1,128}")
_SLUG = re.compile(r"[^a-z0-9]+")
_COMMON_HEADERS = {"Cache-Control": "no-store", "Vary": "Origin"}


class DevTokenError(ValueError):
    """The request cannot be turned into a token, or a setting is unusable (the message says why)."""


def parse_channels(raw: str) -> tuple[str, ...]:
    """Parses ``--dev-tokens-channels``: comma-separated glob patterns (empty: no channel at all).

    Raises:
        DevTokenError: A pattern is not made of channel-name characters and ``* ? [ ] !``.
    """
    patterns = tuple(part.strip() for part in raw.split(",") if part.strip())
    for pattern in patterns:
        if not _PATTERN.fullmatch(pattern):
            raise DevTokenError(f"--dev-tokens-channels: {pattern!r} is not a pattern such as presence-*")
    return patterns


def page_origins(web_port: int) -> frozenset[str]:
    """The origins a browser sends from the page the emulator serves on ``web_port`` (loopback names)."""
    return frozenset(f"http://{host}:{web_port}" for host in ("127.0.0.1", "localhost", "[::1]"))


def refusal(origin: str | None, peer: str | None, allowed: Iterable[str]) -> str | None:
    """Why a request may not mint (``None``: it may).

    Args:
        origin: The ``Origin`` header, if any (a browser always sends one on a cross-origin POST).
        peer: The client's address.
        allowed: The origins of the page the emulator serves.
    """
    try:
        local = peer is not None and ipaddress.ip_address(peer.split("%")[0]).is_loopback
    except ValueError:
        local = False
    if not local:
        return "The dev token minter answers this machine only."
    if origin is not None and origin.lower() not in allowed:
        return f"The dev token minter answers the page lambdacast local serves, not {origin[:100]}."
    return None


@dataclass
class DevTokenMinter:
    """Mints HS256 tokens with the claims lambdacast's authorizer reads (sub, aud, name, channels, iat, exp).

    Attributes:
        parameter_name: The SSM parameter the secret is stored under.
        secret: The HS256 secret (random per emulator run unless given).
        channels: The channel patterns every minted token grants.
        any_user: Honour a ``userId`` in the request body (``--dev-tokens-any-user``).
        allowed_origins: The browser origins answered (the served page's; set once its port is known).
    """

    parameter_name: str
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48), repr=False)
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    any_user: bool = False
    allowed_origins: frozenset[str] = frozenset()

    def claims(self, body: Any, now: int) -> dict[str, Any]:
        """The claims for a request body ``{"name": ..., "userId"?: ...}``.

        Raises:
            DevTokenError: The body is not an object with a usable display name.
        """
        if not isinstance(body, dict):
            raise DevTokenError('Send a JSON object such as {"name": "Ada"}.')
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
            raise DevTokenError(f"'name' must be a non-empty string of at most {MAX_NAME_CHARS} characters.")
        name = name.strip()
        user_id = body.get("userId") if self.any_user else None
        if user_id is None:
            # One display name is one user, so two tabs signed in as "Ada" are one presence member.
            digest = hashlib.sha256(name.encode()).hexdigest()[:8]
            user_id = f"dev-{_SLUG.sub('-', name.lower()).strip('-')[:32] or 'user'}-{digest}"
        elif not isinstance(user_id, str) or not 0 < len(user_id) <= 128:
            raise DevTokenError("'userId' must be a string of 1 to 128 characters.")
        return {
            "sub": user_id,
            "aud": AUDIENCE,
            "name": name,
            "channels": list(self.channels),
            "iat": now,
            "exp": now + TOKEN_LIFETIME_S,
        }

    def mint(self, body: Any, now: int | None = None) -> dict[str, Any]:
        """The endpoint's answer: ``{"token", "userId", "expiresAt", "channels"}``."""
        import jwt  # noqa: PLC0415 - only when a page signs in

        claims = self.claims(body, int(time.time()) if now is None else now)
        token = jwt.encode(claims, self.secret, algorithm="HS256")
        return {
            "token": token,
            "userId": claims["sub"],
            "expiresAt": claims["exp"],
            "channels": claims["channels"],
        }

    def add_routes(self, app: web.Application) -> None:
        """Serve ``POST /_lambdacast/dev-token`` (and its CORS preflight) on ``app``."""
        app.router.add_post(PATH, self._handle)
        app.router.add_route("OPTIONS", PATH, self._preflight)

    def _headers(self, request: web.Request) -> tuple[dict[str, str], str | None]:
        origin = request.headers.get("Origin")
        why = refusal(origin, request.remote, self.allowed_origins)
        if why is not None:
            return dict(_COMMON_HEADERS), why
        headers = dict(_COMMON_HEADERS)
        if origin is not None:
            headers.update(
                {
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "POST, OPTIONS",
                    "Access-Control-Allow-Headers": "Content-Type",
                }
            )
        return headers, None

    async def _preflight(self, request: web.Request) -> web.Response:
        headers, why = self._headers(request)
        if why is not None:
            return web.json_response({"message": why}, status=403, headers=headers)
        return web.Response(status=204, headers=headers)

    async def _handle(self, request: web.Request) -> web.Response:
        headers, why = self._headers(request)
        if why is not None:
            return web.json_response({"message": why}, status=403, headers=headers)
        try:
            body = json.loads(await request.text())
            answer = self.mint(body)
        except (json.JSONDecodeError, DevTokenError) as exc:
            message = str(exc) if isinstance(exc, DevTokenError) else "The body is not JSON."
            return web.json_response({"message": message}, status=400, headers=headers)
        return web.json_response(answer, headers=headers)
