"""The admin API, to remove an abuser: close one connection, or every connection of a user (and ban it).

``DELETE /connections/{connectionId}`` and ``DELETE /users/{sub}/connections``: routes of the
IAM-authorized HTTP API (the server-side publish API's), so only principals allowed
``execute-api:Invoke`` on them can call them (docs/security.md has the policy to grant). The
connections are closed through ``@connections`` (``DELETE``, signed like every post); API Gateway
then runs ``$disconnect``, which removes their items and presence memberships as usual.

* ``DELETE /connections/{connectionId}``: ``204`` when the connection was open and is now closed,
  ``404 {"code": "not_found"}`` when it was already gone.
* ``DELETE /users/{sub}/connections[?ban=SECONDS]``: closes every connection the user holds (they
  are listed at ``$connect``) and answers ``200 {"userId", "closed", "bannedUntil"}``; with ``ban``
  (1 s to 30 days) the user's new connections are refused (``403`` at the handshake) until then.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from lambdacast import observability as obs
from lambdacast.errors import INTERNAL_ERROR_MESSAGE

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from lambdacast.handlers import Runtime

#: The longest ban one call may set (a longer one is a decision for the site's own user store).
MAX_BAN_SECONDS: Final = 30 * 24 * 3600


def _response(status: int, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"statusCode": status}
    if body is not None:
        response["headers"] = {"content-type": "application/json"}
        response["body"] = json.dumps(body, separators=(",", ":"))
    return response


def _refused(status: int, code: str, message: str) -> dict[str, Any]:
    obs.count(obs.ADMIN_REFUSED)
    return _response(status, {"code": code, "message": message})


def _ban_seconds(event: dict[str, Any]) -> int | dict[str, Any] | None:
    raw = (event.get("queryStringParameters") or {}).get("ban")
    if raw is None:
        return None
    try:
        seconds = int(raw)
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= MAX_BAN_SECONDS:
        return _refused(
            400, "invalid_frame", f'"ban" must be a number of seconds from 1 to {MAX_BAN_SECONDS}.'
        )
    return seconds


def handle(event: dict[str, Any], runtime: Runtime, *, now_epoch: int) -> dict[str, Any]:
    """Serve one admin request (payload 2.0). Never raises for the request's sake.

    Args:
        event: The HTTP API event.
        runtime: The per-container runtime (store, the delivery engine).
        now_epoch: The current time, seconds since epoch.
    """
    endpoint = runtime.settings.management_endpoint
    if endpoint is None:
        obs.logger.error("MANAGEMENT_ENDPOINT is not set; the admin API cannot reach @connections")
        return _refused(500, "internal_error", INTERNAL_ERROR_MESSAGE)
    params = event.get("pathParameters") or {}
    route = str(event.get("routeKey", ""))
    engine = runtime.direct(endpoint)
    if route.endswith("/connections/{connectionId}"):
        connection_id = str(params.get("connectionId", ""))
        if not connection_id:
            return _refused(400, "invalid_frame", "The path must name a connection id.")
        if not engine.disconnect(connection_id):
            obs.count(obs.ADMIN_CLOSED_CONNECTIONS, 0)
            return _refused(404, "not_found", f"Connection {connection_id} is not open.")
        obs.count(obs.ADMIN_CLOSED_CONNECTIONS)
        obs.logger.info("admin closed a connection", extra={"closed": connection_id})
        return _response(204)
    if route.endswith("/users/{sub}/connections"):
        user_id = str(params.get("sub", ""))
        if not user_id:
            return _refused(400, "invalid_frame", "The path must name a user id (the token's sub).")
        ban = _ban_seconds(event)
        if isinstance(ban, dict):
            return ban
        until = None
        if ban is not None:  # first, so a connection opened while closing the others is refused
            until = now_epoch + ban
            runtime.store.ban_user(user_id, until_epoch=until)
        closed = sum(1 for cid in runtime.store.user_connections(user_id) if engine.disconnect(cid))
        obs.count(obs.ADMIN_CLOSED_CONNECTIONS, closed)
        obs.logger.info("admin closed a user's connections", extra={"user": user_id, "closed": closed})
        return _response(200, {"userId": user_id, "closed": closed, "bannedUntil": until})
    return _refused(404, "not_found", f"No admin route {route!r}.")


def on_admin_request(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """``AdminFunction``'s logic (``functions/admin/app.py``). Never raises."""
    from lambdacast import handlers  # noqa: PLC0415 - the runtime lives there; tests replace it

    request_context = event.get("requestContext") or {}
    iam = ((request_context.get("authorizer") or {}).get("iam")) or {}
    obs.logger.append_keys(request_id=request_context.get("requestId"), caller=iam.get("userArn"))
    try:
        return handle(event, handlers.get_runtime(), now_epoch=handlers.now_ms() // 1000)
    except Exception:
        obs.logger.exception("admin request failed")
        return _refused(500, "internal_error", INTERNAL_ERROR_MESSAGE)
