"""SigV4 signing for ``@connections`` requests, cheap enough to run once per recipient.

botocore's :class:`botocore.auth.SigV4Auth` is the reference: for the same request and the same
timestamp, :class:`FastSigner` produces the very same ``Authorization`` header (the unit tests
compare them, and the test server re-verifies every request with botocore). What it saves is
the per-request overhead around the maths: no ``AWSRequest`` object, no header map, no URL
re-parsing, the signing key derived once per UTC day, the timestamp formatted once per second,
the payload hash computed once per distinct payload, and the endpoint's canonical path prefix
computed once. :class:`BotocoreSigner` runs ``SigV4Auth.add_auth`` per request instead; it is
the slow, obviously-correct path, kept for comparison in the benchmarks.

No I/O here, and nothing heavier than the standard library is imported at module load.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

SERVICE = "execute-api"
_ALGORITHM = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Credentials(Protocol):
    """Frozen AWS credentials (botocore's ``ReadOnlyCredentials`` satisfies this)."""

    @property
    def access_key(self) -> str | None:
        """The access key id."""

    @property
    def secret_key(self) -> str | None:
        """The secret access key."""

    @property
    def token(self) -> str | None:
        """The session token, for temporary credentials (always set inside Lambda)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A management API endpoint, parsed once: where to post and how to sign the path.

    Attributes:
        scheme: ``https`` on AWS; ``http`` is allowed for a local emulator.
        host: The ``Host`` header value (the port only when it is not the scheme's default).
        base: ``scheme://host`` as the URL prefix to send to.
        path_prefix: The URL path up to and including ``@connections/``, as sent.
        canonical_prefix: The same prefix in SigV4 canonical form (``@`` becomes ``%40``).
    """

    scheme: str
    host: str
    base: str
    path_prefix: str
    canonical_prefix: str

    @classmethod
    def parse(cls, endpoint: str) -> Endpoint:
        """Parse ``https://{api}.execute-api.{region}.amazonaws.com/{stage}`` or a custom domain.

        Raises:
            ValueError: The endpoint is not an absolute http(s) URL without query or fragment.
        """
        parts = urlsplit(endpoint.strip())
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(
                f"management endpoint must be an absolute http(s) URL such as "
                f"https://abc123.execute-api.eu-west-1.amazonaws.com/prod, got {endpoint!r}"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(
                f"management endpoint must not carry credentials, a query or a fragment: {endpoint!r}"
            )
        host = parts.hostname
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None and parts.port != _DEFAULT_PORTS[parts.scheme]:
            host = f"{host}:{parts.port}"
        path_prefix = parts.path.rstrip("/") + "/@connections/"
        return cls(
            scheme=parts.scheme,
            host=host,
            base=f"{parts.scheme}://{host}",
            path_prefix=path_prefix,
            canonical_prefix=quote(_remove_dot_segments(path_prefix), safe="/~"),
        )

    def target(self, connection_id: str) -> tuple[str, str]:
        """Return ``(url, canonical_path)`` for posting to one connection.

        The id is percent-encoded as botocore encodes a URI label; the canonical path encodes
        it a second time, as SigV4 requires for every service but S3.
        """
        quoted = quote(connection_id, safe="")
        return self.base + self.path_prefix + quoted, self.canonical_prefix + quote(quoted, safe="~")


def region_from_endpoint(endpoint: str) -> str | None:
    """Return the region of an ``*.execute-api.{region}.amazonaws.com`` endpoint, else None."""
    labels = (urlsplit(endpoint).hostname or "").split(".")
    if len(labels) >= 5 and labels[1] == "execute-api" and labels[3] == "amazonaws":
        return labels[2]
    return None


def payload_hash(payload: bytes) -> str:
    """Hex SHA-256 of a request body, as SigV4 signs it."""
    return hashlib.sha256(payload).hexdigest()


class Signer(Protocol):
    """Produces the headers that authenticate one POST to ``@connections``."""

    def headers(
        self,
        endpoint: Endpoint,
        url: str,
        canonical_path: str,
        body: bytes,
        body_hash: str,
        *,
        method: str = "POST",
    ) -> dict[str, str]:
        """Return the headers to send (``Host``, ``X-Amz-Date``, token, ``Authorization``)."""


class FastSigner:
    """SigV4 for ``@connections/{id}`` requests (POST, DELETE) with everything reusable cached.

    Signs ``host`` and ``x-amz-date`` (and ``x-amz-security-token`` with temporary
    credentials), exactly the headers botocore signs for such a request.

    Args:
        credentials: Frozen credentials; freeze them once per batch, not per request.
        region: The API's region.
        service: The signing name; ``execute-api`` for the management API.
        clock: Seconds since the epoch (injectable for tests).
    """

    def __init__(
        self,
        credentials: Credentials,
        region: str,
        *,
        service: str = SERVICE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not credentials.access_key or not credentials.secret_key:
            raise ValueError("credentials need an access key and a secret key to sign requests")
        self._access_key = credentials.access_key
        self._secret = credentials.secret_key.encode()
        self._token = credentials.token
        self._region = region
        self._service = service
        self._clock = clock
        self._signed = "host;x-amz-date;x-amz-security-token" if self._token else "host;x-amz-date"
        self._token_line = f"x-amz-security-token:{self._token}\n" if self._token else ""
        self._second = -1
        self._amz_date = ""
        self._day = ""
        self._key = b""
        self._scope = ""
        self._credential = ""

    def _tick(self) -> None:
        now = int(self._clock())
        if now == self._second:
            return
        self._second = now
        self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        day = self._amz_date[:8]
        if day != self._day:
            self._day = day
            key = hmac.new(b"AWS4" + self._secret, day.encode(), hashlib.sha256).digest()
            for part in (self._region, self._service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._key = key
            self._scope = f"{day}/{self._region}/{self._service}/aws4_request"
            self._credential = (
                f"{_ALGORITHM} Credential={self._access_key}/{self._scope}, "
                f"SignedHeaders={self._signed}, Signature="
            )

    def headers(
        self,
        endpoint: Endpoint,
        url: str,
        canonical_path: str,
        body: bytes,
        body_hash: str,
        *,
        method: str = "POST",
    ) -> dict[str, str]:
        """Return the signed headers for one request (see :class:`Signer`)."""
        self._tick()
        amz_date = self._amz_date
        canonical = (
            f"{method}\n{canonical_path}\n\nhost:{endpoint.host}\nx-amz-date:{amz_date}\n{self._token_line}\n"
            f"{self._signed}\n{body_hash}"
        )
        to_sign = f"{_ALGORITHM}\n{amz_date}\n{self._scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers = {
            "Host": endpoint.host,
            "X-Amz-Date": amz_date,
            "Authorization": self._credential + signature,
        }
        if self._token:
            headers["X-Amz-Security-Token"] = self._token
        return headers


class BotocoreSigner:
    """The reference path: an ``AWSRequest`` signed by ``SigV4Auth.add_auth`` per request."""

    def __init__(self, credentials: Credentials, region: str, *, service: str = SERVICE) -> None:
        from botocore.auth import SigV4Auth  # noqa: PLC0415 - botocore only on this slow path

        self._auth: Any = SigV4Auth(credentials, service, region)  # type: ignore[arg-type]

    def headers(
        self,
        endpoint: Endpoint,
        url: str,
        canonical_path: str,
        body: bytes,
        body_hash: str,
        *,
        method: str = "POST",
    ) -> dict[str, str]:
        """Return the signed headers for one request (see :class:`Signer`)."""
        from botocore.awsrequest import AWSRequest  # noqa: PLC0415 - botocore only on this slow path

        request = AWSRequest(method=method, url=url, data=body, headers={"Host": endpoint.host})
        self._auth.add_auth(request)
        return dict(request.headers.items())


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal plus collapsed slashes, as botocore canonicalises paths."""
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    return "/" + "/".join(out) + ("/" if path.endswith("/") and out else "")
