"""A typed description of the app a template declares: one WebSocket API, its routes and functions, tables.

``build_app`` reads plain CloudFormation (after the SAM transform) through the intrinsic resolver; every
error it raises is one sentence naming the resource.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdacast_local.errors import TemplateError
from lambdacast_local.http_api.model import HttpApi, read_http_apis
from lambdacast_local.intrinsics import Resolver
from lambdacast_local.routing import parse_selection
from lambdacast_local.sqs.model import Queue, SqsEventSource, read_event_sources, read_queues
from lambdacast_local.template import LocalUris

_FUNCTION_ARN = re.compile(r"arn:aws:lambda:[^:]+:\d+:function:([^:/]+)")
_PYTHON_RUNTIME = re.compile(r"python3\.\d+")
_NODE_RUNTIME = re.compile(r"nodejs(\d+)\.x")
_OLDEST_NODE = 18  # the first Lambda Node.js runtime that bundles the AWS SDK v3
RUNNABLE = "python3.x and nodejs18.x or later"


def runtime_family(runtime: str) -> str | None:
    """``python``, ``node`` or ``None`` (a runtime the emulator cannot run) for a Lambda ``Runtime``."""
    if _PYTHON_RUNTIME.fullmatch(runtime):
        return "python"
    node = _NODE_RUNTIME.fullmatch(runtime)
    if node and int(node.group(1)) >= _OLDEST_NODE:
        return "node"
    return None


@dataclass(frozen=True)
class Layer:
    """A layer of this template: its folder and how ``sam build`` would build it."""

    logical_id: str
    content_dir: Path
    build_method: str | None = None
    """``Metadata.BuildMethod`` (``python3.13``, ``nodejs20.x``, ``makefile``...); ``None``: used as it is."""


@dataclass(frozen=True)
class Function:
    """A Lambda function the emulator can run in a worker process."""

    logical_id: str
    name: str
    code_dir: Path
    handler: str
    runtime: str = "python3.13"
    environment: dict[str, str] = field(default_factory=dict)
    layers: tuple[Layer, ...] = ()
    timeout_s: float = 3.0
    memory_mb: int = 128

    @property
    def layer_dirs(self) -> tuple[Path, ...]:
        """The layers' folders, in the template's order."""
        return tuple(layer.content_dir for layer in self.layers)


@dataclass(frozen=True)
class Authorizer:
    """A REQUEST Lambda authorizer and the identity sources it requires."""

    logical_id: str
    authorizer_id: str
    function: str
    identity_sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    """One route key with its integration target and options."""

    key: str
    function: str | None
    authorizer: Authorizer | None = None
    has_route_response: bool = False
    iam: bool = False
    """``AuthorizationType: AWS_IAM`` (``$connect`` only): the handshake must be SigV4-signed."""
    timeout_ms: int | None = None
    """The integration's ``TimeoutInMillis`` (API Gateway's cap is 29 s whatever the function's Timeout)."""


@dataclass(frozen=True)
class WebSocketApi:
    """The WebSocket API the emulator serves."""

    logical_id: str
    api_id: str
    name: str
    stage: str
    route_selection_expression: str
    routes: dict[str, Route]

    def execute_api_host(self, region: str) -> str:
        """The hostname AWS would give this API (mapped to the local TLS listener for handlers)."""
        return f"{self.api_id}.execute-api.{region}.amazonaws.com"


@dataclass(frozen=True)
class Table:
    """A DynamoDB table to create at start: the CreateTable arguments."""

    logical_id: str
    create_args: dict[str, Any]


@dataclass(frozen=True)
class App:
    """Everything the emulator serves from one template."""

    api: WebSocketApi
    functions: dict[str, Function]
    tables: list[Table]
    region: str
    queues: list[Queue] = field(default_factory=list)
    event_sources: list[SqsEventSource] = field(default_factory=list)
    http_apis: list[HttpApi] = field(default_factory=list)


def _layers(resolver: Resolver, uris: LocalUris) -> dict[str, Layer]:
    layers: dict[str, Layer] = {}
    for logical_id, props in resolver.properties_of("AWS::Lambda::LayerVersion").items():
        content = uris.resolve(props.get("Content"))
        if content is not None:
            source = uris.source(props.get("Content"))
            layers[str(resolver.physical_id(logical_id))] = Layer(
                source.logical_id or logical_id, content, source.build_method
            )
    return layers


def _unrunnable(props: dict[str, Any], runtime: str, code_dir: Path | None) -> str | None:
    """Why a function cannot run locally (a clause completing "function F ..."), or ``None``."""
    if props.get("PackageType") == "Image":
        return "which is a container image (PackageType: Image) lambdacast local cannot run"
    if runtime_family(runtime) is None:
        return f"whose runtime {runtime or '(none)'} lambdacast local cannot run (it runs {RUNNABLE})"
    if code_dir is None:
        return "which has no local CodeUri folder in this template"
    return None


