"""A SAM template loaded into the app model, and its functions' runtimes prepared (``--prepare``)."""

from __future__ import annotations

from pathlib import Path

from lambdacast_local.intrinsics import Resolver
from lambdacast_local.model import App, build_app
from lambdacast_local.options import Options
from lambdacast_local.runtimes import Launch, prepare
from lambdacast_local.template import load_yaml, transform


def prepare_runtimes(options: Options, hosts: dict[str, int] | None = None) -> tuple[App, dict[str, Launch]]:
    """Load the template and prepare every function's runtime (``lambdacast local --prepare``)."""
    ssm = dict(options.ssm_parameters)
    if options.dev_token_parameter:  # its value is random at run time; any value resolves the template
        ssm.setdefault(options.dev_token_parameter, "prepare")
    model = load_app(
        options.template,
        options.parameter_overrides,
        options.api,
        options.region,
        ssm=ssm,
        secrets=options.secrets,
    )
    launches = prepare(
        model.functions,
        options.template.resolve().parent,
        options.installer(),
        hosts=hosts,
        use_artifacts=options.build_artifacts and not options.reload,
    )
    return model, launches


def load_app(
    template: Path,
    overrides: dict[str, str] | None = None,
    api: str | None = None,
    region: str = "us-east-1",
    *,
    ssm: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
) -> App:
    """Read, transform and describe a template (raises ``TemplateError`` / ``UsageError``)."""
    document = load_yaml(template)
    cfn, uris = transform(document, template.resolve().parent, region)
    resolver = Resolver(cfn, overrides or {}, region, ssm=ssm or {}, secrets=secrets or {})
    return build_app(resolver, uris, api)
