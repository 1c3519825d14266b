"""The three route handlers' logic; ``functions/*/app.py`` add the decorators and call these.

Dependencies (settings, table client, the delivery engine, fan-out queue) are built once per
container by :func:`get_runtime`; tests replace that function to inject fakes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_websocket_event import (
    APIGatewayWebSocketEvent,
)

from lambdacast import observability as obs
from lambdacast.actions import router
from lambdacast.channels import ChannelStore
from lambdacast.config import Settings, get_settings
from lambdacast.delivery.broadcaster import Broadcaster, DirectBroadcaster, deadline_for
from lambdacast.delivery.endpoint import resolve_endpoint
from lambdacast.delivery.queue import QueueingBroadcaster, QueueSender
from lambdacast.departures import Departures, announce
from lambdacast.errors import INTERNAL_ERROR_MESSAGE, Banned, ErrorCode, UnknownConnection
from lambdacast.numbering import Numbering
from lambdacast.quotas import Quotas
from lambdacast.ratelimit import ACTION_BURST, ACTION_RATE_PER_SECOND, RateLimiter
from lambdacast.router import Caller, Context
from lambdacast.wire.frames import error_frame
from lambdacast.wire.handshake import choose_subprotocol
from lambdacast.wire.limits import MAX_POST_BYTES

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from lambdacast.delivery.exchange import Exchange

OK = {"statusCode": 200}


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class Runtime:
    """The per-container services: settings, store, the delivery engine and the fan-out queue.

    Args:
        settings: The settings.
        store: The channel store (built from ``settings.table_name`` when omitted).
        exchange: How each ``@connections`` request is sent (tests pass an in-memory one); by
            default the pooled aiohttp session of :mod:`lambdacast.delivery.transport`.
        sqs: The SQS client of the fan-out queue (tests); by default built on first use when
            ``settings.fanout_queue_url`` is set and a batch is sent.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: ChannelStore | None = None,
        exchange: Exchange | None = None,
        sqs: Any = None,
    ) -> None:
        self.settings = settings
        self.store = store or ChannelStore(
            settings.table_name, max_pool_connections=settings.fanout_concurrency + 4
        )
        self._exchange = exchange
        self._direct: dict[str, DirectBroadcaster] = {}
        self._fanouts: dict[str, Broadcaster] = {}
        self.limiter = RateLimiter(rate=settings.publish_rate_per_second, burst=settings.publish_burst)
        self.action_limiter = RateLimiter(rate=ACTION_RATE_PER_SECOND, burst=ACTION_BURST)
        self.departures = Departures(self.store, self.limiter)
        self.numbering = Numbering(self.store)
        self.quotas = Quotas(self.store, settings) if settings.shared_rate_limits else None
        self._sqs = sqs
        self._sender: QueueSender | None = None

    def direct(self, endpoint: str) -> DirectBroadcaster:
        """The engine posting from this function to ``endpoint`` (fan-out pages, replays, disconnects)."""
        engine = self._direct.get(endpoint)
        if engine is None:
            options: dict[str, Any] = {} if self._exchange is None else {"exchange": self._exchange}
            engine = self._direct[endpoint] = DirectBroadcaster(
                endpoint,
                concurrency=self.settings.fanout_concurrency,
                on_gone=self.departures.remove,
                **options,
            )
        return engine

    def fanout(self, endpoint: str) -> Broadcaster:
        """The broadcaster to ``endpoint``: direct, or through SQS beyond the queue threshold."""
        engine = self._fanouts.get(endpoint)
        if engine is None:
            engine = self.direct(endpoint)
            if self.settings.fanout_queue_url:  # recipients beyond the threshold go through SQS
                engine = QueueingBroadcaster(
                    engine,
                    self.queue_sender(),
                    endpoint=endpoint,
                    threshold=self.settings.queue_fanout_threshold,
                )
            self._fanouts[endpoint] = engine
        return engine

    def queue_sender(self) -> QueueSender:
        """The sender of batches to the fan-out queue (``settings.fanout_queue_url`` must be set)."""
        if self._sender is None:
            if not self.settings.fanout_queue_url:
                raise RuntimeError("FANOUT_QUEUE_URL is not set")
            self._sender = QueueSender(self._sqs, self.settings.fanout_queue_url)
        return self._sender


