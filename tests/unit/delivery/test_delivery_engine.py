"""The fan-out engine against a scripted management API on 127.0.0.1 that verifies every signature."""

from __future__ import annotations

import time

import aiohttp
import pytest
from botocore.credentials import Credentials
from fake_management_api import (
    CREDENTIALS,
    REGION,
    TEMP_CREDENTIALS,
    FakeManagementApi,
    RecordingSleep,
    TlsApi,
)
from lambdacast.delivery import engine
from lambdacast.delivery import transport as fastpost
from lambdacast.delivery.engine import FanoutOutcome, post_many_async
from lambdacast.delivery.policy import RetryPolicy
from lambdacast.delivery.transport import post_many

PAYLOAD = b'{"type":"message","channel":"lobby","seq":1,"data":"hi"}'


def broadcast(ids: list[str]) -> list[tuple[str, bytes]]:
    return [(connection_id, PAYLOAD) for connection_id in ids]


def send(api: FakeManagementApi, ids: list[str], sleep: RecordingSleep, **kwargs: object) -> FanoutOutcome:
    options: dict[str, object] = {
        "concurrency": 8,
        "region": REGION,
        "credentials": CREDENTIALS,
        "sleep": sleep,
    }
    options.update(kwargs)
    return post_many(api.endpoint, broadcast(ids), **options)  # type: ignore[arg-type]


