"""HTTP APIs of a template (``AWS::Serverless::HttpApi`` or ``ProtocolType: HTTP``): routes -> functions.

SAM writes HTTP API routes into the API's OpenAPI ``Body``; raw templates use ``AWS::ApiGatewayV2::Route``
resources. Both are read here into one small model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lambdacast_local.errors import TemplateError
from lambdacast_local.intrinsics import Resolver

_FUNCTION_ARN = re.compile(r"arn:aws:lambda:[^:]+:\d+:function:([^:/]+)")
_ANY = "x-amazon-apigateway-any-method"
_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


@dataclass(frozen=True)
class HttpRoute:
    """One route of an HTTP API."""

    method: str
    """Upper-case method, or ``ANY``."""
    path: str
    """An OpenAPI path template (``/channels/{channel}/messages``, ``/{proxy+}``) or ``$default``."""
    function: str
    iam: bool = False

    @property
    def route_key(self) -> str:
        """The ``routeKey`` of events (``POST /channels/{channel}/messages`` or ``$default``)."""
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    def pattern(self) -> re.Pattern[str]:
        """A regex matching request paths, with named groups for the path parameters."""
        parts = []
        for segment in re.split(r"(\{[^}]+\})", self.path):
            if segment.startswith("{") and segment.endswith("+}"):
                parts.append(f"(?P<{segment[1:-2]}>.+)")
            elif segment.startswith("{"):
                parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
            else:
                parts.append(re.escape(segment))
        return re.compile("".join(parts) + "$")


@dataclass(frozen=True)
class HttpApi:
    """An HTTP API and its stage."""

    logical_id: str
    api_id: str
    stage: str
    routes: tuple[HttpRoute, ...]


def _function(uri: Any, owner: str, functions: set[str]) -> str:
    match = _FUNCTION_ARN.search(str(uri))
    if match is None or match.group(1) not in functions:
        raise TemplateError(
            f"Resource {owner}: HTTP API integration {uri} is not a function lambdacast local can run."
        )
    return match.group(1)


def _from_body(lid: str, body: dict[str, Any], functions: set[str]) -> list[HttpRoute]:
    routes: list[HttpRoute] = []
    for path, operations in (body.get("paths") or {}).items():
        for key, operation in (operations or {}).items():
            if key != _ANY and key not in _METHODS:
                continue
            integration = operation.get("x-amazon-apigateway-integration") or {}
            if str(integration.get("type", "")).lower() != "aws_proxy":
                raise TemplateError(
                    f"Resource {lid}: {key.upper()} {path} is not a Lambda proxy integration."
                )
            if str(integration.get("payloadFormatVersion", "2.0")) != "2.0":
                raise TemplateError(
                    f"Resource {lid}: {key.upper()} {path} uses payload format 1.0 (unsupported)."
                )
            iam = any("AWS_IAM" in requirement for requirement in operation.get("security") or [])
            method = "ANY" if key == _ANY else key.upper()
            routes.append(
                HttpRoute(method, str(path), _function(integration.get("uri"), lid, functions), iam)
            )
    return routes


def read_http_apis(resolver: Resolver, functions: set[str]) -> list[HttpApi]:
    """Read every HTTP API of the template.

    Raises:
        TemplateError: A route the emulator cannot serve (named).
    """
    resources = resolver.resources
    apis: list[HttpApi] = []
    for lid, resource in resources.items():
        props = resource.get("Properties") or {}
        if resource.get("Type") != "AWS::ApiGatewayV2::Api" or props.get("ProtocolType") == "WEBSOCKET":
            continue
        if "Body" not in props and props.get("ProtocolType") != "HTTP":
            continue
        api_id = str(resolver.physical_id(lid))
        routes = _from_body(lid, resolver.resolve(props["Body"]), functions) if "Body" in props else []
        stage = "$default"
        for other_lid, other in resources.items():
            other_props = other.get("Properties") or {}
            if resolver.resolve(other_props.get("ApiId")) != api_id:
                continue
            if other.get("Type") == "AWS::ApiGatewayV2::Stage":
                stage = str(resolver.resolve(other_props.get("StageName")))
            elif other.get("Type") == "AWS::ApiGatewayV2::Route":
                routes.append(_raw_route(resolver, other_lid, other_props, functions))
        apis.append(HttpApi(lid, api_id, stage, tuple(routes)))
    return apis


def _raw_route(resolver: Resolver, lid: str, props: dict[str, Any], functions: set[str]) -> HttpRoute:
    key = str(resolver.resolve(props.get("RouteKey")))
    target = str(resolver.resolve(props.get("Target", ""))).removeprefix("integrations/")
    integration = next(
        (
            (ilid, res.get("Properties") or {})
            for ilid, res in resolver.resources.items()
            if res.get("Type") == "AWS::ApiGatewayV2::Integration"
            and str(resolver.physical_id(ilid)) == target
        ),
        None,
    )
    if integration is None:
        raise TemplateError(f"Resource {lid}: route {key} has no Lambda integration of this API.")
    uri = resolver.resolve(integration[1].get("IntegrationUri"))
    method, _, path = key.partition(" ")
    iam = props.get("AuthorizationType") == "AWS_IAM"
    if key == "$default":
        return HttpRoute("ANY", "$default", _function(uri, integration[0], functions), iam)
    return HttpRoute(method.upper(), path, _function(uri, integration[0], functions), iam)
