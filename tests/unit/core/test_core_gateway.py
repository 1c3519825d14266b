"""The management API adapter, against botocore's Stubber (no network)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber
from lambdacast.errors import ConnectionGone, DeliveryFailed
from lambdacast.gateway import ManagementGateway, RetryPolicy, client_for, resolve_endpoint

ENDPOINT = "https://k3xq9w2m7d.execute-api.eu-west-1.amazonaws.com/dev"


@pytest.fixture
def stubbed() -> Iterator[tuple[ManagementGateway, Stubber, list[float]]]:
    client = boto3.client("apigatewaymanagementapi", endpoint_url=ENDPOINT, region_name="eu-west-1")
    sleeps: list[float] = []
    gateway = ManagementGateway(
        client, retry=RetryPolicy(max_attempts=4), sleep=sleeps.append, rand=lambda: 1.0
    )
    with Stubber(client) as stubber:
        yield gateway, stubber, sleeps
        stubber.assert_no_pending_responses()


def post_ok(stubber: Stubber, cid: str = "A=") -> None:
    stubber.add_response("post_to_connection", {}, {"ConnectionId": cid, "Data": b"frame"})


def post_error(stubber: Stubber, code: str, status: int) -> None:
    stubber.add_client_error("post_to_connection", service_error_code=code, http_status_code=status)


def test_post_sends_the_frame(stubbed: tuple[ManagementGateway, Stubber, list[float]]) -> None:
    # GIVEN a healthy API WHEN posting THEN one call, no retry, no sleep
    gateway, stubber, sleeps = stubbed
    post_ok(stubber)
    assert gateway.post("A=", b"frame") == 0
    assert sleeps == []


def test_gone_becomes_connection_gone_without_retry(
    stubbed: tuple[ManagementGateway, Stubber, list[float]],
) -> None:
    # GIVEN the API answers 410 GoneException
    gateway, stubber, sleeps = stubbed
    post_error(stubber, "GoneException", 410)
    # WHEN posting THEN ConnectionGone names the connection, and nothing was retried
    with pytest.raises(ConnectionGone) as info:
        gateway.post("A=", b"frame")
    assert info.value.connection_id == "A="
    assert sleeps == []


def test_throttling_is_retried_with_backoff_then_delivered(
    stubbed: tuple[ManagementGateway, Stubber, list[float]],
) -> None:
    # GIVEN two 429 LimitExceededException answers, then success
    gateway, stubber, sleeps = stubbed
    post_error(stubber, "LimitExceededException", 429)
    post_error(stubber, "LimitExceededException", 429)
    post_ok(stubber)
    # WHEN posting THEN it is delivered after 2 retries, backing off exponentially (jitter at its max)
    assert gateway.post("A=", b"frame") == 2
    assert sleeps == [0.05, 0.1]


def test_server_errors_are_retried(stubbed: tuple[ManagementGateway, Stubber, list[float]]) -> None:
    # GIVEN a 500 then success WHEN posting THEN delivered after one retry
    gateway, stubber, _ = stubbed
    post_error(stubber, "InternalServerErrorException", 500)
    post_ok(stubber)
    assert gateway.post("A=", b"frame") == 1


def test_retries_are_bounded_then_delivery_failed(
    stubbed: tuple[ManagementGateway, Stubber, list[float]],
) -> None:
    # GIVEN a management API that throttles every attempt
    gateway, stubber, sleeps = stubbed
    for _ in range(4):
        post_error(stubber, "LimitExceededException", 429)
    # WHEN posting THEN after 4 attempts (3 sleeps) DeliveryFailed is raised
    with pytest.raises(DeliveryFailed):
        gateway.post("A=", b"frame")
    assert len(sleeps) == 3


def test_forbidden_is_not_retried(stubbed: tuple[ManagementGateway, Stubber, list[float]]) -> None:
    # GIVEN a 403 (retrying cannot help) WHEN posting THEN DeliveryFailed at once
    gateway, stubber, sleeps = stubbed
    post_error(stubber, "ForbiddenException", 403)
    with pytest.raises(DeliveryFailed):
        gateway.post("A=", b"frame")
    assert sleeps == []


def test_full_jitter_stays_under_the_capped_ceiling() -> None:
    # GIVEN the policy WHEN computing delays THEN uniform in [0, min(cap, base * 2**n))
    policy = RetryPolicy(max_attempts=10, base_delay=0.05, max_delay=1.0)
    assert policy.delay(0, lambda: 0.0) == 0.0
    assert policy.delay(3, lambda: 0.5) == pytest.approx(0.2)
    assert policy.delay(9, lambda: 0.999) < 1.0


def test_get_and_delete(stubbed: tuple[ManagementGateway, Stubber, list[float]]) -> None:
    # GIVEN get/delete answers WHEN called THEN 410 on get is ConnectionGone, on delete is not an error
    gateway, stubber, _ = stubbed
    stubber.add_response(
        "get_connection",
        {"Identity": {"SourceIp": "203.0.113.24", "UserAgent": "ua"}},
        {"ConnectionId": "A="},
    )
    stubber.add_client_error("get_connection", service_error_code="GoneException", http_status_code=410)
    stubber.add_client_error("delete_connection", service_error_code="GoneException", http_status_code=410)
    assert gateway.get("A=")["Identity"]["SourceIp"] == "203.0.113.24"
    with pytest.raises(ConnectionGone):
        gateway.get("A=")
    gateway.delete("A=")  # already closed: not an error


def test_endpoint_prefers_the_configured_one_for_custom_domains() -> None:
    # GIVEN MANAGEMENT_ENDPOINT or not WHEN resolving THEN it wins, else https://{domainName}/{stage}
    assert (
        resolve_endpoint("https://ws.example.com/", domain_name="x", stage="dev") == "https://ws.example.com"
    )
    assert resolve_endpoint(None, domain_name="k3.execute-api.eu-west-1.amazonaws.com", stage="dev") == (
        "https://k3.execute-api.eu-west-1.amazonaws.com/dev"
    )


def test_clients_are_cached_per_endpoint_with_the_pool_sized_to_the_concurrency() -> None:
    # GIVEN two requests for the same endpoint and pool size, and one for another endpoint
    first = client_for(ENDPOINT, max_pool_connections=96)
    again = client_for(ENDPOINT, max_pool_connections=96)
    other = client_for("https://ws.example.com/prod", max_pool_connections=96)
    # THEN the client is reused, its pool matches, and botocore's own retries are off
    assert first is again
    assert other is not first
    config = vars(first.meta.config)
    assert config["max_pool_connections"] == 96
    assert config["retries"]["total_max_attempts"] == 1
    assert first.meta.endpoint_url == ENDPOINT
