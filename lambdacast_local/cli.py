"""The ``lambdacast`` command: ``local`` (the emulator), ``generate-event`` (a sample event), ``check``.

``check`` is the lambdacast protocol's conformance suite; it lives in ``lambdacast_check`` (the emulator
itself knows nothing of the lambdacast protocol) and is only dispatched from here.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TextIO

from lambdacast_local import eventloop, events
from lambdacast_local.app_loading import prepare_runtimes
from lambdacast_local.devtokens import DEFAULT_CHANNELS, DevTokenError, parse_channels
from lambdacast_local.errors import LocalError, UsageError
from lambdacast_local.faults import parse_spec
from lambdacast_local.intrinsics import parse_overrides
from lambdacast_local.lambda_pool import Invocation
from lambdacast_local.options import Options, default_concurrency
from lambdacast_local.server import Emulator, browse_host, exposure_warning

_COLORS = {"ok": "\033[32m", "error": "\033[31m", "timeout": "\033[33m"}
_RESET = "\033[0m"


@functools.lru_cache(maxsize=4)
def _clock(second: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(second))


def format_invocation(invocation: Invocation, color: bool) -> str:
    """One log line: time, route, function, duration, cold/warm, status."""
    now = time.time()
    start = f"{_clock(int(now))}.{int(now % 1 * 1000):03d}"
    temperature = f"cold {invocation.init_ms:.0f} ms init" if invocation.cold else "warm"
    status = invocation.status.upper()
    if invocation.error:
        status += f" {invocation.error.get('errorType', '')}: {invocation.error.get('errorMessage', '')}"
    line = (
        f"{start}  {invocation.label:<22} {invocation.function:<24} "
        f"{invocation.duration_ms:8.1f} ms  {temperature:<20} {status}"
    )
    if color:
        return f"{_COLORS.get(invocation.status, '')}{line}{_RESET}"
    return line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lambdacast", description="Serverless WebSocket tools.")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser(
        "local", help="Run a SAM WebSocket API locally (API Gateway + Lambda + DynamoDB)."
    )
    local.add_argument(
        "--template",
        "-t",
        type=Path,
        action="append",
        help="The SAM template (default: template.yaml); several with --prepare.",
    )
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--port", type=int, default=3001)
    local.add_argument(
        "--web-dir",
        type=Path,
        default=None,
        help="Serve this folder as the demo page (default: web/ beside the template).",
    )
    local.add_argument("--web-port", type=int, default=8000)
    local.add_argument("--no-web", action="store_true", help="Do not serve --web-dir.")
    local.add_argument(
        "--dynamodb-endpoint", default=None, help="Use this DynamoDB instead of the embedded one."
    )
    local.add_argument("--reload", action="store_true", help="Restart workers when code changes.")
    local.add_argument(
        "--concurrency",
        type=int,
        default=default_concurrency(),
        help="Worker processes per function, at most (default: the number of cores, 2 to 8).",
    )
    local.add_argument("--idle-timeout", type=float, default=600.0, help="Seconds (API Gateway: 600).")
    local.add_argument("--max-duration", type=float, default=7200.0, help="Seconds (API Gateway: 7200).")
    local.add_argument(
        "--management-latency-ms",
        type=float,
        default=0.0,
        help="Delay every @connections call (the same as --faults connections:latency=MS).",
    )
    local.add_argument(
        "--faults",
        default="",
        metavar="SPEC",
        help="Inject faults: target:kind=rate,... e.g. dynamodb:throttle=0.05,connections:429=0.02,"
        "lambda:crash=0.01 (docs/local.md, Fault injection).",
    )
    local.add_argument(
        "--fault-seed", type=int, default=None, metavar="N", help="Repeat a fault run (default: random)."
    )
    local.add_argument("--parameter-overrides", nargs="*", default=[], metavar="NAME=VALUE")
    local.add_argument(
        "--api", default=None, help="Logical id of the WebSocket API (when there are several)."
    )
    local.add_argument("--region", default="us-east-1")
    local.add_argument(
        "--ssm",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="SSM SecureString parameters to create in the embedded AWS (also resolve SSM-typed parameters).",
    )
    local.add_argument(
        "--secret",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="Secrets Manager secrets to create in the embedded AWS (also resolve dynamic references).",
    )
    local.add_argument(
        "--http-port", type=int, default=3002, help="Port of the template's HTTP APIs, if any."
    )
    local.add_argument(
        "--dev-tokens",
        default=None,
        metavar="SSM_PARAMETER",
        help="Serve POST /_lambdacast/dev-token (local only): mint HS256 tokens with a random secret "
        "stored as this SSM parameter, the one the template's authorizer reads.",
    )
    local.add_argument(
        "--prepare",
        action="store_true",
        help="Install what the templates' functions need (Python environments, the AWS SDK for Node.js) "
        "into the user cache, then exit without serving.",
    )
    local.add_argument(
        "--dev-tokens-channels",
        default=",".join(DEFAULT_CHANNELS),
        metavar="PATTERNS",
        help="Comma-separated channel patterns dev tokens grant (default: %(default)s).",
    )
    local.add_argument(
        "--dev-tokens-any-user",
        action="store_true",
        help='Let the caller choose the token\'s user id ({"userId": ...}); default: derived from the name.',
    )
    local.add_argument(
        "--no-iam-auth",
        action="store_true",
        help="Accept AWS_IAM HTTP routes, $connect and (with --host) @connections without verifying SigV4 "
        "(local bypass; docs/local.md).",
    )

    commands.add_parser(
        "check",
        help="Check a lambdacast endpoint (local or wss://) against the protocol (lambdacast check --help).",
        add_help=False,
    )

    event = commands.add_parser("generate-event", help="Print a sample API Gateway WebSocket event.")
    event.add_argument("kind", choices=["connect", "message", "disconnect", "authorizer"])
    event.add_argument("--body", default='{"action":"hello"}', help="The message body (message events).")
    event.add_argument("--route", default="$default", help="The route key (message events).")
    event.add_argument("--stage", default="dev")
    event.add_argument(
        "--status-code", type=int, default=1000, help="disconnectStatusCode (disconnect events)."
    )
    return parser


def _templates(args: argparse.Namespace) -> list[Path]:
    templates: list[Path] = args.template or [Path("template.yaml")]
    if len(templates) > 1 and not args.prepare:
        raise UsageError("--template may be given several times only with --prepare.")
    return templates


def _options(args: argparse.Namespace, template: Path | None = None) -> Options:
    template = template or _templates(args)[0]
    web_dir = None if args.no_web else args.web_dir
    if web_dir is None and not args.no_web:
        beside = template.resolve().parent / "web"  # a demo page next to the template, if there is one
        web_dir = beside if (beside / "index.html").is_file() else None
    if web_dir is not None and not (web_dir / "index.html").is_file():
        raise LocalError(f"--web-dir {web_dir} has no index.html (pass --no-web to serve no page).")
    try:
        dev_token_channels = parse_channels(args.dev_tokens_channels)
    except DevTokenError as exc:
        raise UsageError(str(exc)) from None
    return Options(
        template=template,
        host=args.host,
        port=args.port,
        web_dir=web_dir,
        web_port=args.web_port,
        dynamodb_endpoint=args.dynamodb_endpoint,
        reload=args.reload,
        concurrency=args.concurrency,
        idle_timeout_s=args.idle_timeout,
        max_duration_s=args.max_duration,
        management_latency_ms=args.management_latency_ms,
        faults=parse_spec(args.faults),  # a bad entry stops here, before anything starts
        fault_seed=args.fault_seed,
        parameter_overrides=parse_overrides(args.parameter_overrides),
        api=args.api,
        region=args.region,
        http_port=args.http_port,
        iam_auth=not args.no_iam_auth,
        ssm_parameters=parse_overrides(args.ssm),
        secrets=parse_overrides(args.secret),
        dev_token_parameter=args.dev_tokens,
        dev_token_channels=dev_token_channels,
        dev_token_any_user=args.dev_tokens_any_user,
    )


class InvocationLog:
    """Writes one line per invocation, batched: the lines of 20 ms are one write.

    A line per invocation flushed on its own costs a system call per message, a measurable part of the
    emulator's CPU per message under load; a person cannot tell 20 ms. Flushed at shutdown too.
    """

    DELAY_S = 0.02

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._color = out.isatty()
        self._lines: list[str] = []

    def __call__(self, invocation: Invocation) -> None:
        """Queue the invocation's line (an ``Emulator`` observer)."""
        if not self._lines:
            asyncio.get_running_loop().call_later(self.DELAY_S, self.flush)
        self._lines.append(format_invocation(invocation, self._color))

    def flush(self) -> None:
        """Write the pending lines now."""
        lines, self._lines = self._lines, []
        if lines:
            self._out.write("\n".join(lines) + "\n")
            self._out.flush()


