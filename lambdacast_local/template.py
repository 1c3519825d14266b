"""Read a SAM template: YAML with CloudFormation short tags -> SAM transform -> plain CloudFormation.

Local ``CodeUri`` / ``ContentUri`` folders are swapped for placeholder S3 URIs before the transform (the
translator only accepts S3 locations) and mapped back afterwards, the way SAM CLI does it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from lambdacast_local.errors import TemplateError

PLACEHOLDER_BUCKET = "lambdacast-local"
DEFAULT_REGION = "us-east-1"

_LOCAL_URI_KEYS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


class _CfnLoader(yaml.SafeLoader):
    """A SafeLoader that understands CloudFormation's short-form intrinsic tags (``!Ref``, ``!Sub``...)."""


def _construct_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    tag = suffix
    key = "Ref" if tag == "Ref" else f"Fn::{tag}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {key: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_yaml(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation / SAM YAML (or JSON) template file.

    Args:
        path: The template file.

    Returns:
        The template as plain dicts, short tags expanded to their long form.

    Raises:
        TemplateError: The file is missing or is not a YAML mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"Cannot read the template {path}: {exc.strerror}.") from exc
    try:
        document = yaml.load(text, Loader=_CfnLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise TemplateError(f"The template {path} is not valid YAML: {exc}.") from exc
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"The template {path} has no Resources section.")
    return document


@dataclass(frozen=True)
class LocalSource:
    """Who declared a local folder: the resource's logical id before the transform, and its ``BuildMethod``.

    The SAM transform renames layers (``SharedLayer`` -> ``SharedLayer8b80ae2827``) and drops ``Metadata``,
    yet ``sam build`` names its artifact folders after the original id and builds a layer only when its
    ``Metadata`` has a ``BuildMethod``; both are remembered here before the transform.
    """

    logical_id: str | None
    build_method: str | None = None


@dataclass
class LocalUris:
    """Placeholder S3 keys mapped back to the local folders they stand for."""

    base_dir: Path
    by_key: dict[str, Path] = field(default_factory=dict)
    sources: dict[str, LocalSource] = field(default_factory=dict)

    def placeholder(self, local: str, source: LocalSource | None = None) -> dict[str, str]:
        """Return the placeholder S3 location for a local folder (remembering it and who declared it)."""
        key = f"path-{len(self.by_key)}"
        self.by_key[key] = (self.base_dir / local).resolve()
        self.sources[key] = source or LocalSource(None)
        return {"Bucket": PLACEHOLDER_BUCKET, "Key": key}

    def _key(self, location: Any) -> str | None:
        if not isinstance(location, dict):
            return None
        key = location.get("S3Key")
        if location.get("S3Bucket") == PLACEHOLDER_BUCKET and isinstance(key, str):
            return key
        return None

    def resolve(self, location: Any) -> Path | None:
        """Return the local folder behind a transformed ``Code`` / ``Content`` property, if it is ours."""
        key = self._key(location)
        return self.by_key.get(key) if key is not None else None

    def source(self, location: Any) -> LocalSource:
        """Return who declared the local folder behind a transformed ``Code`` / ``Content`` property."""
        key = self._key(location)
        return self.sources.get(key, LocalSource(None)) if key is not None else LocalSource(None)


def _swap_local_uris(template: dict[str, Any], uris: LocalUris) -> None:
    globals_function = template.get("Globals", {}).get("Function", {})
    if isinstance(globals_function, dict) and isinstance(globals_function.get("CodeUri"), str):
        globals_function["CodeUri"] = uris.placeholder(globals_function["CodeUri"])
    for logical_id, resource in template["Resources"].items():
        if not isinstance(resource, dict):
            raise TemplateError(f"Resource {logical_id} is not a mapping.")
        key = _LOCAL_URI_KEYS.get(str(resource.get("Type")))
        properties = resource.get("Properties") or {}
        if key is None or not isinstance(properties, dict):
            continue
        value = properties.get(key)
        if isinstance(value, str) and not value.startswith("s3://"):
            metadata = resource.get("Metadata")
            build_method = metadata.get("BuildMethod") if isinstance(metadata, dict) else None
            source = LocalSource(str(logical_id), str(build_method) if build_method else None)
            properties[key] = uris.placeholder(value, source)
        elif key == "CodeUri" and value is None and "InlineCode" in properties:
            raise TemplateError(f"Resource {logical_id}: InlineCode is not supported; use a CodeUri folder.")


def transform(
    template: dict[str, Any], base_dir: Path, region: str = DEFAULT_REGION
) -> tuple[dict[str, Any], LocalUris]:
    """Run the SAM transform locally (no AWS call) and return plain CloudFormation.

    Args:
        template: The parsed template (not modified).
        base_dir: The folder relative ``CodeUri`` / ``ContentUri`` paths start from.
        region: The region the pseudo parameters use.

    Returns:
        The CloudFormation template and the placeholder map for code locations.

    Raises:
        TemplateError: The translator refused the template (its message names the resources).
    """
    document = copy.deepcopy(template)
    uris = LocalUris(base_dir=base_dir)
    _swap_local_uris(document, uris)
    if "Transform" not in document:
        return document, uris
    session = boto3.session.Session(
        region_name=region, aws_access_key_id="lambdacast", aws_secret_access_key="lambdacast"
    )
    translator = Translator(None, Parser(), boto_session=session)
    try:
        result: dict[str, Any] = translator.translate(
            document, parameter_values={}, get_managed_policy_map=lambda: {}
        )
    except InvalidDocumentException as exc:
        reasons = "; ".join(str(getattr(cause, "message", cause)) for cause in exc.causes)
        raise TemplateError(f"The SAM transform refused the template: {reasons}") from exc
    finally:
        translator.metrics.publish()  # the dummy publisher: drops them (else a warning at exit)
    return result, uris