def _functions(resolver: Resolver, uris: LocalUris) -> tuple[dict[str, Function], dict[str, str]]:
    """The runnable functions, and why each other one cannot run (an error only if something needs it)."""
    layers = _layers(resolver, uris)
    functions: dict[str, Function] = {}
    refused: dict[str, str] = {}
    for logical_id, props in resolver.properties_of("AWS::Lambda::Function").items():
        name = str(resolver.physical_id(logical_id))
        code_dir = uris.resolve(props.get("Code"))
        runtime = str(resolver.resolve_property(logical_id, "Runtime", props.get("Runtime", "")))
        reason = _unrunnable(props, runtime, code_dir)
        if reason is not None or code_dir is None:
            refused[name] = reason or "which cannot run locally"
            continue
        environment = resolver.resolve_property(logical_id, "Environment", props.get("Environment", {})) or {}
        function_layers: list[Layer] = []
        for arn in resolver.resolve_property(logical_id, "Layers", props.get("Layers", [])) or []:
            if arn not in layers:
                raise TemplateError(
                    f"Resource {logical_id} uses layer {arn}, which is not a local layer of this template."
                )
            function_layers.append(layers[arn])
        functions[name] = Function(
            logical_id=logical_id,
            name=name,
            code_dir=code_dir,
            handler=str(resolver.resolve_property(logical_id, "Handler", props.get("Handler"))),
            runtime=runtime,
            environment={k: str(v) for k, v in (environment.get("Variables") or {}).items()},
            layers=tuple(function_layers),
            timeout_s=float(resolver.resolve_property(logical_id, "Timeout", props.get("Timeout", 3))),
            memory_mb=int(resolver.resolve_property(logical_id, "MemorySize", props.get("MemorySize", 128))),
        )
    return functions, refused


def _function_for(uri: Any, owner: str, functions: dict[str, Function], refused: dict[str, str]) -> str:
    match = _FUNCTION_ARN.search(str(uri))
    if match is None:
        raise TemplateError(
            f"Resource {owner}: integration URI {uri} is not a Lambda function of this template."
        )
    name = match.group(1)
    if name not in functions:
        reason = refused.get(name, "which is not a function of this template")
        raise TemplateError(f"Resource {owner} targets function {name}, {reason}.")
    return name


def _pick_api(resolver: Resolver, api_logical_id: str | None) -> tuple[str, dict[str, Any]]:
    apis = {
        logical_id: props
        for logical_id, props in resolver.properties_of("AWS::ApiGatewayV2::Api").items()
        if props.get("ProtocolType") == "WEBSOCKET"
    }
    if api_logical_id is not None:
        if api_logical_id not in apis:
            raise TemplateError(f"The template has no WebSocket API named {api_logical_id}.")
        return api_logical_id, apis[api_logical_id]
    if not apis:
        raise TemplateError(
            "The template declares no WebSocket API (AWS::Serverless::WebSocketApi or ApiGatewayV2)."
        )
    if len(apis) > 1:
        raise TemplateError(
            f"The template declares several WebSocket APIs ({', '.join(apis)}); pick one with --api."
        )
    return next(iter(apis.items()))


def _belongs(resolver: Resolver, logical_id: str, props: dict[str, Any], api_id: str) -> bool:
    return bool(resolver.resolve_property(logical_id, "ApiId", props.get("ApiId")) == api_id)


def _route_selection_expression(resolver: Resolver, api_logical: str, api_props: dict[str, Any]) -> str:
    """The API's RouteSelectionExpression, checked to be one the gateway can evaluate.

    Raises:
        TemplateError: It uses anything but ``$request.body`` variables.
    """
    expression = str(
        resolver.resolve_property(
            api_logical, "RouteSelectionExpression", api_props.get("RouteSelectionExpression")
        )
    )
    try:
        parse_selection(expression)
    except ValueError:
        raise TemplateError(
            f"Resource {api_logical}: RouteSelectionExpression {expression} is not supported "
            "(it may use $request.body.<path> or ${request.body.<path>} variables only)."
        ) from None
    return expression


