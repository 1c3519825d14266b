"""FastBroadcaster: the fast transport behind the core's Broadcaster interface."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from fake_management_api import CREDENTIALS, REGION, FakeManagementApi, RecordingSleep
from lambdacast.delivery.broadcaster import Broadcaster
from lambdacast.delivery.broadcaster import DirectBroadcaster as FastBroadcaster

FRAME = b'{"type":"message","channel":"lobby","seq":7,"data":1}'


def make(api: FakeManagementApi, sleep: RecordingSleep, on_gone: list[str]) -> FastBroadcaster:
    return FastBroadcaster(
        api.endpoint,
        concurrency=4,
        on_gone=on_gone.append,
        region=REGION,
        credentials=CREDENTIALS,
        sleep=sleep,
        max_attempts=2,
    )


def test_pages_are_posted_skipping_the_publisher_and_gone_rows_are_removed(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN two pages of subscribers: one stale, one the publisher itself
    removed: list[str] = []
    broadcaster: Broadcaster = make(management_api, no_sleep, removed)
    pages = [["a", "gone-b", "publisher"], ["c", "err1-d"]]
    # WHEN the frame is broadcast without echo
    result = broadcaster.broadcast(iter(pages), FRAME, skip=frozenset({"publisher"}))
    # THEN every other subscriber got it once, and only the stale one was cleaned up
    assert sorted(management_api.recorder.delivered) == ["a", "c", "err1-d"]
    assert all(bodies == [FRAME] for bodies in management_api.recorder.delivered.values())
    assert "publisher" not in management_api.recorder.attempts
    assert removed == ["gone-b"]
    assert (result.delivered, result.gone, result.failed, result.retries, result.recipients) == (
        3,
        ["gone-b"],
        [],
        1,
        4,
    )


def test_an_id_on_two_pages_is_posted_once(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN overlapping pages
    # WHEN broadcast
    result = make(management_api, no_sleep, []).broadcast([["a", "b"], ["b", "c", "c"]], FRAME)
    # THEN each id was posted exactly once
    assert management_api.recorder.attempts == {"a": 1, "b": 1, "c": 1}
    assert (result.delivered, result.recipients) == (3, 3)


def test_failures_are_counted_and_a_failing_cleanup_does_not_stop_the_broadcast(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN a refused recipient, a gone one whose cleanup raises, and a healthy one
    def explode(connection_id: str) -> None:
        raise RuntimeError(f"DynamoDB is down while removing {connection_id}")

    broadcaster = FastBroadcaster(
        management_api.endpoint, concurrency=2, on_gone=explode, region=REGION, credentials=CREDENTIALS
    )
    # WHEN broadcast
    result = broadcaster.broadcast([["forbid-x", "gone-y", "ok"]], FRAME)
    # THEN nothing raised and each outcome is counted
    assert (result.delivered, result.gone, result.failed) == (1, ["gone-y"], ["forbid-x"])


def test_a_batch_that_cannot_be_sent_counts_as_failed_instead_of_raising(
    management_api: FakeManagementApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no region anywhere, so nothing can be signed
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    broadcaster = FastBroadcaster(
        management_api.endpoint, concurrency=2, on_gone=print, credentials=CREDENTIALS
    )
    # WHEN broadcast
    result = broadcaster.broadcast([["a", "b"]], FRAME)
    # THEN both recipients are reported failed, none posted, and the publish goes on
    assert (result.delivered, sorted(result.failed), result.recipients) == (0, ["a", "b"], 2)
    assert management_api.recorder.attempts == {}


def test_an_error_reading_pages_propagates_after_earlier_pages_were_posted(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN a page source that fails after its first page
    def pages() -> Iterator[list[str]]:
        yield ["a"]
        raise ConnectionError("Query failed")

    # WHEN / THEN the read error surfaces, and the first page was delivered before it
    with pytest.raises(ConnectionError, match="Query failed"):
        make(management_api, no_sleep, []).broadcast(pages(), FRAME)
    assert list(management_api.recorder.delivered) == ["a"]


def test_a_bad_endpoint_is_refused_at_construction() -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(ValueError, match="management endpoint"):
        FastBroadcaster("not a url", concurrency=4, on_gone=print)


def test_an_unresponsive_endpoint_is_cut_at_the_deadline_and_counted_failed() -> None:
    # GIVEN a management endpoint that accepts connections but never answers
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(16)
        port = mute.getsockname()[1]
        broadcaster = FastBroadcaster(
            f"http://127.0.0.1:{port}/prod",
            concurrency=4,
            on_gone=[].append,
            region=REGION,
            credentials=CREDENTIALS,
        )
        try:
            # WHEN a broadcast to two pages runs with a deadline 0.3 s away
            result = broadcaster.broadcast([["a", "b"], ["c"]], FRAME, deadline=time.monotonic() + 0.3)
        finally:
            broadcaster.close()
    # THEN it returns instead of retrying for 4 attempts x the per-attempt timeout, every
    # recipient it could not post counted failed, none delivered
    assert result.delivered == 0
    assert set(result.failed) <= {"a", "b", "c"}
    assert {"a", "b"} <= set(result.failed)


def test_the_per_attempt_timeout_is_a_few_seconds() -> None:
    # GIVEN the engine's default per-attempt timeout WHEN compared to the 29 s Lambda timeout
    # THEN four attempts fit well inside it (the old default, 10 s, made 40 s)
    from lambdacast.delivery.transport import ATTEMPT_TIMEOUT_S

    assert 3.0 <= ATTEMPT_TIMEOUT_S <= 5.0


def test_gone_connections_are_cleaned_up_concurrently_not_one_after_another(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN three stale subscribers whose cleanups each wait until all three have started
    # (run one after another, the first would wait for the others forever: the barrier breaks)
    started = threading.Barrier(3, timeout=10)
    cleaned: list[str] = []

    def on_gone(connection_id: str) -> None:
        started.wait()
        cleaned.append(connection_id)

    broadcaster = FastBroadcaster(
        management_api.endpoint, concurrency=4, on_gone=on_gone, region=REGION, credentials=CREDENTIALS
    )
    try:
        # WHEN a broadcast finds them gone
        result = broadcaster.broadcast([["gone-a", "gone-b", "live"], ["gone-c"]], FRAME)
    finally:
        broadcaster.close()
    # THEN all three cleanups ran side by side and completed, and the live one was delivered
    assert sorted(cleaned) == ["gone-a", "gone-b", "gone-c"]
    assert sorted(result.gone) == ["gone-a", "gone-b", "gone-c"]
    assert result.delivered == 1


def test_cleanups_unfinished_at_the_deadline_are_left_to_the_ttl_and_never_raised(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN a stale subscriber whose cleanup blocks until released
    release = threading.Event()
    broadcaster = FastBroadcaster(
        management_api.endpoint,
        concurrency=4,
        on_gone=lambda _cid: release.wait(10),
        region=REGION,
        credentials=CREDENTIALS,
    )
    try:
        # WHEN the broadcast's deadline passes while that cleanup is still running
        result = broadcaster.broadcast([["gone-a", "live"]], FRAME, deadline=time.monotonic() + 2.0)
        # THEN the broadcast returns its result anyway (the cleanup is not waited for)
        assert not release.is_set()
        assert (result.gone, result.delivered) == (["gone-a"], 1)
    finally:
        release.set()
        broadcaster.close()