async def _run_local(options: Options, out: TextIO) -> None:
    log = InvocationLog(out)
    emulator = Emulator(options, observers=[log])
    warning = exposure_warning(emulator)
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():  # a second Ctrl-C: give up on the clean shutdown (workers exit when stdin closes)
            print("Forced exit.", file=out, flush=True)
            os._exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    await emulator.start()
    try:
        assert emulator.app_model is not None
        api = emulator.app_model.api
        print(f"lambdacast local: {api.name} ({len(api.routes)} routes, stage {api.stage})", file=out)
        print(f"  WebSocket URL:       {emulator.ws_url}", file=out)
        print(f"  @connections:        {emulator.management_url}/@connections/{{id}}", file=out)
        print(f"  handlers reach it at {emulator.tls_management_url} (TLS, local CA)", file=out)
        print(f"  embedded AWS:        {emulator.aws_endpoint}", file=out)
        if emulator.http_port:
            print(f"  HTTP APIs:           {emulator.http_url}", file=out)
        if emulator.dev_tokens is not None:
            base = f"http://{browse_host(options.host)}:{emulator.port}"
            print(f'  Dev tokens (local):  POST {base}/_lambdacast/dev-token {{"name": ...}}', file=out)
        if emulator.faults.active:
            faults = emulator.faults
            print(f"  Faults:              {faults.spec} (--fault-seed {faults.seed} repeats them)", file=out)
        if emulator.web_url:
            print(f"  Demo page:           {emulator.web_url}?ws={emulator.ws_url}", file=out)
        print("Press Ctrl-C to stop.", file=out, flush=True)
        await stop.wait()
        print(
            "Shutting down: closing connections, firing $disconnect, reaping workers...", file=out, flush=True
        )
    finally:
        await emulator.stop()
        log.flush()
        if emulator.faults.active:
            print(emulator.faults.summary(), file=out, flush=True)