def test_every_recipient_gets_the_message_exactly_once(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN 300 healthy connections
    ids = [f"conn{i:04d}=" for i in range(300)]
    # WHEN the message is fanned out
    outcome = send(management_api, ids, no_sleep)
    # THEN each one was posted once, with the payload, under a signature botocore accepts
    recorder = management_api.recorder
    assert recorder.bad_signatures == []
    assert sorted(outcome.delivered) == sorted(ids)
    assert {cid: bodies for cid, bodies in recorder.delivered.items()} == {cid: [PAYLOAD] for cid in ids}
    assert recorder.verified == 300
    assert (outcome.gone, outcome.failed, outcome.attempts, outcome.retries) == ([], {}, 300, 0)


def test_each_recipient_may_get_its_own_payload(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN personalised bodies
    items = [(f"c{i}", f'{{"n":{i}}}'.encode()) for i in range(20)]
    # WHEN they are posted
    outcome = post_many(management_api.endpoint, items, concurrency=4, region=REGION, credentials=CREDENTIALS)
    # THEN each connection received its own body, correctly signed
    assert len(outcome.delivered) == 20
    assert management_api.recorder.bad_signatures == []
    assert {cid: bodies[0] for cid, bodies in management_api.recorder.delivered.items()} == dict(items)


def test_gone_connections_are_reported_by_id_and_not_retried(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN two stale connections among live ones
    ids = ["live-1", "gone-a", "live-2", "gone-b", "live-3"]
    # WHEN the message is fanned out
    outcome = send(management_api, ids, no_sleep)
    # THEN exactly the stale ids are reported gone, each after one attempt, and the rest delivered
    assert sorted(outcome.gone) == ["gone-a", "gone-b"]
    assert sorted(outcome.delivered) == ["live-1", "live-2", "live-3"]
    assert management_api.recorder.attempts["gone-a"] == management_api.recorder.attempts["gone-b"] == 1
    assert outcome.failed == {}


def test_throttled_posts_are_retried_with_backoff_until_delivered(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN connections the API throttles (429 LimitExceededException) twice before accepting
    ids = ["throttle2-a", "throttle2-b", "ok"]
    # WHEN the message is fanned out with up to 4 attempts
    outcome = send(
        management_api, ids, no_sleep, policy=RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=1)
    )
    # THEN they are delivered once each, after two retries each, with bounded full-jitter waits
    assert sorted(outcome.delivered) == sorted(ids)
    assert {cid: len(b) for cid, b in management_api.recorder.delivered.items()} == dict.fromkeys(ids, 1)
    assert management_api.recorder.attempts["throttle2-a"] == 3
    assert outcome.retries == 4
    assert outcome.attempts == 7
    assert len(no_sleep.delays) == 4
    assert all(0 <= delay <= 0.2 for delay in no_sleep.delays)


def test_server_errors_are_retried_until_delivered(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN a connection the API answers 500 once
    # WHEN the message is fanned out
    outcome = send(management_api, ["err1-x"], no_sleep)
    # THEN the second attempt delivers it, once
    assert outcome.delivered == ["err1-x"]
    assert management_api.recorder.delivered["err1-x"] == [PAYLOAD]
    assert (outcome.attempts, outcome.retries) == (2, 1)


def test_retries_are_bounded_and_the_failure_is_reported_not_raised(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN a connection throttled more often than the policy allows
    # WHEN the message is fanned out with 3 attempts at most
    outcome = send(management_api, ["throttle9-x", "ok"], no_sleep, max_attempts=3)
    # THEN exactly 3 attempts were made and the id is reported failed with the reason
    assert management_api.recorder.attempts["throttle9-x"] == 3
    assert outcome.delivered == ["ok"]
    assert list(outcome.failed) == ["throttle9-x"]
    assert "429" in outcome.failed["throttle9-x"]
    assert "LimitExceededException" in outcome.failed["throttle9-x"]
    assert "gave up after 3 attempts" in outcome.failed["throttle9-x"]


def test_forbidden_is_a_failure_without_retry(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN a connection the API refuses with 403
    # WHEN the message is fanned out
    outcome = send(management_api, ["forbid-x"], no_sleep)
    # THEN one attempt is made and the failure carries the API's reason
    assert management_api.recorder.attempts["forbid-x"] == 1
    assert outcome.failed == {"forbid-x": "HTTP 403 ForbiddenException: Forbidden"}
    assert (outcome.retries, no_sleep.delays) == (0, [])


def test_an_unreachable_endpoint_fails_every_recipient_without_raising(
    dead_endpoint: str, no_sleep: RecordingSleep
) -> None:
    # GIVEN an endpoint where nothing listens
    # WHEN a fan-out is attempted with 2 attempts per recipient
    outcome = post_many(
        dead_endpoint,
        broadcast(["a", "b"]),
        region=REGION,
        credentials=CREDENTIALS,
        max_attempts=2,
        sleep=no_sleep,
    )
    fastpost.close()
    # THEN both are reported failed as connection errors after 2 attempts each
    assert sorted(outcome.failed) == ["a", "b"]
    assert all("connection error" in reason for reason in outcome.failed.values())
    assert (outcome.attempts, outcome.retries) == (4, 2)


def test_a_mixed_batch_puts_every_id_in_exactly_one_bucket(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN every kind of recipient at once
    ids = [f"ok{i}" for i in range(50)] + ["gone-1", "forbid-1", "throttle1-1", "err2-1", "throttle9-1"]
    # WHEN the message is fanned out
    outcome = send(management_api, ids, no_sleep, max_attempts=3)
    # THEN delivered, gone and failed partition the input
    buckets = [*outcome.delivered, *outcome.gone, *outcome.failed]
    assert sorted(buckets) == sorted(ids)
    assert outcome.gone == ["gone-1"]
    assert sorted(outcome.failed) == ["forbid-1", "throttle9-1"]
    assert all(len(bodies) == 1 for bodies in management_api.recorder.delivered.values())


def test_concurrency_is_bounded(management_api: FakeManagementApi, no_sleep: RecordingSleep) -> None:
    # GIVEN a server that holds each request for 20 ms
    management_api.recorder.latency = 0.02
    # WHEN 120 recipients are posted with concurrency 6
    outcome = send(management_api, [f"c{i}" for i in range(120)], no_sleep, concurrency=6)
    # THEN posts overlapped, but never more than 6 at once
    assert len(outcome.delivered) == 120
    assert 1 < management_api.recorder.max_in_flight <= 6


def test_temporary_credentials_send_and_sign_the_session_token(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN Lambda-style temporary credentials (botocore Credentials, frozen once per batch)
    # WHEN the message is fanned out
    outcome = send(management_api, ["a", "b"], no_sleep, credentials=TEMP_CREDENTIALS)
    # THEN the server verified the token and the signature
    assert management_api.recorder.bad_signatures == []
    assert sorted(outcome.delivered) == ["a", "b"]


def test_a_warm_container_reuses_the_loop_and_session(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN one batch already sent
    send(management_api, ["a"], no_sleep)
    runner = fastpost._runner()
    session = runner.session
    # WHEN a second invocation sends another
    outcome = send(management_api, ["b"], no_sleep)
    # THEN it went through the same loop and pooled session
    assert outcome.delivered == ["b"]
    assert fastpost._runner() is runner
    assert runner.session is session


def test_after_close_the_next_batch_opens_a_fresh_session(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN a closed transport
    send(management_api, ["a"], no_sleep)
    fastpost.close()
    # WHEN another batch is sent / THEN it works
    assert send(management_api, ["b"], no_sleep).delivered == ["b"]


@pytest.mark.parametrize(
    ("items", "match"),
    [
        ([("a", PAYLOAD), ("a", PAYLOAD)], "appears twice"),
        ([("", PAYLOAD)], "non-empty string"),
        ([("..", PAYLOAD)], "non-empty string"),
        ([("a", "text, not bytes")], "must be bytes"),
    ],
)
def test_bad_input_is_refused_before_anything_is_posted(
    management_api: FakeManagementApi, items: list[tuple[str, bytes]], match: str
) -> None:
    # GIVEN a malformed batch / WHEN it is posted / THEN a clear error and no request reached the API
    with pytest.raises(ValueError, match=match):
        post_many(management_api.endpoint, items, region=REGION, credentials=CREDENTIALS)
    assert management_api.recorder.attempts == {}


def test_a_zero_concurrency_is_refused(management_api: FakeManagementApi) -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(ValueError, match="concurrency"):
        post_many(
            management_api.endpoint, broadcast(["a"]), concurrency=0, region=REGION, credentials=CREDENTIALS
        )
    assert management_api.recorder.attempts == {}


def test_a_missing_region_is_a_clear_error(
    management_api: FakeManagementApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no region anywhere (the endpoint is not an execute-api host)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    # WHEN / THEN
    with pytest.raises(ValueError, match="no region"):
        post_many(management_api.endpoint, broadcast(["a"]), credentials=CREDENTIALS)
    assert management_api.recorder.attempts == {}


def test_an_empty_batch_posts_nothing(management_api: FakeManagementApi) -> None:
    # GIVEN / WHEN nothing to send
    outcome = post_many(management_api.endpoint, [], region=REGION, credentials=CREDENTIALS)
    # THEN nothing was sent and the outcome is empty
    assert outcome == FanoutOutcome()
    assert management_api.recorder.attempts == {}


async def test_the_sync_entry_point_refuses_to_run_inside_an_event_loop(
    management_api: FakeManagementApi,
) -> None:
    # GIVEN a running event loop / WHEN post_many is called from it / THEN it says to await the async API
    with pytest.raises(RuntimeError, match="post_many_async"):
        post_many(management_api.endpoint, broadcast(["a"]), region=REGION, credentials=CREDENTIALS)


async def test_async_callers_can_bring_their_own_session(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN a caller that already runs an event loop and owns a session
    async with aiohttp.ClientSession() as session:
        # WHEN it awaits the engine
        outcome = await post_many_async(
            management_api.endpoint,
            broadcast(["a", "gone-b", "err1-c"]),
            session=session,
            concurrency=2,
            region=REGION,
            credentials=CREDENTIALS,
            sleep=no_sleep,
        )
    # THEN the same semantics apply
    assert sorted(outcome.delivered) == ["a", "err1-c"]
    assert outcome.gone == ["gone-b"]
    assert management_api.recorder.bad_signatures == []


def test_the_fake_api_really_rejects_a_wrong_signature(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN credentials whose secret does not match the one the server knows
    wrong = Credentials(CREDENTIALS.access_key, "not-the-secret")
    # WHEN the message is fanned out
    outcome = send(management_api, ["a"], no_sleep, credentials=wrong)
    # THEN the server's botocore check refused it, so the signature checks above can fail
    assert management_api.recorder.bad_signatures == ["a: signature mismatch"]
    assert outcome.failed == {"a": "HTTP 403 InvalidSignatureException: signature mismatch"}


def test_without_explicit_credentials_the_botocore_chain_signs(
    management_api: FakeManagementApi, no_sleep: RecordingSleep, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Lambda-style credentials in the environment only
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEMP_CREDENTIALS.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEMP_CREDENTIALS.secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", str(TEMP_CREDENTIALS.token))
    engine._default_credentials.cache_clear()
    try:
        # WHEN a batch is posted without credentials=
        outcome = post_many(management_api.endpoint, broadcast(["a"]), region=REGION, sleep=no_sleep)
    finally:
        engine._default_credentials.cache_clear()
    # THEN botocore's chain supplied them and the server accepted the signature
    assert outcome.delivered == ["a"]
    assert management_api.recorder.bad_signatures == []


def test_https_endpoints_trust_the_ca_bundle_botocore_would(
    management_api_tls: TlsApi, no_sleep: RecordingSleep, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an https:// management API whose certificate a private CA signed, named by AWS_CA_BUNDLE
    monkeypatch.setenv("AWS_CA_BUNDLE", str(management_api_tls.ca_bundle))
    # WHEN a batch is posted
    outcome = send(management_api_tls.api, ["a", "b"], no_sleep)
    # THEN it went through TLS and every signature checked out
    assert sorted(outcome.delivered) == ["a", "b"]
    assert management_api_tls.api.recorder.bad_signatures == []


def test_an_untrusted_certificate_fails_the_posts_without_raising(
    management_api_tls: TlsApi, no_sleep: RecordingSleep, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an https:// management API whose CA nobody told us about
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    # WHEN a batch is posted
    outcome = send(management_api_tls.api, ["a"], no_sleep, max_attempts=2)
    # THEN nothing reached the server and the failure names the certificate problem
    assert management_api_tls.api.recorder.attempts == {}
    assert list(outcome.failed) == ["a"]
    assert "certificate" in outcome.failed["a"].lower()


def test_nothing_is_posted_once_the_deadline_has_passed(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN a deadline that is already over (say the Lambda has no time left)
    # WHEN a batch is posted
    outcome = send(management_api, ["a", "b"], no_sleep, deadline=99.0, monotonic=lambda: 100.0)
    # THEN every recipient is reported failed, none silently dropped, and nothing was sent
    assert outcome.failed == dict.fromkeys(["a", "b"], "deadline reached before it could be posted")
    assert management_api.recorder.attempts == {}


def test_a_retry_that_would_end_after_the_deadline_is_not_started(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN 50 ms left and a backoff that would wait 900 ms before retrying a throttled post
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=1.0)
    # WHEN the batch is posted
    outcome = send(
        management_api,
        ["throttle1-x", "ok"],
        no_sleep,
        policy=policy,
        jitter=lambda: 0.9,
        deadline=100.05,
        monotonic=lambda: 100.0,
    )
    # THEN the throttled post is failed after one attempt with both reasons, and the rest delivered
    assert outcome.delivered == ["ok"]
    assert management_api.recorder.attempts["throttle1-x"] == 1
    assert outcome.failed["throttle1-x"] == (
        "HTTP 429 LimitExceededException: Rate exceeded (deadline reached after 1 attempts)"
    )
    assert no_sleep.delays == []


def test_a_request_still_in_flight_at_the_deadline_is_cut_and_reported(
    management_api: FakeManagementApi, no_sleep: RecordingSleep
) -> None:
    # GIVEN a server that takes a second to answer, and 200 ms left
    management_api.recorder.latency = 1.0
    # WHEN a post is made
    outcome = send(management_api, ["slow"], no_sleep, deadline=time.monotonic() + 0.2)
    # THEN it is reported failed at the deadline rather than holding the invocation
    assert list(outcome.failed) == ["slow"]
    assert "deadline reached after 1 attempts" in outcome.failed["slow"]
    assert "TimeoutError" in outcome.failed["slow"]
