"""HTTP APIs (payload format 2.0) over aiohttp: route matching, ``AWS_IAM`` (SigV4) and proxy responses."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from lambdacast_local import sigv4
from lambdacast_local.events import clf_time, new_id, now_ms
from lambdacast_local.http_api.model import HttpApi, HttpRoute
from lambdacast_local.lambda_pool import LambdaService


def _match(api: HttpApi, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
    candidates = sorted(
        (route for route in api.routes if route.path != "$default"),
        key=lambda route: (route.path.count("+}"), route.path.count("{"), -len(route.path)),
    )
    for route in candidates:
        if route.method not in {method, "ANY"}:
            continue
        found = route.pattern().match(path)
        if found:
            return route, dict(found.groupdict())
    default = next((route for route in api.routes if route.path == "$default"), None)
    return (default, {}) if default is not None else None


def http_event(
    api: HttpApi,
    route: HttpRoute,
    request: web.Request,
    *,
    params: dict[str, str],
    body: bytes,
    iam: Any,
) -> dict[str, Any]:
    """Build a payload-format-2.0 event, shaped like API Gateway's."""
    epoch = now_ms()
    headers = {name.lower(): ",".join(request.headers.getall(name)) for name in request.headers}
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": api.api_id,
        "domainName": request.host,
        "domainPrefix": request.host.split(".")[0],
        "http": {
            "method": request.method,
            "path": request.path,
            "protocol": f"HTTP/{request.version.major}.{request.version.minor}",
            "sourceIp": request.remote or "127.0.0.1",
            "userAgent": request.headers.get("User-Agent", ""),
        },
        "requestId": new_id(),
        "routeKey": route.route_key,
        "stage": api.stage,
        "time": clf_time(epoch),
        "timeEpoch": epoch,
    }
    if iam is not None:
        context["authorizer"] = {"iam": iam}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": request.path,
        "rawQueryString": request.query_string,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": text is None,
    }
    if cookies:
        event["cookies"] = cookies
    if request.query:
        event["queryStringParameters"] = {k: ",".join(request.query.getall(k)) for k in request.query}
    if params:
        event["pathParameters"] = params
    if body:
        event["body"] = text if text is not None else base64.b64encode(body).decode()
    return event


def proxy_response(result: Any) -> web.Response:
    """Turn a function's return value into the HTTP response, as payload format 2.0 does."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return web.Response(
            status=200,
            text=result if isinstance(result, str) else json.dumps(result),
            content_type="application/json",
        )
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    response = web.Response(status=int(result["statusCode"]), body=raw)
    for name, value in (result.get("headers") or {}).items():
        response.headers[str(name)] = str(value)
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", str(cookie))
    return response


class HttpGateway:
    """Serves every HTTP API of the template on one listener (first matching API wins)."""

    def __init__(
        self, apis: list[HttpApi], lambdas: LambdaService, secrets: Mapping[str, str], verify_iam: bool
    ) -> None:
        self.apis = apis
        self.lambdas = lambdas
        self._secrets = secrets
        self._verify_iam = verify_iam

    def add_routes(self, app: web.Application) -> None:
        """Catch every path and method."""
        app.router.add_route("*", "/{tail:.*}", self.handle)

    def _locate(self, method: str, path: str) -> tuple[HttpApi, HttpRoute, dict[str, str], str] | None:
        for api in self.apis:
            candidates = [path]
            prefix = f"/{api.stage}"
            if api.stage != "$default" and (path == prefix or path.startswith(prefix + "/")):
                candidates.insert(0, path[len(prefix) :] or "/")
            for candidate in candidates:
                found = _match(api, method, candidate)
                if found is not None:
                    return api, found[0], found[1], candidate
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route one request to its function."""
        located = self._locate(request.method, request.path)
        if located is None:
            return web.json_response({"message": "Not Found"}, status=404)
        api, route, params, _path = located
        body = await request.read()
        iam = None
        if route.iam:
            caller = sigv4.verify(
                request.method, str(request.url), request.headers, body, secrets=self._secrets
            )
            if isinstance(caller, str):
                if self._verify_iam:
                    return web.json_response({"message": caller}, status=403)
                caller = sigv4.Caller(
                    "LOCALBYPASS", "123456789012", "arn:aws:iam::123456789012:user/local-bypass"
                )
            iam = {
                "accessKey": caller.access_key,
                "accountId": caller.account_id,
                "callerId": caller.access_key,
                "principalOrgId": None,
                "userArn": caller.user_arn,
                "userId": caller.access_key,
                "cognitoIdentity": None,
            }
        event = http_event(api, route, request, params=params, body=body, iam=iam)
        outcome = await self.lambdas.invoke(route.function, event, route.route_key)
        if not outcome.ok:
            return web.json_response({"message": "Internal Server Error"}, status=500)
        return proxy_response(outcome.result)
