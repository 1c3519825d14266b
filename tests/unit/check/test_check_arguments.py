"""``lambdacast check``'s pure parts: the dispatch from the console script, arguments, the report line."""

from __future__ import annotations

import pytest

from lambdacast_check.cli import format_outcome
from lambdacast_check.session import with_token
from lambdacast_check.suite import REGISTRY, Behaviour, Outcome, Status, valid_prefix
from lambdacast_local.cli import main


def test_the_console_script_dispatches_check_and_lists_every_behaviour(capsys):
    # WHEN `lambdacast check --list` runs through the console script's entry point
    assert main(["check", "--list"]) == 0
    # THEN one line per registered behaviour, in report order, each with its summary
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [b.name for b in REGISTRY]
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["check"], "give the WebSocket URL"),
        (["check", "https://example.invalid/dev"], "is not a ws:// or wss:// URL"),
        (["check", "ws://127.0.0.1:9/dev", "--prefix", "a b"], "--prefix 'a b'"),
        (["check", "ws://127.0.0.1:9/dev", "--timeout", "0"], "--timeout must be a positive"),
        (["check", "ws://127.0.0.1:9/dev", "--only", "nope"], "no behaviour named nope"),
    ],
)
def test_bad_arguments_exit_2_with_one_sentence_and_no_report(argv, complaint, capsys):
    # WHEN the command is given something it cannot use
    status = main(argv)
    # THEN it says what, prints no report, and exits 2 (without connecting anywhere)
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert complaint in captured.err


def test_behaviour_names_are_unique_and_usable_with_only():
    names = [b.name for b in REGISTRY]
    assert len(names) == len(set(names))
    assert all(" " not in name for name in names)


def test_a_token_is_added_to_the_query_string():
    assert with_token("wss://x.example/dev", "a.b.c") == "wss://x.example/dev?token=a.b.c"
    assert with_token("wss://x.example/dev", "a+b&c") == "wss://x.example/dev?token=a%2Bb%26c"
    assert with_token("ws://127.0.0.1:3001/dev?v=1", "t") == "ws://127.0.0.1:3001/dev?v=1&token=t"
    assert with_token("ws://127.0.0.1:3001/dev", None) == "ws://127.0.0.1:3001/dev"


def test_a_prefix_is_refused_unless_every_character_may_start_a_channel():
    assert valid_prefix("ci-check.2024:")
    assert not valid_prefix("")
    assert not valid_prefix("has space")
    assert not valid_prefix("x" * 101)


def test_a_report_line_names_the_verdict_the_behaviour_and_what_was_seen():
    async def run(_: object) -> str:
        return ""

    outcome = Outcome(Behaviour("ping", "ping", run), Status.FAIL, "expected pong, got {}", 0.1)
    assert format_outcome(outcome, color=False) == f"FAIL  {'ping':<38} expected pong, got {{}}"
