"""Server-side publish over HTTP: ``POST /channels/{channel}/messages`` with ``{"data": ...}``.

An ``AWS::Serverless::HttpApi`` route with ``AWS_IAM`` auth (API Gateway checks the SigV4
signature before this code runs) and payload format 2.0. The body is validated like a client's
``publish`` frame (channel rules, ``data`` size) before DynamoDB is touched, then the message
goes through the same path as a WebSocket publish (:func:`lambdacast.publish.pipeline.publish_message`):
numbered, stored in the history, fanned out. The sender is the server: ``from`` has no
connection and no user.

IAM is the authorization: a caller allowed ``execute-api:Invoke`` on the route may publish to
any channel, including ``private-``/``presence-`` ones (scope it per channel with the route ARN).

Responses are JSON: ``200 {"channel", "seq", "delivered"}``, or an error
``{"code", "message"}`` with the status from :data:`STATUS`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from lambdacast import observability as obs
from lambdacast.delivery.broadcaster import deadline_for
from lambdacast.errors import (
    INTERNAL_ERROR_MESSAGE,
    ErrorCode,
    InvalidJson,
    ProtocolError,
    TooLarge,
    error_for,
)
from lambdacast.publish.pipeline import Message, Published, publish_message
from lambdacast.wire.frames import sender_of
from lambdacast.wire.limits import Limits
from lambdacast.wire.parser import parse_frame
from lambdacast.wire.requests import Publish

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.typing import LambdaContext

EXAMPLE: Final = '{"data": "hello"}'


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: HTTP status per error code (anything else is 500).
STATUS: Final[dict[ErrorCode, int]] = {
    ErrorCode.INVALID_JSON: 400,
    ErrorCode.INVALID_FRAME: 400,
    ErrorCode.INVALID_CHANNEL: 400,
    ErrorCode.UNKNOWN_ACTION: 400,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
}
#: Bytes of body read at most beyond the ``data`` limit (the ``{"data": }`` wrapper, whitespace).
BODY_SLACK: Final = 1024


def response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    """An HTTP API (payload 2.0) response with a JSON body."""
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body, separators=(",", ":")),
    }


def error_response(code: ErrorCode, message: str) -> dict[str, Any]:
    """The JSON error response for a code."""
    obs.count(obs.HTTP_PUBLISH_ERRORS)
    return response(STATUS.get(code, 500), {"code": code.value, "message": message})


def _body_text(event: APIGatewayProxyEventV2, max_bytes: int) -> str:
    raw = event.body or ""
    if event.is_base64_encoded:
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidJson("The body is not valid base64-encoded JSON.") from None
    else:
        data = raw.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise TooLarge(f"The body is {len(data)} bytes; the most accepted is {max_bytes} bytes.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson(f"The body is not UTF-8 text; send a JSON object such as {EXAMPLE}.") from None


def parse_request(event: dict[str, Any], limits: Limits) -> Publish:
    """Validate the request: the channel from the path, ``data`` (and ``msgId``) from the body.

    Args:
        event: The HTTP API event (payload 2.0).
        limits: The ``data`` size limit.

    Returns:
        The publish: channel, ``data`` serialized compactly, the optional ``msgId``.

    Raises:
        ProtocolError: The request breaks a rule (the subclass names the error code).
    """
    http = APIGatewayProxyEventV2(event)
    channel = (http.path_parameters or {}).get("channel")
    text = _body_text(http, limits.max_data_bytes + BODY_SLACK)
    if not text.strip():
        raise InvalidJson(f"The body is empty; send a JSON object such as {EXAMPLE}.")
    try:
        body = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise InvalidJson(f"The body is not valid JSON; send a JSON object such as {EXAMPLE}.") from None
    if not isinstance(body, dict):
        raise ProtocolError('The body must be a JSON object with a "data" field.')
    if "data" not in body:
        raise ProtocolError('The body needs a "data" field (any JSON value).')
    # The same rules as a WebSocket publish frame: channel name, data size.
    fields = {"action": "publish", "channel": channel, "data": body["data"]}
    if "msgId" in body:
        fields["msgId"] = body["msgId"]
    try:
        frame = json.dumps(fields)
    except RecursionError:
        raise ProtocolError('"data" is nested too deeply.') from None
    request = parse_frame(frame, limits)
    if not isinstance(request, Publish):  # pragma: no cover - action "publish" parses to Publish
        raise ProtocolError("The request is not a publish.")
    return request


def handle(
    event: dict[str, Any], *, publish: Callable[[Publish], Published], limits: Limits
) -> dict[str, Any]:
    """Validate, publish and answer. Never raises.

    Args:
        event: The HTTP API event.
        publish: ``publish(request) -> Published`` (the runtime's publish path).
        limits: The ``data`` size limit.

    Returns:
        The HTTP response.
    """
    try:
        request = parse_request(event, limits)
    except Exception as exc:
        code, message = error_for(exc)
        if code is ErrorCode.INTERNAL_ERROR:
            obs.logger.exception("publish request failed before validation ended")
        else:
            obs.logger.info("publish request refused", extra={"code": code.value})
        return error_response(code, message)
    try:
        published = publish(request)
    except Exception:
        obs.logger.exception("server-side publish failed", extra={"channel": request.channel})
        return error_response(ErrorCode.INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE)
    body: dict[str, Any] = {"channel": request.channel, "seq": published.seq, "epoch": published.epoch}
    if published.duplicate:
        body["duplicate"] = True
    else:
        body["delivered"] = published.delivered
    if request.msg_id is not None:
        body["msgId"] = request.msg_id
    return response(200, body)


def on_http_publish(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """``POST /channels/{channel}/messages``: the Lambda entry's logic (``functions/publish/app.py``).

    Returns:
        The HTTP response; never raises.
    """
    from lambdacast import handlers  # noqa: PLC0415 - the runtime lives there; tests replace it

    request_context = event.get("requestContext") or {}
    iam = ((request_context.get("authorizer") or {}).get("iam")) or {}
    obs.logger.append_keys(request_id=request_context.get("requestId"), caller=iam.get("userArn"))
    obs.count(obs.HTTP_PUBLISH_REQUESTS)
    try:
        runtime = handlers.get_runtime()
        endpoint = runtime.settings.management_endpoint
        if endpoint is None:
            raise RuntimeError("MANAGEMENT_ENDPOINT is not set; the HTTP API cannot derive it from its event")
        fanout = runtime.fanout(endpoint)
        limits = Limits(
            max_data_bytes=runtime.settings.max_data_bytes, max_channels=runtime.settings.max_channels
        )
    except Exception:
        obs.logger.exception("the publish function is misconfigured")
        return error_response(ErrorCode.INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE)

    def publish(request: Publish) -> Published:
        return publish_message(
            Message(
                channel=request.channel,
                data_json=request.data_json,
                sender=sender_of(runtime.settings.sender_identity, connection_id=None, user_id=None),
                msg_id=request.msg_id,
            ),
            store=runtime.store,
            numbering=runtime.numbering,
            fanout=fanout,
            departures=runtime.departures,
            clock=handlers.now_ms,
            history_ttl_seconds=runtime.settings.history_ttl_seconds,
            deadline=deadline_for(context),
        )

    return handle(event, publish=publish, limits=limits)
