"""The ``@connections`` management API (PostToConnection / GetConnection / DeleteConnection).

Served at ``/{stage}/@connections/{id}`` and ``/@connections/{id}`` on the WebSocket port and on the TLS
listener. Errors use the restJson shape botocore parses (``x-amzn-ErrorType`` plus a JSON message).
With ``secrets`` (the emulator listens beyond loopback), every call must be SigV4-signed, as on AWS.
Every call then goes through the ``connections`` faults of ``--faults`` (delay, 429, 500, 410).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime

from aiohttp import web

from lambdacast_local import sigv4
from lambdacast_local.faults import CONNECTIONS, Faults
from lambdacast_local.gateway import GOING_AWAY, MAX_MESSAGE_BYTES, Gateway, LiveConnection


def _error(status: int, error_type: str, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status, headers={"x-amzn-ErrorType": error_type})


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ManagementApi:
    """HTTP handlers over the gateway's live connections."""

    def __init__(
        self, gateway: Gateway, faults: Faults | None = None, secrets: Mapping[str, str] | None = None
    ) -> None:
        self.gateway = gateway
        self.faults = faults or Faults()
        self.secrets = secrets
        """Access key id -> secret key SigV4 is verified with; ``None``: unsigned calls are served."""

    def add_routes(self, app: web.Application) -> None:
        """Register the three operations with and without the stage prefix."""
        for prefix in ("", f"/{self.gateway.api.stage}"):
            path = f"{prefix}/@connections/{{connection_id}}"
            app.router.add_post(path, self.post)
            app.router.add_get(path, self.get)
            app.router.add_delete(path, self.delete)

    async def _find(self, request: web.Request) -> LiveConnection | web.Response:
        if self.secrets is not None:
            body = await request.read()
            url, headers = str(request.url), request.headers
            signed = sigv4.verify(request.method, url, headers, body, secrets=self.secrets)
            if isinstance(signed, str):
                return _error(403, "ForbiddenException", signed)
        fault = self.faults.decide(CONNECTIONS)
        if fault.delay_ms > 0:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.kind == "429":
            return _error(429, "LimitExceededException", "Rate exceeded")
        if fault.kind == "500":
            return _error(500, "InternalServerErrorException", "Internal server error")
        live = self.gateway.connections.get(request.match_info["connection_id"])
        if live is None or not live.open:
            return _error(410, "GoneException", "")
        if fault.kind == "410":  # API Gateway lost the connection: the client sees it go, $disconnect fires
            await self.gateway.close(live, GOING_AWAY, "Going away")
            return _error(410, "GoneException", "")
        return live

    async def post(self, request: web.Request) -> web.Response:
        """PostToConnection: send the body as one frame (text when it is UTF-8, else binary)."""
        found = await self._find(request)
        if isinstance(found, web.Response):
            return found
        data = await request.read()
        if len(data) > MAX_MESSAGE_BYTES:
            return _error(413, "PayloadTooLargeException", "Request entity too large")
        try:
            frame: str | bytes = data.decode("utf-8")
        except UnicodeDecodeError:
            frame = data
        if not await self.gateway.send(found, frame):
            return _error(410, "GoneException", "")
        found.touch()
        return web.Response(status=200)

    async def get(self, request: web.Request) -> web.Response:
        """GetConnection: ``ConnectedAt``, ``Identity {SourceIp, UserAgent}``, ``LastActiveAt``.

        The wire names are camelCase (the service model's locationName); boto3 shows them capitalised.
        """
        found = await self._find(request)
        if isinstance(found, web.Response):
            return found
        info = found.info
        return web.json_response(
            {
                "connectedAt": _iso(info.connected_at),
                "identity": {"sourceIp": info.source_ip, "userAgent": info.user_agent},
                "lastActiveAt": _iso(found.last_active_ms),
            }
        )

    async def delete(self, request: web.Request) -> web.Response:
        """DeleteConnection: close the socket; the gateway then fires ``$disconnect``."""
        found = await self._find(request)
        if isinstance(found, web.Response):
            return found
        await self.gateway.close(found, 1000, "Connection closed by the @connections API")
        return web.Response(status=204)
