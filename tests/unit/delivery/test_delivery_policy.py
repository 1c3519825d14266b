"""What each management-API answer means, and the backoff between attempts."""

from __future__ import annotations

import pytest
from lambdacast.delivery.policy import RetryPolicy, Verdict, classify, describe


@pytest.mark.parametrize(
    ("status", "error_type", "verdict"),
    [
        (200, "", Verdict.DELIVERED),
        (204, "", Verdict.DELIVERED),
        (410, "GoneException", Verdict.GONE),
        (429, "LimitExceededException", Verdict.RETRY),
        (429, "", Verdict.RETRY),
        (400, "LimitExceededException:http://internal.amazon.com/coral/", Verdict.RETRY),
        (500, "InternalServerErrorException", Verdict.RETRY),
        (503, "", Verdict.RETRY),
        (403, "ForbiddenException", Verdict.FAIL),
        (400, "BadRequestException", Verdict.FAIL),
        (413, "PayloadTooLargeException", Verdict.FAIL),
        (404, "", Verdict.FAIL),
    ],
)
def test_answers_are_classified_like_the_core_does(status: int, error_type: str, verdict: Verdict) -> None:
    # GIVEN an answer / WHEN it is classified / THEN only throttling and server faults are retried
    assert classify(status, error_type) is verdict


def test_a_failure_reason_names_status_type_and_message() -> None:
    # GIVEN a JSON error body / WHEN it is described / THEN the reason reads well in a log
    assert (
        describe(403, "ForbiddenException", b'{"message":"Forbidden"}')
        == "HTTP 403 ForbiddenException: Forbidden"
    )


def test_a_non_json_error_body_is_quoted_not_parsed() -> None:
    # GIVEN a plain-text body / WHEN described / THEN its text is kept
    assert describe(502, "", b"Bad Gateway") == "HTTP 502 Bad Gateway"


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    # GIVEN a policy and the largest possible jitter
    policy = RetryPolicy(max_attempts=10, base_delay=0.1, max_delay=0.5)
    # WHEN delays are computed for successive attempts
    delays = [policy.delay(attempt, 0.999999) for attempt in range(1, 6)]
    # THEN they double and then stay at the cap
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5], rel=1e-5)


def test_full_jitter_can_choose_no_wait_at_all() -> None:
    # GIVEN / WHEN the jitter draws zero / THEN the wait is zero (full jitter, not equal jitter)
    assert RetryPolicy().delay(3, 0.0) == 0.0


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"base_delay": -1.0}, {"max_delay": -0.1}])
def test_nonsense_policies_are_rejected(kwargs: dict[str, float]) -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