def build_app(resolver: Resolver, uris: LocalUris, api_logical_id: str | None = None) -> App:
    """Describe the WebSocket API, its functions and tables.

    Raises:
        TemplateError: Something the emulator cannot serve, named in one sentence.
    """
    functions, refused = _functions(resolver, uris)
    api_logical, api_props = _pick_api(resolver, api_logical_id)
    api_id = str(resolver.physical_id(api_logical))
    expression = _route_selection_expression(resolver, api_logical, api_props)

    integrations = {
        str(resolver.physical_id(lid)): (lid, props)
        for lid, props in resolver.properties_of("AWS::ApiGatewayV2::Integration").items()
        if _belongs(resolver, lid, props, api_id)
    }
    authorizers: dict[str, Authorizer] = {}
    for lid, props in resolver.properties_of("AWS::ApiGatewayV2::Authorizer").items():
        if not _belongs(resolver, lid, props, api_id):
            continue
        if props.get("AuthorizerType") != "REQUEST":
            raise TemplateError(f"Resource {lid}: only REQUEST authorizers are supported on WebSocket APIs.")
        uri = resolver.resolve_property(lid, "AuthorizerUri", props.get("AuthorizerUri"))
        sources = resolver.resolve_property(lid, "IdentitySource", props.get("IdentitySource", [])) or []
        authorizer_id = str(resolver.physical_id(lid))
        authorizers[authorizer_id] = Authorizer(
            lid, authorizer_id, _function_for(uri, lid, functions, refused), tuple(sources)
        )

    routes_by_id: dict[str, str] = {}
    route_props: dict[str, tuple[str, dict[str, Any]]] = {}
    for lid, props in resolver.properties_of("AWS::ApiGatewayV2::Route").items():
        if _belongs(resolver, lid, props, api_id):
            key = str(resolver.resolve_property(lid, "RouteKey", props.get("RouteKey")))
            routes_by_id[str(resolver.physical_id(lid))] = key
            route_props[key] = (lid, props)
    with_response = {
        routes_by_id.get(str(resolver.resolve_property(lid, "RouteId", props.get("RouteId"))))
        for lid, props in resolver.properties_of("AWS::ApiGatewayV2::RouteResponse").items()
        if _belongs(resolver, lid, props, api_id)
    }

    routes: dict[str, Route] = {}
    for key, (lid, props) in route_props.items():
        target = str(resolver.resolve_property(lid, "Target", props.get("Target", "")))
        integration = integrations.get(target.removeprefix("integrations/"))
        if integration is None:
            raise TemplateError(
                f"Resource {lid}: route {key} has no AWS_PROXY Lambda integration of this API."
            )
        int_lid, int_props = integration
        if int_props.get("IntegrationType") not in {"AWS_PROXY", "AWS"}:
            raise TemplateError(
                f"Resource {int_lid}: IntegrationType {int_props.get('IntegrationType')} is unsupported."
            )
        function = _function_for(
            resolver.resolve_property(int_lid, "IntegrationUri", int_props.get("IntegrationUri")),
            int_lid,
            functions,
            refused,
        )
        authorizer = None
        if props.get("AuthorizationType") == "CUSTOM":
            authorizer_ref = str(resolver.resolve_property(lid, "AuthorizerId", props.get("AuthorizerId")))
            authorizer = authorizers.get(authorizer_ref)
            if authorizer is None:
                raise TemplateError(f"Resource {lid}: its AuthorizerId is not an authorizer of this API.")
        elif props.get("AuthorizationType") not in {None, "NONE", "AWS_IAM"} or (
            props.get("AuthorizationType") == "AWS_IAM" and key != "$connect"
        ):
            raise TemplateError(
                f"Resource {lid}: AuthorizationType {props.get('AuthorizationType')} is unsupported on {key}."
            )
        iam = props.get("AuthorizationType") == "AWS_IAM"
        timeout = resolver.resolve_property(int_lid, "TimeoutInMillis", int_props.get("TimeoutInMillis"))
        timeout_ms = int(timeout) if timeout is not None else None
        routes[key] = Route(key, function, authorizer, key in with_response, iam, timeout_ms)

    stages = [
        str(resolver.resolve_property(lid, "StageName", props.get("StageName")))
        for lid, props in resolver.properties_of("AWS::ApiGatewayV2::Stage").items()
        if _belongs(resolver, lid, props, api_id)
    ]
    name = str(resolver.resolve_property(api_logical, "Name", api_props.get("Name", api_logical)))
    api = WebSocketApi(api_logical, api_id, name, stages[0] if stages else "$default", expression, routes)
    queues = read_queues(resolver)
    return App(
        api=api,
        functions=functions,
        tables=_tables(resolver),
        region=resolver.region,
        queues=queues,
        event_sources=read_event_sources(resolver, set(functions), queues),
        http_apis=read_http_apis(resolver, set(functions)),
    )


def _tables(resolver: Resolver) -> list[Table]:
    tables: list[Table] = []
    for lid, props in resolver.properties_of("AWS::DynamoDB::Table").items():
        resolved = resolver.resolve_property(lid, "Properties", props)
        args: dict[str, Any] = {
            "TableName": str(resolver.physical_id(lid)),
            "AttributeDefinitions": resolved["AttributeDefinitions"],
            "KeySchema": resolved["KeySchema"],
            "BillingMode": resolved.get("BillingMode", "PROVISIONED"),
        }
        for key in (
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "ProvisionedThroughput",
            "StreamSpecification",
        ):
            if key in resolved:
                args[key] = resolved[key]
        if args["BillingMode"] == "PAY_PER_REQUEST":
            for index in args.get("GlobalSecondaryIndexes", []):
                index.pop("ProvisionedThroughput", None)
        ttl = resolved.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            args["_ttl_attribute"] = ttl["AttributeName"]
        tables.append(Table(lid, args))
    return tables
