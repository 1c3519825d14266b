"""The ``--faults`` grammar: what it accepts, and one clear sentence for what it refuses."""

from __future__ import annotations

import pytest

from lambdacast_local.errors import UsageError
from lambdacast_local.faults import FaultSpec, FaultSpecError, TargetSpec, parse_spec


def test_every_kind_of_every_target_parses_with_its_value():
    # WHEN a spec names every fault there is
    spec = parse_spec(
        "dynamodb:throttle=0.1,dynamodb:lost-reply=0.2,dynamodb:error=0.3,"
        "connections:429=0.1,connections:500=0.05,connections:410=0.01,connections:latency=20,"
        "lambda:crash=0.02,lambda:timeout=0.03"
    )
    # THEN each target holds its rates and the latency
    assert spec.targets == {
        "dynamodb": TargetSpec({"throttle": 0.1, "lost-reply": 0.2, "error": 0.3}),
        "connections": TargetSpec({"429": 0.1, "500": 0.05, "410": 0.01}, latency_ms=20.0),
        "lambda": TargetSpec({"crash": 0.02, "timeout": 0.03}),
    }


def test_entry_order_and_spaces_do_not_matter():
    # WHEN the same faults are written in two orders, one with spaces
    one = parse_spec("lambda:crash=0.5, dynamodb:error=0.1 ,dynamodb:throttle=0.2")
    two = parse_spec("dynamodb:throttle=0.2,dynamodb:error=0.1,lambda:crash=0.5")
    # THEN they are the same spec, kinds in canonical order (the order a draw's slices are laid out in)
    assert one == two
    assert list(one.targets["dynamodb"].rates) == ["throttle", "error"]
    assert str(one) == "dynamodb:throttle=0.2,dynamodb:error=0.1,lambda:crash=0.5"


def test_empty_spec_means_no_faults():
    # WHEN --faults is empty or blank
    # THEN there is no target at all
    assert parse_spec("") == FaultSpec()
    assert parse_spec("  ") == FaultSpec()


def test_latency_alone_is_a_connections_target_without_rates():
    # WHEN only a latency is given
    spec = parse_spec("connections:latency=5")
    # THEN connections has it and no probabilistic fault
    assert spec.targets == {"connections": TargetSpec({}, latency_ms=5.0)}


def test_rates_of_a_target_may_add_up_to_exactly_one():
    # WHEN a target's rates fill the whole draw
    spec = parse_spec("dynamodb:throttle=0.5,dynamodb:error=0.5")
    # THEN it is accepted (every call faulted)
    assert sum(spec.targets["dynamodb"].rates.values()) == 1.0


@pytest.mark.parametrize(
    ("text", "named", "says"),
    [
        ("dynamo:throttle=0.1", "'dynamo:throttle=0.1'", "unknown target 'dynamo'"),
        ("dynamodb:throtle=0.1", "'dynamodb:throtle=0.1'", "has no fault 'throtle'"),
        ("dynamodb:latency=5", "'dynamodb:latency=5'", "has no fault 'latency'"),
        ("lambda:429=0.1", "'lambda:429=0.1'", "has no fault '429'"),
        ("dynamodb:throttle", "'dynamodb:throttle'", "write target:kind=value"),
        ("throttle=0.1", "'throttle=0.1'", "write target:kind=value"),
        ("dynamodb:throttle=", "'dynamodb:throttle='", "write target:kind=value"),
        ("dynamodb:throttle=1.5", "'dynamodb:throttle=1.5'", "a probability from 0 to 1"),
        ("dynamodb:throttle=-0.1", "'dynamodb:throttle=-0.1'", "a probability from 0 to 1"),
        ("dynamodb:throttle=lots", "'dynamodb:throttle=lots'", "a probability from 0 to 1"),
        ("dynamodb:throttle=nan", "'dynamodb:throttle=nan'", "a probability from 0 to 1"),
        ("connections:latency=-1", "'connections:latency=-1'", "milliseconds, 0 or more"),
        ("connections:latency=inf", "'connections:latency=inf'", "milliseconds, 0 or more"),
        ("lambda:crash=0.1,lambda:crash=0.2", "'lambda:crash=0.2'", "given twice"),
        ("connections:latency=1,connections:latency=2", "'connections:latency=2'", "given twice"),
        ("dynamodb:throttle=0.7,dynamodb:error=0.4", "'dynamodb:error=0.4'", "add up to 1.1"),
        ("dynamodb:throttle=0.1,", "an entry is empty", "stray comma"),
    ],
)
def test_bad_entry_is_one_sentence_naming_it(text, named, says):
    # WHEN a spec has a bad entry
    with pytest.raises(FaultSpecError) as raised:
        parse_spec(text)
    # THEN the error names that entry and says what is wrong, in one line
    message = str(raised.value)
    assert named in message
    assert says in message
    assert "\n" not in message
    assert message.endswith(".")
    # AND it is a usage error (the CLI prints it and exits with status 2)
    assert isinstance(raised.value, UsageError)


def test_management_latency_becomes_connections_latency():
    # GIVEN a spec with DynamoDB faults only
    spec = parse_spec("dynamodb:error=0.1")
    # WHEN --management-latency-ms 7 is folded in
    merged = spec.with_latency(7)
    # THEN it is exactly connections:latency=7
    assert merged == parse_spec("dynamodb:error=0.1,connections:latency=7")
    # AND 0 (the flag's default) changes nothing
    assert spec.with_latency(0) is spec


def test_management_latency_keeps_connection_rates_and_agrees_with_the_same_latency():
    # GIVEN connections faults that already name the same latency
    spec = parse_spec("connections:429=0.1,connections:latency=7")
    # WHEN the flag repeats it
    # THEN nothing is lost and nothing conflicts
    assert spec.with_latency(7) == spec


def test_management_latency_that_contradicts_the_spec_is_refused():
    # GIVEN connections:latency=5
    spec = parse_spec("connections:latency=5")
    # WHEN --management-latency-ms says 9
    # THEN the user is told to give one of them
    with pytest.raises(FaultSpecError, match="--management-latency-ms 9 contradicts connections:latency=5"):
        spec.with_latency(9)
