"""The environment a worker process sees: the template's variables plus what Lambda's runtime sets.

Nothing of the developer's shell leaks in (no real credentials, no AWS profile): handlers get fake
credentials and every AWS endpoint points at the emulator, so they can never reach real AWS.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from lambdacast_local.model import Function

FAKE_ACCESS_KEY = "ASIALAMBDACASTLOCAL0"  # not a secret: a fake key for local handlers
FAKE_SECRET_KEY = "lambdacast-local-fake-secret-key"
SERVED_SERVICES = ("dynamodb", "sqs", "ssm", "secretsmanager")
"""The AWS services the embedded AWS stands for, whose public hostnames workers reach locally."""


def service_host(service: str, region: str) -> str:
    """A service's public hostname in ``region`` (``dynamodb.us-east-1.amazonaws.com``)."""
    return f"{service}.{region}.amazonaws.com"


def redirected_hosts(
    region: str, execute_api_host: str, api_port: int, service_ports: Mapping[str, int]
) -> dict[str, int]:
    """The ``host:port`` pairs workers connect to local TLS listeners instead (see ``runtimes/protocol.py``).

    Args:
        region: The region the emulator pretends to be.
        execute_api_host: This API's ``<apiId>.execute-api.<region>.amazonaws.com``.
        api_port: The TLS listener serving ``@connections``.
        service_ports: The TLS front of each served service (``embedded_aws/endpoints.py``), by service name.
    """
    hosts = {f"{execute_api_host}:443": api_port}
    hosts.update({f"{service_host(name, region)}:443": port for name, port in service_ports.items()})
    return hosts


@dataclass(frozen=True)
class Endpoints:
    """Where the handlers' AWS calls go locally."""

    aws: str
    """The embedded AWS (moto server) or ``--dynamodb-endpoint``: every service not listed below."""
    dynamodb: str
    ca_bundle: str | None = None
    """The throwaway CA that signed the TLS listener's certificate (for ``https://`` management calls)."""
    host_aliases: Mapping[str, str] | None = None
    """Hostnames (the API's ``execute-api`` host) rewritten to the local TLS listener in variables."""


def localize(value: str, aliases: Mapping[str, str] | None) -> str:
    """Rewrite AWS hostnames in an environment value to their local stand-ins."""
    for remote, local in (aliases or {}).items():
        value = value.replace(remote, local)
    return value


def runtime_environment(
    function: Function, region: str, endpoints: Endpoints, secret_key: str = FAKE_SECRET_KEY
) -> dict[str, str]:
    """Build the complete environment of one function's workers.

    Args:
        function: The function (its template ``Environment`` comes first).
        region: The region the emulator pretends to be.
        endpoints: The local endpoints that replace AWS.
        secret_key: The secret of ``FAKE_ACCESS_KEY`` (random per run when the emulator is exposed).

    Returns:
        The environment, and nothing else from the emulator's own process but ``PATH``.
    """
    env = {name: localize(value, endpoints.host_aliases) for name, value in function.environment.items()}
    env.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "LAMBDA_TASK_ROOT": str(function.code_dir),
            "_HANDLER": function.handler,
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_SESSION_TOKEN": "lambdacast-local",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": endpoints.aws,
            "AWS_ENDPOINT_URL_DYNAMODB": endpoints.dynamodb,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    if endpoints.ca_bundle:
        env["AWS_CA_BUNDLE"] = endpoints.ca_bundle
        if function.runtime.startswith("nodejs"):
            env["NODE_EXTRA_CA_CERTS"] = endpoints.ca_bundle  # Node's own trust store, read at start
    env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")  # no X-Ray daemon locally
    return env
