"""The fault plan: one seeded stream per target, one draw per call, decisions and counts (no I/O)."""

from __future__ import annotations

import threading

import pytest

from lambdacast_local.faults import NO_FAULT, Decision, Faults, FaultSpecError, TargetSpec, choose, parse_spec
from lambdacast_local.testing import seed_where

DYNAMO = TargetSpec({"throttle": 0.2, "lost-reply": 0.2, "error": 0.1})


def kinds(faults: Faults, target: str, calls: int) -> list[tuple[str | None, str]]:
    return [(d.kind, d.variant) for d in (faults.decide(target) for _ in range(calls))]


@pytest.mark.parametrize(
    ("draw", "expected"),
    [
        (0.0, Decision("throttle", "ProvisionedThroughputExceededException")),
        (0.099, Decision("throttle", "ProvisionedThroughputExceededException")),
        (0.1, Decision("throttle", "ThrottlingException")),
        (0.2, Decision("lost-reply", "500")),
        (0.35, Decision("lost-reply", "dropped")),
        (0.45, Decision("error", "")),
        (0.5, NO_FAULT),
        (0.999, NO_FAULT),
    ],
)
def test_a_draw_falls_in_one_kinds_slice_and_its_position_picks_the_variant(draw, expected):
    # GIVEN throttle 0.2, lost-reply 0.2, error 0.1 (slices [0, .2), [.2, .4), [.4, .5))
    # WHEN a draw is mapped
    # THEN it gets that slice's kind, and the half of the slice it lies in picks the variant
    assert choose(DYNAMO, "dynamodb", draw) == expected


def test_rate_zero_is_never_chosen_and_rate_one_always():
    # GIVEN lambda:crash=0 and connections:410=1
    never = TargetSpec({"crash": 0.0, "timeout": 0.0})
    always = TargetSpec({"410": 1.0})
    # WHEN draws across [0, 1) are mapped
    draws = [i / 1000 for i in range(1000)]
    # THEN the zero rate never fires, the rate of one always does
    assert all(choose(never, "lambda", u).kind is None for u in draws)
    assert all(choose(always, "connections", u).kind == "410" for u in draws)


def test_latency_is_on_every_decision_fault_or_not():
    # GIVEN connections 429 at 0.5 with 20 ms latency
    spec = TargetSpec({"429": 0.5}, latency_ms=20.0)
    # WHEN a faulted and a clean draw are mapped
    # THEN both carry the delay
    assert choose(spec, "connections", 0.1) == Decision("429", "", 20.0)
    assert choose(spec, "connections", 0.9) == Decision(None, "", 20.0)


def test_same_seed_and_same_calls_give_the_same_faults():
    # GIVEN two plans with the same spec and seed
    spec = "dynamodb:throttle=0.2,dynamodb:lost-reply=0.2,connections:500=0.3,lambda:crash=0.1"
    one, two = Faults(spec, 42), Faults(spec, 42)
    # WHEN each sees the same sequence of calls
    calls = ["dynamodb", "connections", "dynamodb", "lambda"] * 50
    # THEN every decision is the same
    assert [one.decide(t) for t in calls] == [two.decide(t) for t in calls]
    # AND the faults were not all alike (the streams are random, not constant)
    assert 0 < one.count("dynamodb", "throttle") < 100


def test_another_seed_gives_other_faults():
    # WHEN two seeds decide 200 calls at rate 0.5
    one = kinds(Faults("dynamodb:error=0.5", 1), "dynamodb", 200)
    two = kinds(Faults("dynamodb:error=0.5", 2), "dynamodb", 200)
    # THEN the sequences differ
    assert one != two


def test_adding_a_target_or_calling_it_does_not_reshuffle_another_target():
    # GIVEN a plan with DynamoDB faults, and one with lambda and connections faults added
    alone = Faults("dynamodb:throttle=0.3", 9)
    crowded = Faults("dynamodb:throttle=0.3,lambda:crash=0.5,connections:429=0.5", 9)
    # WHEN the second also sees calls to its other targets in between
    expected = kinds(alone, "dynamodb", 100)
    got = []
    for _ in range(100):
        crowded.decide("lambda")
        crowded.decide("connections")
        decision = crowded.decide("dynamodb")
        got.append((decision.kind, decision.variant))
    # THEN DynamoDB's decisions are the very same
    assert got == expected


def test_rates_hold_over_many_calls_and_both_variants_occur():
    # GIVEN throttle 0.1 and lost-reply 0.05
    faults = Faults("dynamodb:throttle=0.1,dynamodb:lost-reply=0.05", 3)
    # WHEN 20,000 calls are decided (a fixed seed: the result is the same on every run)
    for _ in range(20_000):
        faults.decide("dynamodb")
    counts = faults.counts("dynamodb")
    # THEN each kind fired at close to its rate
    assert counts.calls == 20_000
    assert abs(counts.injected["throttle"] / 20_000 - 0.1) < 0.01
    assert abs(counts.injected["lost-reply"] / 20_000 - 0.05) < 0.01
    # AND each variant accounts for about half of its kind, the variants adding up to the kind
    for kind, (a, b) in {
        "throttle": ("ProvisionedThroughputExceededException", "ThrottlingException"),
        "lost-reply": ("500", "dropped"),
    }.items():
        first, second = counts.variants[f"{kind}/{a}"], counts.variants[f"{kind}/{b}"]
        assert first + second == counts.injected[kind]
        assert 0.4 < first / counts.injected[kind] < 0.6