@cache
def get_runtime() -> Runtime:
    """Return this container's runtime (built on first use)."""
    return Runtime(get_settings())


def _caller(event: APIGatewayWebSocketEvent) -> Caller:
    rc = event.request_context
    authorizer = rc.get("authorizer") or {}
    if not isinstance(authorizer, Mapping):
        authorizer = {}
    user_id = authorizer.get("userId")
    return Caller(
        connection_id=rc.connection_id,
        user_id=str(user_id) if user_id else None,
        connected_at=int(rc.get("connectedAt") or now_ms()),
        authorizer=dict(authorizer),
    )


def _bind(event: APIGatewayWebSocketEvent) -> None:
    rc = event.request_context
    obs.bind_request(
        connection_id=str(rc.get("connectionId")),
        request_id=str(rc.get("requestId")),
        route=str(rc.get("routeKey")),
    )


def on_connect(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """``$connect``: choose the subprotocol, record the connection. Nothing is posted (410 meanwhile).

    Returns:
        200 when recorded, with ``Sec-WebSocket-Protocol: lambdacast.v1`` when the client offered
        it; 400 (nothing recorded) when the client offered only other subprotocols; 403 when its
        user is banned (admin API); 500 (the handshake fails, the client retries) when the table
        write failed.
    """
    ws = APIGatewayWebSocketEvent(event)
    _bind(ws)
    handshake = choose_subprotocol(_header(ws, "Sec-WebSocket-Protocol"))
    if not handshake.accept:
        obs.logger.info("refusing the handshake", extra={"reason": handshake.reason})
        obs.count(obs.CONNECTIONS_REFUSED)
        return {"statusCode": 400}
    try:
        runtime = get_runtime()
        caller = _caller(ws)
        runtime.store.put_connection(
            caller.connection_id,
            connected_at=caller.connected_at,
            source_ip=(ws.request_context.get("identity") or {}).get("sourceIp"),
            user_id=caller.user_id,
            ttl=caller.connected_at // 1000 + runtime.settings.connection_ttl_seconds,
            now_epoch=now_ms() // 1000,
        )
    except Banned:
        obs.logger.info("refusing a banned user", extra={"user_id": _caller(ws).user_id})
        obs.count(obs.CONNECTIONS_REFUSED)
        return {"statusCode": 403}
    except Exception:
        obs.logger.exception("could not record the connection; refusing the handshake")
        obs.count(obs.CONNECTIONS_REFUSED)
        return {"statusCode": 500}
    obs.count(obs.CONNECTIONS)
    obs.logger.info("connected", extra={"user_id": caller.user_id, "subprotocol": handshake.subprotocol})
    if handshake.subprotocol is None:
        return OK
    return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": handshake.subprotocol}}


def _header(ws: APIGatewayWebSocketEvent, name: str) -> str | None:
    """A request header's value, matched case-insensitively (multi-value headers joined by commas)."""
    wanted = name.lower()
    multi = ws.get("multiValueHeaders") or {}
    for key, values in multi.items():
        if key.lower() == wanted and values:
            return ",".join(str(v) for v in values)
    for key, value in (ws.get("headers") or {}).items():
        if key.lower() == wanted:
            return str(value)
    return None


def on_disconnect(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """``$disconnect``: remove the connection and all its subscriptions (best-effort; TTL backs it up)."""
    ws = APIGatewayWebSocketEvent(event)
    _bind(ws)
    rc = ws.request_context
    try:
        runtime = get_runtime()
        channels = runtime.departures.remove(rc.connection_id)
    except Exception:
        obs.logger.exception("could not remove the connection; its items expire by TTL")
        return OK
    try:
        endpoint = resolve_endpoint(
            runtime.settings.management_endpoint, domain_name=rc.domain_name, stage=rc.stage
        )
        announce([], runtime.departures, runtime.fanout(endpoint), runtime.store)
    except Exception:
        obs.logger.exception("could not announce the presence members who left")
    obs.count(obs.DISCONNECTIONS)
    obs.logger.info(
        "disconnected",
        extra={
            "channels": len(channels),
            "status_code": rc.get("disconnectStatusCode"),
            "reason": rc.get("disconnectReason"),
        },
    )
    return OK


def on_message(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """``$default``: run the frame's action and answer the caller.

    The reply is the route's response (``body``): API Gateway delivers it through the route
    response, with no ``@connections`` call. Frames that must precede it (a recovery replay) are
    posted before this returns. With ``DIRECT_REPLIES=false`` (a route without a route response)
    the reply is posted to the caller's connection instead. Never raises.
    """
    ws = APIGatewayWebSocketEvent(event)
    _bind(ws)
    ctx: Context | None = None
    runtime: Runtime | None = None
    endpoint = ""
    try:
        runtime = get_runtime()
        rc = ws.request_context
        caller = _caller(ws)
        endpoint = resolve_endpoint(
            runtime.settings.management_endpoint, domain_name=rc.domain_name, stage=rc.stage
        )
        ctx = Context(
            caller=caller,
            settings=runtime.settings,
            store=runtime.store,
            fanout=runtime.fanout(endpoint),
            clock=now_ms,
            direct=runtime.direct(endpoint),
            limiter=runtime.limiter,
            action_limiter=runtime.action_limiter,
            departures=runtime.departures,
            deadline=deadline_for(context),
            numbering=runtime.numbering,
            quotas=runtime.quotas,
        )
        obs.count(obs.FRAMES)
        outcome = router.dispatch(ws.body, ctx, binary=bool(ws.get("isBase64Encoded")))
        if outcome.error is not None:
            obs.count(obs.ERROR_FRAMES)
            if isinstance(outcome.exception, UnknownConnection):
                # Its socket closed while the frame was in flight ($disconnect marked it): no fault.
                obs.logger.info("frame from a connection that is gone or closing")
            elif outcome.error is ErrorCode.INTERNAL_ERROR:
                obs.logger.error("frame failed", exc_info=outcome.exception)
            else:
                obs.logger.info("frame refused", extra={"code": outcome.error.value})
        reply = outcome.frame
    except Exception:
        obs.logger.exception("frame failed before dispatch")
        reply = error_frame(None, code=ErrorCode.INTERNAL_ERROR, message=INTERNAL_ERROR_MESSAGE)
    reply = _fitting(reply)
    if ctx is not None and ctx.departures is not None:
        try:
            announce([], ctx.departures, ctx.fanout, ctx.store)
        except Exception:
            obs.logger.exception("could not announce the presence members who left")
    if runtime is None or runtime.settings.direct_replies or not endpoint:
        return {"statusCode": 200, "body": reply}
    try:
        runtime.direct(endpoint).post_in_order(ws.request_context.connection_id, [reply.encode()])
    except Exception:
        obs.logger.exception("could not post the reply")
    return OK


def _fitting(frame: str) -> str:
    """The reply, or a small ``too_large`` error when it is larger than API Gateway would deliver."""
    size = len(frame.encode())
    if size <= MAX_POST_BYTES:
        return frame
    obs.logger.error("reply too large to send", extra={"bytes": size})
    try:
        frame_id = json.loads(frame).get("id")
    except ValueError:
        frame_id = None
    return error_frame(
        frame_id if isinstance(frame_id, str) else None,
        code=ErrorCode.TOO_LARGE,
        message=f"The reply ({size} bytes) was larger than a WebSocket message may be; ask for less "
        '(a smaller history "limit", say).',
    )