def _prepare(options: Options, out: TextIO) -> None:
    model, launches = prepare_runtimes(options)
    print(f"lambdacast local: {options.template}: {len(launches)} functions ready", file=out)
    for name, launch in sorted(launches.items()):
        print(f"  {name:<28} {launch.description}", file=out)
    print(f"  (api {model.api.name}, stage {model.api.stage})", file=out, flush=True)


def _generate_event(args: argparse.Namespace) -> dict[str, object]:
    stage = events.Stage(
        api_id="abcdef1234", stage=args.stage, domain_name="abcdef1234.execute-api.us-east-1.amazonaws.com"
    )
    conn = events.Connection(
        connection_id=events.new_id(),
        connected_at=events.now_ms(),
        source_ip="203.0.113.7",
        user_agent="Mozilla/5.0",
        headers=[
            ("Host", stage.domain_name),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("User-Agent", "Mozilla/5.0"),
            *events.handshake_headers(stage.domain_name, "203.0.113.7", 443)[:-1],
        ],
        query=[("token", "example")] if args.kind == "authorizer" else [],
    )
    if args.kind == "connect":
        return events.connect_event(stage, conn)
    if args.kind == "authorizer":
        return events.authorizer_event(stage, conn)
    if args.kind == "disconnect":
        return events.disconnect_event(stage, conn, args.status_code, "")
    return events.message_event(stage, conn, args.route, args.body)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lambdacast`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:
        from lambdacast_check.cli import main as check  # noqa: PLC0415 - only this command needs it

        return check(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "generate-event":
            print(json.dumps(_generate_event(args), indent=2))
            return 0
        if args.prepare:
            for template in _templates(args):
                _prepare(_options(args, template), sys.stdout)
            return 0
        eventloop.run(_run_local(_options(args), sys.stdout))
    except LocalError as exc:
        print(f"lambdacast: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"lambdacast: {exc.strerror or exc} (is the port already in use?)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
