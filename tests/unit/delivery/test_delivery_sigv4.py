"""FastSigner signs exactly as botocore's SigV4Auth does, only cheaper."""

from __future__ import annotations

import datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from fake_management_api import CREDENTIALS, TEMP_CREDENTIALS
from lambdacast.delivery.sigv4 import BotocoreSigner, Endpoint, FastSigner, payload_hash, region_from_endpoint

EPOCH = 1_764_000_000.0  # 2025-11-24T16:00:00Z


def botocore_headers(
    monkeypatch: pytest.MonkeyPatch, creds: Credentials, url: str, host: str, *, body: bytes, at: float
) -> dict[str, str]:
    monkeypatch.setattr(
        "botocore.auth.get_current_datetime",
        lambda: datetime.datetime.fromtimestamp(at, datetime.UTC).replace(tzinfo=None),
    )
    request = AWSRequest(method="POST", url=url, data=body, headers={"Host": host})
    SigV4Auth(creds, "execute-api", "eu-west-1").add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
        "https://ws.example.com",
        "https://ws.example.com/base/path/",
        "http://127.0.0.1:8123/dev",
    ],
)
@pytest.mark.parametrize("connection_id", ["L0SM9cOFvHcCIhw=", "a/b+c d", "ünïcode-ïd", "x.y"])
@pytest.mark.parametrize("creds", [CREDENTIALS, TEMP_CREDENTIALS], ids=["long-term", "session-token"])
def test_fast_signer_matches_botocore_byte_for_byte(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, connection_id: str, creds: Credentials
) -> None:
    # GIVEN an endpoint, an awkward connection id and a body
    target = Endpoint.parse(endpoint)
    url, canonical_path = target.target(connection_id)
    body = b'{"type":"message","data":"hi"}'
    # WHEN both signers sign the same request at the same instant
    fast = FastSigner(creds, "eu-west-1", clock=lambda: EPOCH).headers(
        target, url, canonical_path, body, payload_hash(body)
    )
    reference = botocore_headers(monkeypatch, creds, url, target.host, body=body, at=EPOCH)
    # THEN the headers are identical, Authorization included
    assert fast == reference


def test_the_signature_follows_the_clock_across_midnight(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a signer whose clock crosses a UTC day boundary between two posts
    now = [1_764_028_799.0]  # 2025-11-24T23:59:59Z
    signer = FastSigner(CREDENTIALS, "eu-west-1", clock=lambda: now[0])
    target = Endpoint.parse("https://abc.execute-api.eu-west-1.amazonaws.com/prod")
    url, path = target.target("abc=")
    before = signer.headers(target, url, path, b"x", payload_hash(b"x"))
    now[0] += 2
    # WHEN it signs again
    after = signer.headers(target, url, path, b"x", payload_hash(b"x"))
    # THEN the new day's scope and key are used, exactly as botocore would
    assert "/20251124/" in before["Authorization"]
    assert "/20251125/" in after["Authorization"]
    assert after == botocore_headers(monkeypatch, CREDENTIALS, url, target.host, body=b"x", at=now[0])


def test_the_botocore_signer_is_a_drop_in_reference() -> None:
    # GIVEN the slow reference signer
    target = Endpoint.parse("http://127.0.0.1:9/prod")
    url, path = target.target("abc=")
    # WHEN it signs
    headers = BotocoreSigner(TEMP_CREDENTIALS, "eu-west-1").headers(
        target, url, path, b"x", payload_hash(b"x")
    )
    # THEN it produces the same set of signed headers the fast signer sends
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/")
    assert headers["X-Amz-Security-Token"] == TEMP_CREDENTIALS.token
    assert headers["Host"] == "127.0.0.1:9"


def test_connection_ids_are_percent_encoded_in_the_url() -> None:
    # GIVEN a base64-style connection id
    target = Endpoint.parse("https://abc.execute-api.eu-west-1.amazonaws.com/prod/")
    # WHEN the target URL is built
    url, canonical = target.target("L0SM9cOFvHcCIhw=")
    # THEN it is encoded once in the URL and twice in the canonical path, as SigV4 requires
    assert url == "https://abc.execute-api.eu-west-1.amazonaws.com/prod/@connections/L0SM9cOFvHcCIhw%3D"
    assert canonical == "/prod/%40connections/L0SM9cOFvHcCIhw%253D"


@pytest.mark.parametrize(
    ("endpoint", "host"),
    [
        ("https://ws.example.com:443/x", "ws.example.com"),
        ("http://LOCALHOST:80/x", "localhost"),
        ("http://127.0.0.1:3001", "127.0.0.1:3001"),
    ],
)
def test_the_host_header_omits_default_ports(endpoint: str, host: str) -> None:
    # GIVEN / WHEN an endpoint is parsed
    parsed = Endpoint.parse(endpoint)
    # THEN its Host value is what botocore would sign
    assert parsed.host == host


@pytest.mark.parametrize(
    "endpoint",
    [
        "ftp://example.com/prod",
        "example.com/prod",
        "https:///prod",
        "https://a.com/prod?x=1",
        "https://u:p@a.com/",
    ],
)
def test_bad_endpoints_are_rejected_with_a_clear_error(endpoint: str) -> None:
    # GIVEN / WHEN / THEN a malformed endpoint is refused before anything is signed
    with pytest.raises(ValueError, match="management endpoint"):
        Endpoint.parse(endpoint)


@pytest.mark.parametrize(
    ("endpoint", "region"),
    [
        ("https://abc123.execute-api.ap-southeast-2.amazonaws.com/prod", "ap-southeast-2"),
        ("https://ws.example.com/prod", None),
        ("http://127.0.0.1:3001/dev", None),
    ],
)
def test_the_region_is_read_from_execute_api_hosts_only(endpoint: str, region: str | None) -> None:
    # GIVEN / WHEN / THEN
    assert region_from_endpoint(endpoint) == region
