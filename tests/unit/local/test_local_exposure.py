"""``--host`` beyond loopback: a warning, SigV4 on ``@connections`` with a per-run key (no sockets here).

tests/functional/test_management_sigv4.py checks what the emulator then does on the wire.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdacast_local.cli import _options, _parser
from lambdacast_local.options import Options
from lambdacast_local.runtime_env import FAKE_SECRET_KEY
from lambdacast_local.server import Emulator, exposure_warning, is_loopback


def emulator_for(*argv: str) -> Emulator:
    """The emulator ``lambdacast local ARGV`` would run (built, never started: nothing is bound)."""
    args = _parser().parse_args(["local", "--template", str(Path("template.yaml")), "--no-web", *argv])
    return Emulator(_options(args))


def test_host_0000_without_a_signature_is_refused() -> None:
    # GIVEN the reproduction: `lambdacast local --host 0.0.0.0`
    emulator = emulator_for("--host", "0.0.0.0")
    # THEN @connections demands SigV4, with a key of this run (the documented one no longer signs)
    assert emulator.exposed
    assert emulator.management_sigv4
    assert emulator.credentials[1] != FAKE_SECRET_KEY
    # AND the developer is told, with the key to sign with
    warning = exposure_warning(emulator)
    assert warning is not None
    assert "--host 0.0.0.0 is not loopback" in warning
    assert emulator.credentials[1] in warning


def test_each_exposed_run_has_its_own_key() -> None:
    # GIVEN two exposed runs WHEN their keys are compared THEN they differ
    assert emulator_for("--host", "0.0.0.0").credentials != emulator_for("--host", "0.0.0.0").credentials


def test_no_iam_auth_turns_the_check_off_and_says_what_that_means() -> None:
    # GIVEN --host 0.0.0.0 --no-iam-auth
    emulator = emulator_for("--host", "0.0.0.0", "--no-iam-auth")
    # THEN unsigned @connections calls are served, and the warning says anyone can use them
    assert not emulator.management_sigv4
    warning = exposure_warning(emulator)
    assert warning is not None
    assert "anyone who can reach it may post to, read or close any connection" in warning


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_keeps_unsigned_management_calls_and_the_documented_key(host: str) -> None:
    # GIVEN a loopback --host (the default)
    emulator = emulator_for("--host", host)
    # THEN nothing changes: unsigned @connections, the documented key, no warning
    assert is_loopback(host)
    assert not emulator.management_sigv4
    assert emulator.credentials[1] == FAKE_SECRET_KEY
    assert exposure_warning(emulator) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "my-laptop.lan"])
def test_anything_else_is_exposed(host: str) -> None:
    # GIVEN a wildcard, a LAN address or a name WHEN checked THEN it is not loopback
    assert not is_loopback(host)


def test_a_test_can_turn_the_check_on_without_leaving_loopback() -> None:
    # GIVEN the option the functional tests use (they never bind beyond 127.0.0.1)
    emulator = Emulator(Options(host="127.0.0.1", management_iam_auth=True))
    # THEN the check is on, with a key of this run, and no exposure warning
    assert emulator.management_sigv4
    assert emulator.credentials[1] != FAKE_SECRET_KEY
    assert exposure_warning(emulator) is None


def test_dev_token_flags_reach_the_minter() -> None:
    # GIVEN the dev-token flags
    emulator = emulator_for(
        "--dev-tokens", "/p", "--dev-tokens-channels", "presence-*, private-team-*", "--dev-tokens-any-user"
    )
    # THEN the minter grants those patterns and honours user ids
    assert emulator.dev_tokens is not None
    assert emulator.dev_tokens.channels == ("presence-*", "private-team-*")
    assert emulator.dev_tokens.any_user


def test_a_bad_channel_pattern_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a pattern with a character no channel has
    from lambdacast_local.cli import main

    # WHEN the emulator is started THEN it stops before binding anything, naming the flag
    assert main(["local", "--no-web", "--dev-tokens", "/p", "--dev-tokens-channels", "private-a b"]) == 2
    assert "--dev-tokens-channels" in capsys.readouterr().err
