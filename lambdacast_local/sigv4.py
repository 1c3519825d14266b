"""Verify SigV4-signed requests to ``AWS_IAM`` HTTP API routes (botocore recomputes the signature).

Locally the only known credentials are the ones the emulator hands its workers (and prints in the docs):
a request signed with any other key cannot be verified, so it is refused like an unknown key on AWS.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request,"
    r"\s*SignedHeaders=(?P<headers>[^,]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
_MAX_SKEW = timedelta(minutes=15)


@dataclass(frozen=True)
class Caller:
    """Who signed a verified request (``requestContext.authorizer.iam``)."""

    access_key: str
    account_id: str
    user_arn: str


class _SignedHeadersOnly(SigV4Auth):
    """SigV4 over exactly the headers the client said it signed."""

    def __init__(
        self, credentials: Credentials, service: str, region: str, signed: list[str], encode_path: bool
    ) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed
        self._encode_path = encode_path

    def _normalize_url_path(self, path: str) -> str:
        # botocore URI-encodes the (already encoded) path again; curl and others sign it as sent.
        return str(SigV4Auth._normalize_url_path(self, path)) if self._encode_path else path  # type: ignore[attr-defined]

    def headers_to_sign(self, request: AWSRequest) -> Any:
        headers = super().headers_to_sign(request)
        for name in list(headers.keys()):
            if name not in self._signed:
                del headers[name]
        return headers


def verify(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: Mapping[str, str],
    now: datetime | None = None,
) -> Caller | str:
    """Check a request's SigV4 signature.

    Args:
        method: The HTTP method.
        url: The URL as the client addressed it (``http://host:port/path?query``).
        headers: The request headers.
        body: The raw body.
        secrets: Access key id -> secret key of the credentials the emulator knows.
        now: The clock (tests).

    Returns:
        The caller, or the reason the request is refused (403).
    """
    match = _AUTHORIZATION.fullmatch(headers.get("Authorization", "").strip())
    if match is None:
        return "Missing or malformed SigV4 Authorization header"
    key = match.group("key")
    if key not in secrets:
        return f"The security token included in the request is invalid (unknown access key {key})"
    amz_date = headers.get("X-Amz-Date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "Missing or malformed X-Amz-Date header"
    if abs((now or datetime.now(UTC)) - signed_at) > _MAX_SKEW:
        return "Signature expired"
    signed = match.group("headers").split(";")
    request = AWSRequest(
        method=method, url=url, headers={k: v for k, v in headers.items() if k.lower() in signed}, data=body
    )
    request.context["timestamp"] = amz_date
    token = headers.get("X-Amz-Security-Token")
    credentials = Credentials(key, secrets[key], token)
    for encode_path in (True, False):
        auth = _SignedHeadersOnly(
            credentials, match.group("service"), match.group("region"), signed, encode_path
        )
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        if hmac.compare_digest(expected, match.group("signature")):
            break
    else:
        return "The request signature we calculated does not match the signature you provided"
    return Caller(
        access_key=key, account_id="123456789012", user_arn="arn:aws:iam::123456789012:user/lambdacast-local"
    )
