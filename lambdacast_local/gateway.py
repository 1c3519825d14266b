"""The WebSocket side of API Gateway: handshakes, ``$connect`` / authorizer, routing, ``$disconnect``.

One aiohttp handler per connection; no task per idle connection (one timer is the idle and
maximum-duration clock), so an idle connection costs a few kilobytes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from lambdacast_local import authorizer, sigv4
from lambdacast_local.events import (
    Connection,
    Stage,
    authorizer_event,
    connect_event,
    disconnect_event,
    handshake_headers,
    message_event,
    new_id,
    now_ms,
)
from lambdacast_local.frames import MAX_FRAME_BYTES, GatewayWebSocketResponse
from lambdacast_local.integration import INTEGRATION_TIMEOUT_S, TIMED_OUT, Integration
from lambdacast_local.lambda_pool import LambdaService
from lambdacast_local.model import WebSocketApi
from lambdacast_local.routing import select_route
from lambdacast_local.runtime_env import FAKE_ACCESS_KEY, FAKE_SECRET_KEY

_LOG = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 128 * 1024
GOING_AWAY = 1001
NO_STATUS = 1005
NO_STATUS_REASON = "Client-side close frame status not set"
"""What API Gateway reports in ``$disconnect`` for a close frame without a status code."""
_HOP_HEADERS = {"connection", "upgrade"}


@dataclass(frozen=True)
class GatewaySettings:
    """Limits a test may shorten."""

    idle_timeout_s: float = 600.0
    max_duration_s: float = 7200.0
    iam_auth: bool = True
    """Verify SigV4 on ``AWS_IAM`` routes (``False``: the documented local bypass)."""
    iam_secrets: Mapping[str, str] = field(default_factory=lambda: {FAKE_ACCESS_KEY: FAKE_SECRET_KEY})
    """Access key id -> secret key of the credentials SigV4 can be verified with."""
    integration_timeout_s: float = INTEGRATION_TIMEOUT_S
    """API Gateway stops waiting for an integration after this long (the function keeps running)."""
    max_frame_bytes: int = MAX_FRAME_BYTES
    """A received frame over this many bytes closes the connection with 1009."""


@dataclass(eq=False)
class LiveConnection:
    """A connection as API Gateway tracks it."""

    info: Connection
    ws: web.WebSocketResponse | None = None
    open: bool = False
    last_active_ms: int = 0
    """``LastActiveAt``: the last message in either direction."""
    last_client_ms: int = 0
    """The idle clock: the last message from the client."""
    close_code: int | None = None
    close_reason: str = ""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    sink: list[str | bytes] | None = None
    """Frames of a simulated connection (no socket; for tests and benchmarks at scale)."""
    clock: asyncio.TimerHandle | None = None
    """Fires at the idle or maximum-duration deadline (``Gateway._arm_idle_clock``)."""

    def touch(self, from_client: bool = False) -> None:
        """Record activity (``LastActiveAt``; the idle clock too when the client sent it)."""
        self.last_active_ms = now_ms()
        if from_client:
            self.last_client_ms = self.last_active_ms


class Gateway:
    """Serves one WebSocket API over aiohttp and keeps its live connections."""

    def __init__(
        self, api: WebSocketApi, lambdas: LambdaService, stage: Stage, settings: GatewaySettings
    ) -> None:
        self.api = api
        self.lambdas = lambdas
        self.stage = stage
        self.settings = settings
        self.integration = Integration(lambdas, settings.integration_timeout_s)
        self.connections: dict[str, LiveConnection] = {}
        self.simulated: dict[str, LiveConnection] = {}
        """Every simulated connection ever opened (their frames stay readable after they close)."""
        self._background: set[asyncio.Task[Any]] = set()
        self._detached: set[asyncio.Task[Any]] = set()
        self._running_loop: asyncio.AbstractEventLoop | None = None

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        """The loop serving the gateway, looked up once.

        On Python 3.11 each ``asyncio.get_running_loop()`` is a ``getpid`` system call (its fork
        check), and the message path asked several times.
        """
        if self._running_loop is None:
            self._running_loop = asyncio.get_running_loop()
        return self._running_loop

    def add_routes(self, app: web.Application) -> None:
        """Register the WebSocket endpoint at ``/{stage}`` (AWS has no stageless URL)."""
        app.router.add_get(f"/{self.api.stage}", self.handle)
        app.router.add_get(f"/{self.api.stage}/", self.handle)

    @staticmethod
    def add_fallback(app: web.Application) -> None:
        """Answer every other path 403 ``Forbidden``, as execute-api hosts do (register it last)."""

        async def forbidden(_: web.Request) -> web.Response:
            return _json_response(403, {"message": "Forbidden"})

        app.router.add_route("*", "/{path:.*}", forbidden)

    def _message_timed_out(
        self, live: LiveConnection, event: dict[str, Any], task: asyncio.Task[Any] | None
    ) -> None:
        """A message's integration timed out: the client gets API Gateway's error frame at once.

        The message's task stops counting as the connection's (``$disconnect`` does not wait for it).
        """
        if task is not None and task in live.tasks:
            live.tasks.discard(task)
            self._detached.add(task)  # not awaited at shutdown: closing the workers ends it
            task.add_done_callback(self._detached.discard)
        request_id = event["requestContext"]["requestId"]
        self._spawn(self.send(live, _error_frame(TIMED_OUT, live, request_id)))

    def _spawn(self, coro: Any, owner: LiveConnection | None = None) -> None:
        task: asyncio.Task[Any] = self._loop.create_task(coro)
        bucket: set[Any] = owner.tasks if owner is not None else self._background
        bucket.add(task)
        task.add_done_callback(bucket.discard)

    # -- handshake -------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Run a handshake through the authorizer and ``$connect``, then serve the connection."""
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=426, text="lambdacast local: connect with a WebSocket client.\n")
        source_ip = request.remote or "127.0.0.1"
        peer = request.transport.get_extra_info("sockname") if request.transport else None
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS]
        headers += handshake_headers(request.host, source_ip, peer[1] if peer else 443)[:-1]  # Host is there
        info = Connection(
            connection_id=new_id(),
            connected_at=now_ms(),
            source_ip=source_ip,
            user_agent=request.headers.get("User-Agent", ""),
            headers=headers,
            query=list(request.query.items()),
        )
        live = LiveConnection(info=info, last_active_ms=info.connected_at, last_client_ms=info.connected_at)
        self.connections[info.connection_id] = live  # visible to @connections as 410 until open
        try:
            refusal, protocol = await self._authorize_and_connect(live, request)
            if refusal is not None:
                return refusal
            ws = GatewayWebSocketResponse(
                protocols=(protocol,) if protocol else (),
                max_msg_size=MAX_MESSAGE_BYTES,
                max_frame_size=self.settings.max_frame_bytes,
                autoping=True,
                compress=False,  # API Gateway negotiates no permessage-deflate
            )
            offered = {p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")}
            if protocol and protocol not in offered:
                # API Gateway sends what $connect returned even if the client never offered it (clients then
                # fail the handshake); aiohttp would silently drop it, so it is set by hand.
                ws.headers["Sec-WebSocket-Protocol"] = protocol
            try:
                await ws.prepare(request)
            except (ConnectionError, RuntimeError):  # the client left while $connect ran
                if "$connect" in self.api.routes:
                    live.close_code, live.close_reason = 1006, ""
                    self._spawn(self._disconnect(live))
                raise
            live.ws, live.open = ws, True
            info.headers, info.query = [], []  # only CONNECT events carry them: keep idle connections small
            await self._serve(live, ws)
        finally:
            self.connections.pop(info.connection_id, None)
        return live.ws if live.ws is not None else web.Response(status=500)

    async def _authorize_and_connect(
        self, live: LiveConnection, request: web.Request
    ) -> tuple[web.Response | None, str | None]:
        route = self.api.routes.get("$connect")
        if route is None:
            return None, None
        if route.iam:
            caller = sigv4.verify(
                "GET", str(request.url), request.headers, b"", secrets=self.settings.iam_secrets
            )
            if isinstance(caller, str) and self.settings.iam_auth:
                return _json_response(403, {"message": "Forbidden"}), None
            if isinstance(caller, str):
                caller = sigv4.Caller(
                    "LOCALBYPASS", "123456789012", "arn:aws:iam::123456789012:user/local-bypass"
                )
            live.info.caller = {
                "accessKey": caller.access_key,
                "accountId": caller.account_id,
                "caller": caller.access_key,
                "user": caller.access_key,
                "userArn": caller.user_arn,
            }
        if route.authorizer is not None:
            missing = authorizer.missing_identity_sources(
                route.authorizer.identity_sources, request.headers, request.query
            )
            if missing:
                return _json_response(401, {"message": "Unauthorized"}), None
            event = authorizer_event(self.stage, live.info)
            outcome = await self.lambdas.invoke(route.authorizer.function, event, "$connect authorizer")
            decision = (
                authorizer.decide(outcome.result, event["methodArn"], int(outcome.duration_ms))
                if outcome.ok
                else authorizer.failed(outcome.error)
            )
            if decision.status != 200:
                messages = {401: "Unauthorized", 403: "Forbidden", 500: "Internal server error"}
                return _json_response(decision.status, {"message": messages.get(decision.status, "")}), None
            live.info.authorizer = decision.context
        if route.function is None:
            return None, None
        connected = await self.integration.invoke(route, connect_event(self.stage, live.info), "$connect")
        if connected is None:
            return _json_response(504, {"message": TIMED_OUT}), None
        if not connected.ok:
            return _json_response(500, {"message": "Internal server error"}), None
        result = connected.result if isinstance(connected.result, dict) else {}
        try:
            status = int(result.get("statusCode", 200))
        except (TypeError, ValueError):
            return _json_response(500, {"message": "Internal server error"}), None
        if not 200 <= status < 300:
            body = result.get("body")
            return web.Response(status=status, text=body if isinstance(body, str) else None), None
        response_headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        return None, response_headers.get("sec-websocket-protocol")

    # -- the open connection -----------------------------------------------------------------------

    async def _serve(self, live: LiveConnection, ws: web.WebSocketResponse) -> None:
        self._arm_idle_clock(live)
        try:
            while True:
                message = await ws.receive()
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    live.touch(from_client=True)
                    self._spawn(self._route(live, message.data), owner=live)
                elif message.type == WSMsgType.ERROR:
                    live.close_code = getattr(message.data, "code", None) or ws.close_code or 1011
                    live.close_reason = "Message too big" if live.close_code == 1009 else str(message.data)
                    break
                else:  # CLOSE / CLOSING / CLOSED
                    if live.close_code is None:
                        live.close_code = ws.close_code if ws.close_code is not None else 1006
                        live.close_reason = message.extra if isinstance(message.extra, str) else ""
                        if live.close_code == 0:  # a close frame without a status code
                            live.close_code, live.close_reason = NO_STATUS, NO_STATUS_REASON
                    break
        finally:
            if live.clock is not None:
                live.clock.cancel()
        live.open = False
        if not ws.closed:
            await ws.close()
        self._spawn(self._disconnect(live))

    def _deadline_ms(self, live: LiveConnection) -> float:
        """When the connection goes: idle since the client's last message, or at its maximum duration."""
        settings = self.settings
        return min(
            live.last_client_ms + settings.idle_timeout_s * 1000,
            live.info.connected_at + settings.max_duration_s * 1000,
        )

    def _arm_idle_clock(self, live: LiveConnection) -> None:
        """One timer per connection, moved only when it fires: a message costs no timer work at all.

        When it fires early (the client spoke since), it is set again for the new deadline; when the
        deadline has passed, the connection is closed with 1001 as API Gateway closes idle ones.
        """
        delay_s = max((self._deadline_ms(live) - now_ms()) / 1000, 0.001)
        live.clock = self._loop.call_later(delay_s, self._idle_clock_fired, live)

    def _idle_clock_fired(self, live: LiveConnection) -> None:
        live.clock = None
        if not live.open:
            return
        if now_ms() >= self._deadline_ms(live):
            self._spawn(self.close(live, GOING_AWAY, "Going away"))
        else:
            self._arm_idle_clock(live)

    async def _disconnect(self, live: LiveConnection) -> None:
        if live.tasks:
            await asyncio.gather(*list(live.tasks), return_exceptions=True)
        route = self.api.routes.get("$disconnect")
        if route is None or route.function is None:
            return
        code = live.close_code if live.close_code is not None else 1006
        event = disconnect_event(self.stage, live.info, code, live.close_reason)
        await self.lambdas.invoke(route.function, event, "$disconnect")

    async def _route(self, live: LiveConnection, data: str | bytes) -> None:
        try:
            await self._route_one(live, data)
        except Exception:  # never drop a message silently: the client gets AWS's error frame
            _LOG.exception("routing a message of %s failed", live.info.connection_id)
            await self.send(live, _error_frame("Internal server error", live, new_id()))

    async def _route_one(self, live: LiveConnection, data: str | bytes) -> None:
        route_key = select_route(self.api.route_selection_expression, data, self.api.routes)
        if route_key is None:
            await self.send(live, _error_frame("Forbidden", live, new_id()))
            return
        route = self.api.routes[route_key]
        if route.function is None:
            return
        event = message_event(self.stage, live.info, route_key, data)
        on_timeout = functools.partial(self._message_timed_out, live, event)
        outcome = await self.integration.invoke_in_task(route, event, route_key, on_timeout)
        if outcome is None:  # timed out: the error frame is sent
            return
        if not outcome.ok:
            await self.send(
                live, _error_frame("Internal server error", live, event["requestContext"]["requestId"])
            )
            return
        if route.has_route_response:
            body = _response_body(outcome.result)
            if body is not None:
                await self.send(live, body)

    # -- used by @connections and shutdown ----------------------------------------------------------

    async def send(self, live: LiveConnection, data: str | bytes) -> bool:
        """Send one frame; ``False`` when the socket is no longer open."""
        if live.sink is not None:
            if live.open:
                live.sink.append(data)
            return live.open
        ws = live.ws
        if ws is None or not live.open or ws.closed:
            return False
        try:
            if isinstance(data, bytes):
                await ws.send_bytes(data)
            else:
                await ws.send_str(data)
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def close(self, live: LiveConnection, code: int, reason: str) -> None:
        """Close a connection from the server side (its handler then fires ``$disconnect``)."""
        if live.close_code is None:
            live.close_code, live.close_reason = code, reason
        was_open, live.open = live.open, False
        if live.sink is not None and was_open:
            self.connections.pop(live.info.connection_id, None)
            self._spawn(self._disconnect(live))
        if live.ws is not None and not live.ws.closed:
            await live.ws.close(code=code, message=reason.encode())

    def add_simulated(self, count: int) -> list[LiveConnection]:
        """Open ``count`` simulated connections: ``@connections`` treats them as sockets; frames go to a list.

        No ``$connect`` runs for them (a test registers them with the backend itself); closing one (DELETE,
        shutdown) fires ``$disconnect`` like a real socket.
        """
        created = []
        for _ in range(count):
            connected = now_ms()
            info = Connection(
                connection_id=new_id(), connected_at=connected, source_ip="127.0.0.1", user_agent="simulated"
            )
            live = LiveConnection(
                info=info, open=True, last_active_ms=connected, last_client_ms=connected, sink=[]
            )
            self.connections[info.connection_id] = live
            self.simulated[info.connection_id] = live
            created.append(live)
        return created

    async def shutdown(self) -> None:
        """Close every connection with 1001 and wait for their ``$disconnect`` invocations."""
        await asyncio.gather(
            *(self.close(live, GOING_AWAY, "Going away") for live in list(self.connections.values()))
        )
        for _ in range(100):
            if not self.connections and not self._background:
                break
            await asyncio.sleep(0.05)
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)


def _error_frame(message: str, live: LiveConnection, request_id: str) -> str:
    return json.dumps({"message": message, "connectionId": live.info.connection_id, "requestId": request_id})


def _response_body(result: Any) -> str | None:
    if isinstance(result, dict):
        if "body" not in result:
            return None if "statusCode" in result else json.dumps(result)
        body = result["body"]
        return body if isinstance(body, str) else json.dumps(body)
    if result is None:
        return None
    return result if isinstance(result, str) else json.dumps(result)


def _json_response(status: int, payload: dict[str, Any]) -> web.Response:
    return web.json_response(payload, status=status)
