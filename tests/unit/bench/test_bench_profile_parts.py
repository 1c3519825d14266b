"""The profiles' grouping: every function's own time lands in one part of the boto3 call."""

from __future__ import annotations

import pytest

from bench.handler_profile import PARTS
from bench.profile_parts import OTHER, Entry, group

USER_AGENT = "/site-packages/botocore/useragent.py:200:to_string"
URLLIB3 = "/site-packages/urllib3/connection.py:491:request"
JOIN = "~:0:<method 'join' of 'str' objects>"
RECURSIVE = "/lib/python3.11/copy.py:128:deepcopy"


def test_a_named_module_counts_for_its_own_part() -> None:
    # GIVEN one function in botocore's user-agent module, 2 s of its own time
    # WHEN grouped against 1 ms per call
    phases = group([(USER_AGENT, 2.0, [])], 1.0, PARTS)
    # THEN the whole millisecond is the User-Agent header's
    assert phases == {"User-Agent header, rebuilt each call": pytest.approx(1.0)}


def test_a_builtin_is_charged_to_its_callers_in_proportion() -> None:
    # GIVEN str.join spending 3 s for the user-agent code and 1 s for urllib3, and the callers' own time
    entries: list[Entry] = [
        (USER_AGENT, 2.0, []),
        (URLLIB3, 2.0, []),
        (JOIN, 4.0, [(USER_AGENT, 3.0), (URLLIB3, 1.0)]),
    ]
    # WHEN grouped against 0.8 ms per call
    phases = group(entries, 0.8, PARTS)
    # THEN join's 4 s split 3:1, so the parts are 5 s and 3 s of 8, scaled to 0.8 ms
    assert phases["User-Agent header, rebuilt each call"] == pytest.approx(0.5)
    assert phases["HTTP and TLS (urllib3, http.client, ssl)"] == pytest.approx(0.3)
    assert next(iter(phases)) == "User-Agent header, rebuilt each call"  # largest first


def test_an_unnamed_cycle_without_a_named_caller_stays_in_the_rest() -> None:
    # GIVEN a standard-library function calling itself, called by nothing named
    entries: list[Entry] = [(RECURSIVE, 1.0, [(RECURSIVE, 0.5)])]
    # WHEN grouped
    phases = group(entries, 0.2, PARTS)
    # THEN it is counted once, in the rest, and the recursion ends
    assert phases == {OTHER: pytest.approx(0.2)}


def test_nothing_profiled_gives_no_parts() -> None:
    # GIVEN a profile with no time at all WHEN grouped THEN there are no parts to show
    assert group([(USER_AGENT, 0.0, [])], 0.8, PARTS) == {}
