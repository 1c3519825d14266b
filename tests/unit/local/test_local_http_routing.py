"""HTTP API routing and SigV4 verification (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lambdacast_local.http_api.gateway import _match
from lambdacast_local.http_api.model import HttpApi, HttpRoute
from lambdacast_local.sigv4 import Caller, verify

API = HttpApi(
    "Http",
    "abc",
    "$default",
    (
        HttpRoute("POST", "/channels/{channel}/messages", "Publish"),
        HttpRoute("GET", "/channels/{channel}", "Read"),
        HttpRoute("ANY", "/files/{path+}", "Files"),
        HttpRoute("GET", "/channels/special", "Special"),
    ),
)


def test_exact_path_beats_a_parameter():
    # WHEN both /channels/special and /channels/{channel} could match
    # THEN the literal route wins
    assert _match(API, "GET", "/channels/special") == (API.routes[3], {})


def test_parameters_and_greedy_paths_are_extracted():
    # THEN path parameters are captured, greedy ones across slashes
    assert _match(API, "POST", "/channels/news/messages") == (API.routes[0], {"channel": "news"})
    assert _match(API, "DELETE", "/files/a/b/c") == (API.routes[2], {"path": "a/b/c"})


def test_wrong_method_and_unknown_path_do_not_match_without_default():
    # THEN nothing matches (the gateway answers 404)
    assert _match(API, "DELETE", "/channels/news/messages") is None
    assert _match(API, "GET", "/nope") is None


def sign(url: str, body: bytes, when: datetime) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "text/plain"})
    auth = SigV4Auth(Credentials("AKIDLOCAL", "secret"), "execute-api", "us-east-1")
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    request.headers["X-Amz-Date"] = request.context["timestamp"]
    request.headers["Host"] = "127.0.0.1:3002"
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    scope = f"AKIDLOCAL/{request.context['timestamp'][:8]}/us-east-1/execute-api/aws4_request"
    headers = dict(request.headers.items())
    signed = ";".join(sorted(name.lower() for name in headers))
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed}, Signature={signature}"
    )
    return headers


def test_a_correct_signature_is_accepted():
    # GIVEN a request signed now with a known key
    now = datetime.now(UTC)
    url = "http://127.0.0.1:3002/x?b=2&a=1"
    headers = sign(url, b"body", now)
    # WHEN it is verified
    caller = verify("POST", url, headers, b"body", secrets={"AKIDLOCAL": "secret"}, now=now)
    # THEN the caller is known
    assert isinstance(caller, Caller)
    assert caller.access_key == "AKIDLOCAL"


def test_an_old_signature_is_refused():
    # GIVEN a request signed 20 minutes ago
    now = datetime.now(UTC)
    url = "http://127.0.0.1:3002/x"
    headers = sign(url, b"", now - timedelta(minutes=20))
    # THEN it has expired
    assert verify("POST", url, headers, b"", secrets={"AKIDLOCAL": "secret"}, now=now) == "Signature expired"


def test_a_changed_query_string_breaks_the_signature():
    # GIVEN a request signed for one query string
    now = datetime.now(UTC)
    headers = sign("http://127.0.0.1:3002/x?a=1", b"", now)
    # WHEN another is sent
    result = verify(
        "POST", "http://127.0.0.1:3002/x?a=2", headers, b"", secrets={"AKIDLOCAL": "secret"}, now=now
    )
    # THEN the signature does not match
    assert isinstance(result, str)
    assert "signature" in result
