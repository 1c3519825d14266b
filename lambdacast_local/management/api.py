"""The ``@connections`` management API (PostToConnection / GetConnection / DeleteConnection).

Served at ``/{stage}/@connections/{id}`` and ``/@connections/{id}`` on the WebSocket port (aiohttp, here)
and on the TLS listener handlers reach (``listener.py``); both call ``ManagementApi.call``, so
the semantics live in one place. Errors use the restJson shape botocore parses (``x-amzn-ErrorType`` plus
a JSON message). With ``secrets`` (the emulator listens beyond loopback), every call must be SigV4-signed,
as on AWS. Every call then goes through the ``connections`` faults of ``--faults`` (delay, 429, 500, 410).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from lambdacast_local import sigv4
from lambdacast_local.faults import CONNECTIONS, Faults
from lambdacast_local.gateway import GOING_AWAY, MAX_MESSAGE_BYTES, Gateway

OPERATIONS = {"POST": "post", "GET": "get", "DELETE": "delete"}
"""HTTP method -> the operation's name in ``ManagementApi.calls``."""


@dataclass(frozen=True)
class Answer:
    """What one call answers: a status, and a JSON body (errors carry ``x-amzn-ErrorType``)."""

    status: int
    body: bytes = b""
    error_type: str | None = None
    content_type: str = "application/json"


DELETED_REASON = "Connection Closed Normally"
"""``disconnectReason`` of a DeleteConnection, as API Gateway's execution logs show it."""
OK = Answer(200, content_type="")
NO_CONTENT = Answer(204, content_type="")


def _error(status: int, error_type: str, message: str) -> Answer:
    return Answer(status, json.dumps({"message": message}).encode(), error_type)


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Request:
    """One call, whatever server received it."""

    method: str
    connection_id: str
    body: bytes
    url: str = ""
    """As the client addressed it (SigV4 signs it)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Case-insensitive lookups (SigV4 reads ``Authorization`` and ``X-Amz-Date``)."""


class ManagementApi:
    """The three operations over the gateway's live connections, and how many of each it served."""

    def __init__(
        self, gateway: Gateway, faults: Faults | None = None, secrets: Mapping[str, str] | None = None
    ) -> None:
        self.gateway = gateway
        self.faults = faults or Faults()
        self.secrets = secrets
        """Access key id -> secret key SigV4 is verified with; ``None``: unsigned calls are served."""
        self.calls = dict.fromkeys(OPERATIONS.values(), 0)
        """Operation (``post``, ``get``, ``delete``) -> calls received, whatever their answer."""

    async def call(self, request: Request) -> Answer:
        """Answer one call (``method`` one of ``OPERATIONS``)."""
        self.calls[OPERATIONS[request.method]] += 1
        if self.secrets is not None:
            signed = sigv4.verify(
                request.method, request.url, request.headers, request.body, secrets=self.secrets
            )
            if isinstance(signed, str):
                return _error(403, "ForbiddenException", signed)
        fault = self.faults.decide(CONNECTIONS)
        if fault.delay_ms > 0:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.kind == "429":
            return _error(429, "LimitExceededException", "Rate exceeded")
        if fault.kind == "500":
            return _error(500, "InternalServerErrorException", "Internal server error")
        live = self.gateway.connections.get(request.connection_id)
        if live is None or not live.open:
            return _error(410, "GoneException", "")
        if fault.kind == "410":  # API Gateway lost the connection: the client sees it go, $disconnect fires
            await self.gateway.close(live, GOING_AWAY, "Going away")
            return _error(410, "GoneException", "")
        if request.method == "POST":  # PostToConnection: text when the body is UTF-8, else binary
            data = request.body
            if len(data) > MAX_MESSAGE_BYTES:
                return _error(413, "PayloadTooLargeException", "Request entity too large")
            try:
                frame: str | bytes = data.decode("utf-8")
            except UnicodeDecodeError:
                frame = data
            if not await self.gateway.send(live, frame):
                return _error(410, "GoneException", "")
            live.touch()
            return OK
        if request.method == "GET":
            # The wire names are camelCase (the service model's locationName); boto3 shows them capitalised.
            info = live.info
            state = {
                "connectedAt": _iso(info.connected_at),
                "identity": {"sourceIp": info.source_ip, "userAgent": info.user_agent},
                "lastActiveAt": _iso(live.last_active_ms),
            }
            return Answer(200, json.dumps(state).encode())
        await self.gateway.close(live, 1000, DELETED_REASON)
        return NO_CONTENT

    # -- served by aiohttp (the WebSocket port) ----------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """Register the three operations with and without the stage prefix."""
        for prefix in ("", f"/{self.gateway.api.stage}"):
            path = f"{prefix}/@connections/{{connection_id}}"
            app.router.add_post(path, self._serve)
            app.router.add_get(path, self._serve)
            app.router.add_delete(path, self._serve)

    async def _serve(self, request: web.Request) -> web.Response:
        body = await request.read()
        answer = await self.call(
            Request(
                request.method, request.match_info["connection_id"], body, str(request.url), request.headers
            )
        )
        headers = {"x-amzn-ErrorType": answer.error_type} if answer.error_type else None
        return web.Response(
            status=answer.status,
            body=answer.body or None,
            content_type=answer.content_type or None,
            headers=headers,
        )
