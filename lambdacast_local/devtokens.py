"""A local-only token minter, so a demo page can sign in without a site backend.

``lambdacast local --dev-tokens NAME`` creates a random HS256 secret, stores it in the embedded
SSM Parameter Store as the SecureString ``NAME`` (the app's authorizer reads it from there, as it
would on AWS), and serves ``POST /_lambdacast/dev-token`` on the emulator's port. The endpoint
mints short-lived tokens for any display name: it exists only in the emulator, never in a
deployed stack.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PATH = "/_lambdacast/dev-token"
TOKEN_LIFETIME_S = 3600
MAX_NAME_CHARS = 64
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Cache-Control": "no-store",
}
_SLUG = re.compile(r"[^a-z0-9]+")


class DevTokenError(ValueError):
    """The request cannot be turned into a token (the message says why)."""


@dataclass(frozen=True)
class DevTokenMinter:
    """Mints HS256 tokens with the claims lambdacast's authorizer reads (sub, name, channels, exp).

    Attributes:
        parameter_name: The SSM parameter the secret is stored under.
        secret: The HS256 secret (random per emulator run unless given).
        channels: The channel patterns every minted token grants.
    """

    parameter_name: str
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48), repr=False)
    channels: tuple[str, ...] = ("*",)

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
        user_id = body.get("userId")
        if user_id is None:
            # One display name is one user, so two tabs signed in as "Ada" are one presence member.
            digest = hashlib.sha256(name.encode()).hexdigest()[:8]
            user_id = f"dev-{_SLUG.sub('-', name.lower()).strip('-')[:32] or 'user'}-{digest}"
        elif not isinstance(user_id, str) or not 0 < len(user_id) <= 128:
            raise DevTokenError("'userId' must be a string of 1 to 128 characters.")
        return {
            "sub": user_id,
            "aud": "lambdacast",
            "name": name,
            "channels": list(self.channels),
            "iat": now,
            "exp": now + TOKEN_LIFETIME_S,
        }

    def mint(self, body: Any, now: int | None = None) -> dict[str, Any]:
        """The endpoint's answer: ``{"token", "userId", "expiresAt"}``."""
        import jwt  # noqa: PLC0415 - only when a page signs in

        claims = self.claims(body, int(time.time()) if now is None else now)
        token = jwt.encode(claims, self.secret, algorithm="HS256")
        return {"token": token, "userId": claims["sub"], "expiresAt": claims["exp"]}

    def add_routes(self, app: web.Application) -> None:
        """Serve ``POST /_lambdacast/dev-token`` (and its CORS preflight) on ``app``."""
        app.router.add_post(PATH, self._handle)
        app.router.add_route("OPTIONS", PATH, self._preflight)

    async def _preflight(self, _: web.Request) -> web.Response:
        return web.Response(status=204, headers=_CORS)

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.text())
            answer = self.mint(body)
        except (json.JSONDecodeError, DevTokenError) as exc:
            message = str(exc) if isinstance(exc, DevTokenError) else "The body is not JSON."
            return web.json_response({"message": message}, status=400, headers=_CORS)
        return web.json_response(answer, headers=_CORS)
