"""The caller-side SigV4 helper against a local endpoint that checks signatures independently."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from botocore.credentials import Credentials
from lambdacast.client_publish import PublishError, publish, region_of, signed_request

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_signature(method: str, raw_path: str, headers: dict[str, str], body: bytes, secret: str) -> str:
    """SigV4 per AWS's published algorithm, written here independently of botocore."""
    auth = headers["authorization"]
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    scope = auth.split("Credential=")[1].split(",")[0].split("/", 1)[1]
    canonical = "\n".join(
        [
            method,
            quote(raw_path, safe="/~"),
            "",
            "".join(f"{name}:{headers[name].strip()}\n" for name in signed),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    amz_date = headers["x-amz-date"]
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    date, region, service, _ = scope.split("/")
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class _Endpoint(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []  # noqa: RUF012 - per-test list set by the fixture

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.received.append({"path": self.path, "headers": headers, "body": body})
        claimed = headers.get("authorization", "").rsplit("Signature=", 1)[-1]
        good = claimed == expected_signature("POST", urlsplit(self.path).path, headers, body, SECRET)
        if not good:
            self._answer(403, {"message": "The request signature we calculated does not match"})
        elif json.loads(body)["data"] == "too big":
            self._answer(413, {"code": "too_large", "message": '"data" is too large'})
        else:
            channel = self.path.split("/")[2]
            self._answer(200, {"channel": channel, "seq": 7, "delivered": 3})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP endpoint on a free port that verifies SigV4 with the known secret."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    received: list[dict[str, Any]] = []
    handler = type("Endpoint", (_Endpoint,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def creds(secret: str = SECRET, token: str | None = None) -> Credentials:
    return Credentials(KEY_ID, secret, token)


def test_a_signed_publish_is_accepted_and_answers_seq_and_delivered(
    endpoint: tuple[str, list[dict[str, Any]]],
) -> None:
    # GIVEN the endpoint and the right credentials
    url, received = endpoint
    # WHEN publishing to a channel with the rarer allowed characters
    result = publish(url, "team:42@eu", {"n": 1}, region=REGION, credentials=creds())
    # THEN the endpoint verified the signature and the answer is parsed
    assert (result.channel, result.seq, result.delivered) == ("team:42@eu", 7, 3)
    request = received[0]
    assert request["path"] == "/channels/team:42@eu/messages"
    assert json.loads(request["body"]) == {"data": {"n": 1}}
    assert request["headers"]["content-type"] == "application/json"
    assert f"Credential={KEY_ID}/" in request["headers"]["authorization"]
    assert f"/{REGION}/execute-api/aws4_request" in request["headers"]["authorization"]


def test_session_credentials_send_the_security_token(endpoint: tuple[str, list[dict[str, Any]]]) -> None:
    # GIVEN temporary credentials (a Lambda or ECS role) WHEN publishing
    url, received = endpoint
    publish(url, "news", 1, region=REGION, credentials=creds(token="FQoGZXIvYXdzEXAMPLE"))
    # THEN the token travels in x-amz-security-token and the signature still verifies
    assert received[0]["headers"]["x-amz-security-token"] == "FQoGZXIvYXdzEXAMPLE"


def test_a_bad_signature_is_refused_with_403(endpoint: tuple[str, list[dict[str, Any]]]) -> None:
    # GIVEN the wrong secret WHEN publishing THEN PublishError 403 with API Gateway's message
    url, _ = endpoint
    with pytest.raises(PublishError) as caught:
        publish(url, "news", 1, region=REGION, credentials=creds(secret="not-the-secret"))
    assert (caught.value.status, caught.value.code) == (403, None)
    assert "signature" in caught.value.message


def test_a_function_error_carries_its_code(endpoint: tuple[str, list[dict[str, Any]]]) -> None:
    # GIVEN a request the function refuses WHEN publishing THEN PublishError with status and code
    url, _ = endpoint
    with pytest.raises(PublishError) as caught:
        publish(url, "news", "too big", region=REGION, credentials=creds())
    assert (caught.value.status, caught.value.code) == (413, "too_large")


@pytest.mark.parametrize("channel", ["", "has space", "x" * 129, "a/b"])
def test_a_bad_channel_fails_before_any_request(channel: str) -> None:
    # GIVEN a channel breaking the rules WHEN signing THEN ValueError, nothing sent
    with pytest.raises(ValueError, match="channel names"):
        signed_request("https://h", channel, 1, region=REGION, credentials=creds())


def test_the_region_is_read_from_an_execute_api_url() -> None:
    # GIVEN API Gateway URLs and a custom domain WHEN the region is read THEN it is found, or None
    assert region_of("https://p7h2k4m9x1.execute-api.eu-west-1.amazonaws.com") == "eu-west-1"
    assert region_of("https://p7h2k4m9x1.execute-api.cn-north-1.amazonaws.com.cn/") == "cn-north-1"
    assert region_of("https://realtime.example.com") is None


def test_a_custom_domain_without_a_region_is_refused() -> None:
    # GIVEN a custom domain and no region WHEN publishing THEN ValueError naming the fix
    with pytest.raises(ValueError, match="pass region="):
        publish("https://realtime.example.com", "news", 1, credentials=creds())
