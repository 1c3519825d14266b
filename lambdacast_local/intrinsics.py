"""Resolve CloudFormation intrinsic functions to the local values the emulator uses.

Supported: ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::If``
(with ``Fn::Equals`` / ``Fn::Not`` / ``Fn::And`` / ``Fn::Or`` / ``Condition``), ``Fn::FindInMap``,
parameters (defaults plus overrides) and the pseudo parameters. Physical ids are deterministic, so an API
id in an environment variable matches the one in the events.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdacast_local.errors import TemplateError, UsageError

ACCOUNT_ID = "123456789012"
URL_SUFFIX = "amazonaws.com"
_NO_VALUE = object()
_SUB_PATTERN = re.compile(r"\$\{([^}]*)\}")
_DYNAMIC = re.compile(r"\{\{resolve:(ssm|ssm-secure|secretsmanager):([^}]+)\}\}")


class UnsupportedIntrinsic(TemplateError):
    """An intrinsic function or attribute the emulator cannot resolve locally."""


def fake_id(logical_id: str, length: int = 10) -> str:
    """Return a stable, AWS-looking lowercase id for a logical id (API ids, route ids...)."""
    digest = hashlib.sha256(logical_id.encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[byte % len(alphabet)] for byte in digest[:length])


def parse_overrides(items: list[str]) -> dict[str, str]:
    """Parse ``--parameter-overrides``: ``Key=Value`` or SAM's ``ParameterKey=K,ParameterValue=V``.

    Raises:
        UsageError: An item is neither form.
    """
    result: dict[str, str] = {}
    for item in items:
        sam_form = re.fullmatch(r"ParameterKey=([^,]+),ParameterValue=(.*)", item)
        if sam_form:
            result[sam_form.group(1)] = sam_form.group(2)
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"Parameter override {item!r} is not of the form Name=Value.")
        result[key] = value
    return result


@dataclass
class Resolver:
    """Resolves intrinsics over one (already SAM-transformed) CloudFormation template."""

    template: Mapping[str, Any]
    overrides: Mapping[str, str] = field(default_factory=dict)
    region: str = "us-east-1"
    stack_name: str = "lambdacast-local"
    ssm: Mapping[str, str] = field(default_factory=dict)
    """Local values of SSM parameters (``AWS::SSM::Parameter::Value<...>`` types, ``{{resolve:ssm:...}}``)."""
    secrets: Mapping[str, str] = field(default_factory=dict)
    """Local values of Secrets Manager secrets (``{{resolve:secretsmanager:...}}``)."""
    _parameters: dict[str, Any] = field(init=False, default_factory=dict)
    _conditions: dict[str, bool] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        declared = self.template.get("Parameters") or {}
        unknown = sorted(set(self.overrides) - set(declared))
        if unknown:
            raise UsageError(f"Parameter override(s) {', '.join(unknown)} are not declared in the template.")
        for name, spec in declared.items():
            if name in self.overrides:
                value: Any = self.overrides[name]
            elif isinstance(spec, dict) and "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"Parameter {name} has no Default; pass it with --parameter-overrides.")
            kind = str(spec.get("Type", "")) if isinstance(spec, dict) else ""
            if kind.startswith("AWS::SSM::Parameter::Value<"):
                value = self._ssm_value(str(value), f"Parameter {name}")
                kind = kind.removeprefix("AWS::SSM::Parameter::Value<")
            if kind.startswith(("CommaDelimitedList", "List<")):
                value = [part.strip() for part in str(value).split(",")] if isinstance(value, str) else value
            else:
                value = str(value)
            self._parameters[name] = value
        self._parameters.update(
            {
                "AWS::Region": self.region,
                "AWS::AccountId": ACCOUNT_ID,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": URL_SUFFIX,
                "AWS::StackName": self.stack_name,
                "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{ACCOUNT_ID}:stack/{self.stack_name}",
                "AWS::NotificationARNs": [],
            }
        )

    @property
    def resources(self) -> Mapping[str, Any]:
        """The template's resources."""
        resources: Mapping[str, Any] = self.template["Resources"]
        return resources

    def properties_of(self, kind: str) -> dict[str, dict[str, Any]]:
        """The ``Properties`` of every resource of type ``kind``, by logical id."""
        return {
            logical_id: resource.get("Properties") or {}
            for logical_id, resource in self.resources.items()
            if resource.get("Type") == kind
        }

    def resolve_property(self, logical_id: str, prop: str, value: Any) -> Any:
        """Resolve one property's value; a failure names the resource and the property."""
        try:
            return self.resolve(value)
        except TemplateError as exc:
            raise TemplateError(f"Resource {logical_id} ({prop}): {exc}.") from exc

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic and dynamic reference in ``value`` (``AWS::NoValue`` entries dropped)."""
        result = self._resolve(value)
        return None if result is _NO_VALUE else self._dynamic(result)

    def _dynamic(self, value: Any) -> Any:
        if isinstance(value, str) and "{{resolve:" in value:
            return _DYNAMIC.sub(lambda match: self._reference(match.group(1), match.group(2)), value)
        if isinstance(value, list):
            return [self._dynamic(item) for item in value]
        if isinstance(value, dict):
            return {key: self._dynamic(item) for key, item in value.items()}
        return value

    def _ssm_value(self, name: str, owner: str) -> str:
        if name not in self.ssm:
            raise TemplateError(
                f"{owner} reads SSM parameter {name}: give it a local value with --ssm {name}=VALUE."
            )
        return self.ssm[name]

    def _reference(self, service: str, reference: str) -> str:
        if service in {"ssm", "ssm-secure"}:
            return self._ssm_value(reference.split(":", maxsplit=1)[0], "A {{resolve:ssm}} reference")
        secret_id, _, rest = reference.partition(":SecretString")
        if secret_id not in self.secrets:
            raise TemplateError(
                f"A {{{{resolve:secretsmanager}}}} reference reads secret {secret_id}: "
                f"give it a local value with --secret {secret_id}=VALUE."
            )
        key = rest.lstrip(":").split(":")[0]
        if not key:
            return self.secrets[secret_id]
        try:
            return str(json.loads(self.secrets[secret_id])[key])
        except (ValueError, KeyError, TypeError) as exc:
            raise TemplateError(f"Secret {secret_id} has no JSON key {key}.") from exc

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self._resolve(v) for v in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            handler = _FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, argument)
            if key.startswith("Fn::"):
                raise UnsupportedIntrinsic(f"{key} is not supported locally")
        resolved = {k: self._resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    # -- physical ids and attributes -------------------------------------------------------------

    def physical_id(self, logical_id: str) -> Any:
        """Return what ``Ref`` gives for a parameter, pseudo parameter or resource."""
        if logical_id == "AWS::NoValue":
            return _NO_VALUE
        if logical_id in self._parameters:
            return self._parameters[logical_id]
        resource = self.resources.get(logical_id)
        if resource is None:
            raise UnsupportedIntrinsic(f"Ref to {logical_id}, which the template does not declare")
        kind = resource.get("Type", "")
        properties = resource.get("Properties") or {}
        if kind == "AWS::ApiGatewayV2::Api":
            return fake_id(logical_id)
        if kind == "AWS::ApiGatewayV2::Stage":
            return str(self.resolve(properties.get("StageName", logical_id)))
        if kind.startswith("AWS::ApiGatewayV2::"):
            return fake_id(logical_id, 7)
        if kind == "AWS::Lambda::Function":
            return str(self.resolve(properties.get("FunctionName", logical_id)))
        if kind == "AWS::DynamoDB::Table":
            return str(self.resolve(properties.get("TableName", logical_id)))
        if kind == "AWS::Lambda::LayerVersion":
            return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:layer:{logical_id}:1"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.{URL_SUFFIX}/{ACCOUNT_ID}/{self._queue_name(logical_id)}"
        return logical_id

    def _queue_name(self, logical_id: str) -> str:
        properties = self.resources[logical_id].get("Properties") or {}
        if "QueueName" in properties:
            return str(self.resolve(properties["QueueName"]))
        fifo = str(self.resolve(properties.get("FifoQueue", False))).lower() == "true"
        return f"{logical_id}.fifo" if fifo else logical_id

    def attribute(self, logical_id: str, name: str) -> Any:
        """Return what ``Fn::GetAtt`` gives for a resource attribute."""
        resource = self.resources.get(logical_id)
        if resource is None:
            raise UnsupportedIntrinsic(f"Fn::GetAtt on {logical_id}, which the template does not declare")
        kind = resource.get("Type", "")
        arn_prefix = f"arn:aws:{{}}:{self.region}:{ACCOUNT_ID}:"
        ref = self.physical_id(logical_id)
        values: dict[tuple[str, str], Any] = {
            ("AWS::Lambda::Function", "Arn"): arn_prefix.format("lambda") + f"function:{ref}",
            ("AWS::DynamoDB::Table", "Arn"): arn_prefix.format("dynamodb") + f"table/{ref}",
            ("AWS::DynamoDB::Table", "StreamArn"): arn_prefix.format("dynamodb")
            + f"table/{ref}/stream/local",
            ("AWS::ApiGatewayV2::Api", "ApiId"): ref,
            ("AWS::ApiGatewayV2::Api", "ApiEndpoint"): f"wss://{ref}.execute-api.{self.region}.{URL_SUFFIX}",
            ("AWS::SQS::Queue", "Arn"): arn_prefix.format("sqs") + self._queue_name(logical_id)
            if kind == "AWS::SQS::Queue"
            else None,
            ("AWS::SQS::Queue", "QueueName"): self._queue_name(logical_id)
            if kind == "AWS::SQS::Queue"
            else None,
            ("AWS::SQS::Queue", "QueueUrl"): ref,
            ("AWS::IAM::Role", "Arn"): arn_prefix.format("iam").replace(f":{self.region}:", "::")
            + f"role/{ref}",
        }
        if (kind, name) not in values:
            raise UnsupportedIntrinsic(f"Fn::GetAtt {logical_id}.{name} ({kind}) is not supported locally")
        return values[(kind, name)]

    def condition(self, name: str) -> bool:
        """Evaluate a named condition of the template."""
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise UnsupportedIntrinsic(f"condition {name} is not declared")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]


def _ref(resolver: Resolver, argument: Any) -> Any:
    return resolver.physical_id(str(argument))


def _get_att(resolver: Resolver, argument: Any) -> Any:
    if isinstance(argument, str):
        argument = argument.split(".", 1)
    logical_id, name = (resolver.resolve(part) for part in argument)
    return resolver.attribute(str(logical_id), str(name))


def _sub(resolver: Resolver, argument: Any) -> str:
    text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
    local = {key: resolver.resolve(value) for key, value in variables.items()}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in local:
            return str(local[name])
        if "." in name and not name.startswith("AWS::"):
            logical_id, attribute = name.split(".", 1)
            return str(resolver.attribute(logical_id, attribute))
        return str(resolver.physical_id(name))

    return _SUB_PATTERN.sub(replace, str(text))


def _join(resolver: Resolver, argument: Any) -> str:
    delimiter, items = argument
    values = resolver.resolve(items)
    return str(delimiter).join(str(item) for item in values)


def _select(resolver: Resolver, argument: Any) -> Any:
    index, items = argument
    return resolver.resolve(items)[int(resolver.resolve(index))]


def _split(resolver: Resolver, argument: Any) -> list[str]:
    delimiter, text = argument
    return str(resolver.resolve(text)).split(str(delimiter))


def _if(resolver: Resolver, argument: Any) -> Any:
    name, when_true, when_false = argument
    return resolver._resolve(when_true if resolver.condition(str(name)) else when_false)


def _find_in_map(resolver: Resolver, argument: Any) -> Any:
    name, top, second = (resolver.resolve(part) for part in argument[:3])
    try:
        return resolver.template["Mappings"][name][top][second]
    except KeyError as exc:
        raise UnsupportedIntrinsic(f"Fn::FindInMap {name}.{top}.{second} is not in Mappings") from exc


_FUNCTIONS: dict[str, Any] = {
    "Ref": _ref,
    "Fn::GetAtt": _get_att,
    "Fn::Sub": _sub,
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::If": _if,
    "Fn::FindInMap": _find_in_map,
    "Fn::Equals": lambda r, a: str(r.resolve(a[0])) == str(r.resolve(a[1])),
    "Fn::Not": lambda r, a: not r.resolve(a[0]),
    "Fn::And": lambda r, a: all(r.resolve(item) for item in a),
    "Fn::Or": lambda r, a: any(r.resolve(item) for item in a),
    "Condition": lambda r, a: r.condition(str(a)),
}