def test_counts_name_every_configured_kind_and_latency_counts_delayed_calls():
    # GIVEN connections 410 at 0 and a latency
    faults = Faults("connections:410=0,connections:latency=3", 1)
    # WHEN 5 calls are decided
    for _ in range(5):
        faults.decide("connections")
    # THEN 410 shows zero, every call was delayed
    assert faults.counts("connections").injected == {"410": 0, "latency": 5}
    assert faults.calls("connections") == 5


def test_a_target_without_faults_takes_no_draw_and_counts_nothing():
    # GIVEN only DynamoDB faults
    faults = Faults("dynamodb:error=1", 1)
    # WHEN lambda is asked
    # THEN no fault, no count, not enabled
    assert faults.decide("lambda") is NO_FAULT
    assert faults.calls("lambda") == 0
    assert not faults.enabled("lambda")
    assert faults.enabled("dynamodb")


def test_summary_is_one_line_with_each_kind_over_the_targets_calls():
    # GIVEN DynamoDB throttles and connections faults with latency, a few calls decided
    faults = Faults("dynamodb:throttle=1,connections:429=0,connections:latency=5", 7)
    for _ in range(3):
        faults.decide("dynamodb")
    faults.decide("connections")
    # WHEN the summary is written
    # THEN it reads like this
    assert faults.summary() == (
        "faults injected (seed 7): dynamodb throttle 3/3; connections 429 0/1, latency 5 ms 1/1"
    )


def test_as_json_has_spec_seed_and_counts():
    # GIVEN a plan that decided one call
    faults = Faults("lambda:crash=1", 5)
    faults.decide("lambda")
    # WHEN it is described as JSON
    described = faults.as_json()
    # THEN the counts are there with the variant
    assert described["spec"] == "lambda:crash=1"
    assert described["seed"] == 5
    assert described["targets"]["lambda"]["calls"] == 1
    assert described["targets"]["lambda"]["injected"] == {"crash": 1}
    assert sum(described["targets"]["lambda"]["variants"].values()) == 1


def test_configure_replaces_the_plan_and_zeroes_the_counts():
    # GIVEN a plan that has counted calls
    faults = Faults("dynamodb:error=1", 1)
    faults.decide("dynamodb")
    # WHEN it is configured anew with a seed
    faults.configure("connections:500=1", 11)
    # THEN the old target is gone, the new one counts from zero under the new seed
    assert not faults.enabled("dynamodb")
    assert faults.calls("connections") == 0
    assert faults.seed == 11
    # AND its decisions are those of a fresh plan with that seed
    assert kinds(faults, "connections", 5) == kinds(Faults("connections:500=1", 11), "connections", 5)


def test_without_a_seed_one_is_picked_and_repeats_the_run():
    # GIVEN a plan whose seed was picked at random
    faults = Faults("dynamodb:error=0.5")
    first = kinds(faults, "dynamodb", 50)
    # WHEN a plan is made with the seed it reports
    again = Faults("dynamodb:error=0.5", faults.seed)
    # THEN it gives the same faults
    assert kinds(again, "dynamodb", 50) == first


def test_a_target_marked_unavailable_is_refused_with_the_reason():
    # GIVEN DynamoDB is external, so its faults cannot be injected
    reason = "DynamoDB faults need the embedded DynamoDB."
    # WHEN a plan asks for them, at start or later
    # THEN the reason is the error, and other targets are fine
    with pytest.raises(FaultSpecError, match="need the embedded DynamoDB"):
        Faults("dynamodb:throttle=0.1", 1, unavailable={"dynamodb": reason})
    faults = Faults("lambda:crash=0.1", 1, unavailable={"dynamodb": reason})
    with pytest.raises(FaultSpecError, match="need the embedded DynamoDB"):
        faults.configure("dynamodb:error=0.1")
    assert faults.enabled("lambda")


def test_counts_stay_exact_when_threads_decide_at_once():
    # GIVEN a plan shared by 8 threads (werkzeug's request threads do this)
    faults = Faults("dynamodb:throttle=0.5", 4)
    # WHEN each decides 2,000 calls
    threads = [
        threading.Thread(target=lambda: [faults.decide("dynamodb") for _ in range(2_000)]) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN every call was counted once, and the faults are those of the same 16,000 draws in one thread
    alone = Faults("dynamodb:throttle=0.5", 4)
    for _ in range(16_000):
        alone.decide("dynamodb")
    assert faults.calls("dynamodb") == 16_000
    assert faults.count("dynamodb", "throttle") == alone.count("dynamodb", "throttle")


def test_seed_where_finds_a_seed_giving_the_wanted_sequence():
    # WHEN a seed is wanted whose first DynamoDB call is a dropped lost reply and the second clean
    spec = "dynamodb:lost-reply=0.5"
    seed = seed_where(spec, "dynamodb", ["lost-reply/dropped", None])
    # THEN a plan with it gives exactly that
    faults = Faults(parse_spec(spec), seed)
    assert faults.decide("dynamodb") == Decision("lost-reply", "dropped")
    assert faults.decide("dynamodb") == NO_FAULT


def test_seed_where_says_when_no_seed_can_do_it():
    # WHEN a rate of 1 is asked for a clean call
    # THEN it is refused, naming what was asked
    with pytest.raises(ValueError, match=r"no seed below 50 gives \[None\]"):
        seed_where("lambda:crash=1", "lambda", [None], search=50)
