"""``lambdacast check URL``: run the conformance suite and print one line per behaviour.

Exit status: 0 when no behaviour failed (skipped ones are listed, with why; ``--strict`` fails on them
too), 1 when one did, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from lambdacast_check import behaviours
from lambdacast_check.suite import DEFAULT_PREFIX, REGISTRY, Outcome, Probe, Status, run, valid_prefix

assert behaviours  # imported for its registrations

_COLORS = {Status.PASS: "\033[32m", Status.FAIL: "\033[31m", Status.SKIP: "\033[33m"}
_RESET = "\033[0m"


def parser() -> argparse.ArgumentParser:
    """The ``check`` command's arguments."""
    check = argparse.ArgumentParser(
        prog="lambdacast check",
        description="Check a lambdacast endpoint (local or deployed) against protocol v1, "
        "one line per behaviour.",
    )
    check.add_argument(
        "url", nargs="?", help="The WebSocket URL, e.g. wss://abc123.execute-api.eu-west-1.amazonaws.com/dev"
    )
    check.add_argument(
        "--token",
        default=None,
        help="A JWT sent as ?token= on every connection (AuthMode required; a token granting "
        "presence-<prefix>* also runs the presence checks).",
    )
    check.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        help="Every channel the checks use starts with this (after private-/presence-); default %(default)s.",
    )
    check.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="Seconds to wait for any one reply or handshake (default 10).",
    )
    check.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="NAME",
        help="Run only these behaviours (repeatable).",
    )
    check.add_argument("--list", action="store_true", help="List the behaviours and exit.")
    check.add_argument("--strict", action="store_true", help="Exit 1 when a behaviour was skipped, too.")
    return check


def format_outcome(outcome: Outcome, color: bool) -> str:
    """``PASS  name  what was seen``."""
    status = outcome.status.value
    if color:
        status = f"{_COLORS[outcome.status]}{status}{_RESET}"
    return f"{status}  {outcome.behaviour.name:<38} {outcome.detail}"


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of ``lambdacast check`` (the ``lambdacast`` console script dispatches here)."""
    out = out or sys.stdout
    args = parser().parse_args(argv)
    if args.list:
        for item in REGISTRY:
            print(f"{item.name:<38} {item.summary}", file=out)
        return 0
    if args.url is None:
        print("lambdacast check: give the WebSocket URL to check (see --help)", file=sys.stderr)
        return 2
    if not args.url.startswith(("ws://", "wss://")):
        print(f"lambdacast check: {args.url!r} is not a ws:// or wss:// URL", file=sys.stderr)
        return 2
    if not valid_prefix(args.prefix):
        print(
            f"lambdacast check: --prefix {args.prefix!r}: "
            "1 to 100 characters from A-Z a-z 0-9 _ - = @ , . ; :",
            file=sys.stderr,
        )
        return 2
    if args.timeout <= 0:
        print("lambdacast check: --timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    chosen = REGISTRY
    if args.only:
        unknown = sorted(set(args.only) - {item.name for item in REGISTRY})
        if unknown:
            print(f"lambdacast check: no behaviour named {', '.join(unknown)} (see --list)", file=sys.stderr)
            return 2
        chosen = [item for item in REGISTRY if item.name in args.only]
    probe = Probe(url=args.url, token=args.token, prefix=args.prefix, timeout=args.timeout)
    print(
        f"lambdacast check {args.url} ({len(chosen)} behaviours, channels {args.prefix}*)",
        file=out,
        flush=True,
    )
    color = out.isatty()
    outcomes = run(probe, chosen, lambda outcome: print(format_outcome(outcome, color), file=out, flush=True))
    counts = {status: sum(o.status is status for o in outcomes) for status in Status}
    print(
        f"{counts[Status.PASS]} passed, {counts[Status.FAIL]} failed, {counts[Status.SKIP]} skipped",
        file=out,
        flush=True,
    )
    failed = counts[Status.FAIL] > 0 or (args.strict and counts[Status.SKIP] > 0)
    return 1 if failed else 0
