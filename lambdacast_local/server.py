"""Wire the parts together: template -> app model -> embedded AWS -> worker pools -> aiohttp listeners.

``Emulator`` is what the CLI and the pytest fixture start: a WebSocket + ``@connections`` listener on the
chosen port, the same app behind TLS on a free port (for ``https://`` management endpoints), an optional
static web server, and ``--reload``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import socket
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from watchfiles import awatch

from lambdacast_local.app_loading import load_app
from lambdacast_local.devtokens import DevTokenMinter, page_origins
from lambdacast_local.embedded_aws.endpoints import ServiceFront
from lambdacast_local.embedded_aws.services import EmbeddedAws
from lambdacast_local.events import Stage
from lambdacast_local.faults import DYNAMODB, Faults, parse_spec
from lambdacast_local.gateway import Gateway, GatewaySettings
from lambdacast_local.http_api.gateway import HttpGateway
from lambdacast_local.lambda_pool import LambdaService, Observer
from lambdacast_local.management.api import ManagementApi
from lambdacast_local.management.listener import ManagementListener
from lambdacast_local.model import App
from lambdacast_local.options import Options
from lambdacast_local.runtime_env import (
    FAKE_ACCESS_KEY,
    FAKE_SECRET_KEY,
    SERVED_SERVICES,
    Endpoints,
    redirected_hosts,
    runtime_environment,
    service_host,
)
from lambdacast_local.runtimes import prepare
from lambdacast_local.sqs.pollers import SqsPollers
from lambdacast_local.tls import LocalTls, make_local_tls


def is_loopback(host: str) -> bool:
    """True when ``host`` (a ``--host`` value) listens on this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def browse_host(host: str) -> str:
    """The host to put in URLs for a listener bound to ``host`` (a wildcard address: loopback)."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def _faults(options: Options) -> Faults:
    """The fault plan of ``options`` (raises ``FaultSpecError`` on a bad spec)."""
    spec = parse_spec(options.faults) if isinstance(options.faults, str) else options.faults
    unavailable = {}
    if options.dynamodb_endpoint:
        unavailable[DYNAMODB] = (
            f"DynamoDB faults need the embedded DynamoDB, and --dynamodb-endpoint sends the handlers' "
            f"requests to {options.dynamodb_endpoint} directly."
        )
    spec = spec.with_latency(options.management_latency_ms)
    return Faults(spec, options.fault_seed, unavailable=unavailable)


class Emulator:
    """One running ``lambdacast local``."""

    def __init__(self, options: Options, observers: list[Observer] | None = None) -> None:
        self.options = options
        self.app_model: App | None = None
        self.gateway: Gateway | None = None
        self.lambdas: LambdaService | None = None
        self._observers = observers or []
        self.faults = _faults(options)
        """The fault plan and its counts (``--faults``); ``configure`` replaces it while running."""
        self._aws = EmbeddedAws(options.dynamodb_endpoint, options.region, self.faults)
        self._tls: LocalTls | None = None
        self._fronts: list[ServiceFront] = []
        self._runners: list[web.AppRunner] = []
        self.management: ManagementApi | None = None
        """The ``@connections`` API (its ``calls`` count what it served)."""
        self._management_listener: ManagementListener | None = None
        self._tls_server: asyncio.Server | None = None
        self._reload_task: asyncio.Task[None] | None = None
        self._pollers: SqsPollers | None = None
        name = options.dev_token_parameter
        self.dev_tokens = (
            DevTokenMinter(name, channels=options.dev_token_channels, any_user=options.dev_token_any_user)
            if name
            else None
        )
        self.port = 0
        self.tls_port = 0
        self.web_port = 0
        self.http_port = 0
        self.exposed = not is_loopback(options.host)
        """Listening beyond this machine (``--host`` not loopback)."""
        forced = options.management_iam_auth
        self.management_sigv4 = forced if forced is not None else self.exposed and options.iam_auth
        """``@connections`` refuses requests without a valid SigV4 signature."""
        # The documented local key would let anyone who read the docs sign: once signatures guard
        # something reachable from the network, this run's workers get a secret of their own.
        secret = secrets.token_urlsafe(30) if self.management_sigv4 else FAKE_SECRET_KEY
        self.credentials = (FAKE_ACCESS_KEY, secret)
        """The one access key SigV4 verifies (handlers sign with it), and its secret."""

    @property
    def stage(self) -> str:
        """The stage served (``/{stage}`` in URLs)."""
        assert self.app_model is not None
        return self.app_model.api.stage

    @property
    def ws_url(self) -> str:
        """Where WebSocket clients connect."""
        return f"ws://{browse_host(self.options.host)}:{self.port}/{self.stage}"

    @property
    def management_url(self) -> str:
        """The plain-HTTP ``@connections`` endpoint (same port as the WebSocket server)."""
        return f"http://{self.options.host}:{self.port}/{self.stage}"

    @property
    def tls_management_url(self) -> str:
        """The ``https://`` endpoint handlers reach (``https://{domainName}/{stage}``)."""
        return f"https://127.0.0.1:{self.tls_port}/{self.stage}"

    @property
    def web_url(self) -> str | None:
        """The page served from ``web_dir`` (``http://<host>:<web port>/``), if any."""
        return f"http://{browse_host(self.options.host)}:{self.web_port}/" if self.web_port else None

    @property
    def http_url(self) -> str:
        """The HTTP APIs' listener (``AWS::Serverless::HttpApi``), when the template has any."""
        return f"http://{self.options.host}:{self.http_port}"

    @property
    def ca_bundle(self) -> Path:
        """The CA file that verifies the TLS listener."""
        assert self._tls is not None
        return self._tls.ca_bundle

    @property
    def handler_dynamodb_endpoint(self) -> str:
        """Where handlers reach DynamoDB (``AWS_ENDPOINT_URL_DYNAMODB``): the fault listener when embedded."""
        return self._aws.handler_dynamodb_endpoint

    @property
    def aws_endpoint(self) -> str:
        """The embedded AWS endpoint (moto; DynamoDB too unless ``--dynamodb-endpoint``)."""
        return self._aws.endpoint

    async def start(self) -> None:
        """Load the template, start embedded AWS and the listeners (raises ``LocalError`` on bad input)."""
        opts = self.options
        ssm = dict(opts.ssm_parameters)
        if self.dev_tokens is not None:
            ssm[self.dev_tokens.parameter_name] = self.dev_tokens.secret
        model = load_app(
            opts.template,
            opts.parameter_overrides,
            opts.api,
            opts.region,
            ssm=ssm,
            secrets=opts.secrets,
        )
        self.app_model = model
        main_sock = _bind(opts.host, opts.port)
        tls_sock = _bind("127.0.0.1", 0)
        self.port, self.tls_port = main_sock.getsockname()[1], tls_sock.getsockname()[1]
        try:
            endpoint = await asyncio.to_thread(self._aws.start)
            await asyncio.to_thread(self._aws.create_tables, model.tables)
            await asyncio.to_thread(self._aws.create_queues, model.queues)
            await asyncio.to_thread(self._aws.seed, ssm, opts.secrets)
            lambdas, local_host = await self._start_lambdas(model, endpoint)
            stage = Stage(
                api_id=model.api.api_id, stage=model.api.stage, domain_name=local_host, region=model.region
            )
            settings = GatewaySettings(
                opts.idle_timeout_s,
                opts.max_duration_s,
                iam_auth=opts.iam_auth,
                iam_secrets=dict([self.credentials]),
                integration_timeout_s=opts.integration_timeout_s,
            )
            self.gateway = Gateway(model.api, lambdas, stage, settings)
            app = web.Application(client_max_size=4 * 1024 * 1024)
            self.gateway.add_routes(app)
            signers = dict([self.credentials]) if self.management_sigv4 else None
            self.management = ManagementApi(self.gateway, self.faults, signers)
            self.management.add_routes(app)
            app.router.add_get("/_lambdacast/faults", self._fault_counts)
            app.router.add_get("/_lambdacast/connections", self._connections_calls)
            if self.dev_tokens is not None:
                self.dev_tokens.add_routes(app)
            self.gateway.add_fallback(app)
            runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            self._runners.append(runner)
            await web.SockSite(runner, main_sock).start()
            assert self._tls is not None
            assert runner.server is not None
            self._management_listener = ManagementListener(
                self.management, model.api.stage, runner.server, f"https://127.0.0.1:{self.tls_port}"
            )
            self._tls_server = await asyncio.get_running_loop().create_server(
                self._management_listener, sock=tls_sock, ssl=self._tls.context, backlog=4096
            )
            if model.http_apis:
                await self._start_http(model)
            if model.event_sources:
                self._pollers = SqsPollers(self._aws.client("sqs"), lambdas, model.region)
                self._pollers.start(model.event_sources, model.queues)
            if opts.web_dir is not None:
                await self._start_web(opts.web_dir)
            if opts.reload:
                self._reload_task = asyncio.get_running_loop().create_task(self._watch())
        except BaseException:
            await self.stop()
            raise

    async def _fault_counts(self, _: web.Request) -> web.Response:
        """``GET /_lambdacast/faults``: the spec, the seed and the counts so far (local only)."""
        return web.json_response(self.faults.as_json(), headers={"Cache-Control": "no-store"})

    async def _connections_calls(self, _: web.Request) -> web.Response:
        """``GET /_lambdacast/connections``: ``@connections`` calls so far, by operation (local only)."""
        assert self.management is not None
        calls = dict(self.management.calls)
        return web.json_response({"calls": calls}, headers={"Cache-Control": "no-store"})

    async def _start_lambdas(self, model: App, aws_endpoint: str) -> tuple[LambdaService, str]:
        """Prepare each function's runtime and pool; return the pools and the TLS listener's ``host:port``."""
        opts = self.options
        api_host = model.api.execute_api_host(model.region)
        services = {name: service_host(name, model.region) for name in SERVED_SERVICES}
        self._tls = make_local_tls(("127.0.0.1", "localhost", api_host, *services.values()))
        service_ports = await self._start_fronts(aws_endpoint, self._tls)
        hosts = redirected_hosts(model.region, api_host, self.tls_port, service_ports)
        launches = await asyncio.to_thread(
            prepare,
            model.functions,
            opts.template.resolve().parent,
            opts.installer(),
            hosts=hosts,
            use_artifacts=opts.build_artifacts and not opts.reload,
        )
        local_host = f"127.0.0.1:{self.tls_port}"
        endpoints = Endpoints(
            aws=aws_endpoint,
            dynamodb=self._aws.handler_dynamodb_endpoint,
            ca_bundle=str(self._tls.ca_bundle),
            host_aliases={api_host: local_host},
        )
        envs = {
            name: runtime_environment(launch.function, model.region, endpoints, self.credentials[1])
            for name, launch in launches.items()
        }
        self.lambdas = LambdaService(
            model.functions, envs, model.region, opts.concurrency, launches, faults=self.faults
        )
        self.lambdas.observers.extend(self._observers)
        return self.lambdas, local_host

    async def _start_fronts(self, moto_endpoint: str, tls: LocalTls) -> dict[str, int]:
        """Serve each AWS service hostname over TLS locally: the embedded AWS, or ``--dynamodb-endpoint``."""
        moto = urlsplit(moto_endpoint)
        upstreams = {name: (moto.hostname or "127.0.0.1", moto.port or 80) for name in SERVED_SERVICES}
        if self.options.dynamodb_endpoint:
            external = urlsplit(self.options.dynamodb_endpoint)
            if external.scheme == "http" and external.hostname:
                upstreams["dynamodb"] = (external.hostname, external.port or 80)
            else:  # an https:// DynamoDB has its own certificate; its real hostname stays unredirected
                del upstreams["dynamodb"]
        else:  # handlers' DynamoDB calls pass the fault layer (--faults), by hostname too
            faulty = urlsplit(self._aws.handler_dynamodb_endpoint)
            upstreams["dynamodb"] = (faulty.hostname or "127.0.0.1", faulty.port or 80)
        ports: dict[tuple[str, int], int] = {}
        for upstream in set(upstreams.values()):
            front = ServiceFront(*upstream, tls.context)
            self._fronts.append(front)
            ports[upstream] = await front.start()
        return {name: ports[upstream] for name, upstream in upstreams.items()}

    async def _start_http(self, model: App) -> None:
        assert self.lambdas is not None
        gateway = HttpGateway(model.http_apis, self.lambdas, dict([self.credentials]), self.options.iam_auth)
        app = web.Application(client_max_size=10 * 1024 * 1024)
        gateway.add_routes(app)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        sock = _bind(self.options.host, self.options.http_port)
        self.http_port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()

    async def _start_web(self, web_dir: Path) -> None:
        app = web.Application()

        async def index(_: web.Request) -> web.FileResponse:
            return web.FileResponse(web_dir / "index.html")

        async def config(_: web.Request) -> web.Response:
            # The page asks for config.json; locally it must name this emulator, never a deployed stack.
            return web.json_response({"webSocketUrl": self.ws_url}, headers={"Cache-Control": "no-store"})

        app.router.add_get("/", index)
        app.router.add_get("/config.json", config)
        app.router.add_static("/", web_dir, show_index=False)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        sock = _bind(self.options.host, self.options.web_port)
        self.web_port = sock.getsockname()[1]
        if self.dev_tokens is not None:  # the minter answers this page, and no other web page
            self.dev_tokens.allowed_origins = page_origins(self.web_port)
        await web.SockSite(runner, sock).start()

    async def _watch(self) -> None:
        assert self.app_model is not None
        assert self.lambdas is not None
        folders = {fn.code_dir for fn in self.app_model.functions.values()}
        folders |= {layer for fn in self.app_model.functions.values() for layer in fn.layer_dirs}
        async for _changes in awatch(*folders):
            await self.lambdas.recycle()

    async def stop(self) -> None:
        """Close sockets (firing ``$disconnect``), reap every worker, stop embedded AWS."""
        if self._reload_task is not None:
            self._reload_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload_task
        if self._pollers is not None:
            await self._pollers.close()
        if self.gateway is not None:
            await self.gateway.shutdown()
        if self._tls_server is not None:
            self._tls_server.close()
            assert self._management_listener is not None
            self._management_listener.close_all()
            await self._tls_server.wait_closed()
            self._tls_server = None
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self.lambdas is not None:
            await self.lambdas.close()
        for front in self._fronts:
            await front.stop()
        self._fronts.clear()
        await asyncio.to_thread(self._aws.stop)
        if self._tls is not None:
            self._tls.cleanup()


def exposure_warning(emulator: Emulator) -> str | None:
    """What to tell the developer when ``--host`` makes the emulator reachable from other machines."""
    if not emulator.exposed:
        return None
    host = emulator.options.host
    key, secret = emulator.credentials
    lines = [
        f"WARNING: --host {host} is not loopback: the WebSocket API, @connections, the HTTP APIs",
        "  and the demo page are reachable from other machines (the dev token minter answers this",
        "  machine only).",
    ]
    if emulator.management_sigv4:
        lines += [
            "  @connections, AWS_IAM routes and IAM $connect need SigV4 signed with this run's key",
            f"  (the documented local key no longer works): {key} / {secret}",
        ]
    else:
        lines.append("  --no-iam-auth: anyone who can reach it may post to, read or close any connection.")
    return "\n".join(lines)
