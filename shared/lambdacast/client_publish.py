"""Caller-side helper: publish to a lambdacast channel from a backend, signed with SigV4.

For a site's own backend (a form handler, a webhook, a cron job) holding AWS credentials that
are allowed ``execute-api:Invoke`` on the publish route. It depends on botocore and the
standard library only, and does not import anything else from :mod:`lambdacast`, so it can be
used from the installed package or copied as one file::

    from lambdacast.client_publish import publish

    result = publish("https://abc123.execute-api.eu-west-1.amazonaws.com", "news", {"text": "hi"})
    print(result.seq, result.delivered)

The URL is the stack's ``PublishURL`` output. Credentials come from botocore's usual chain
(environment, profile, instance/task role) unless given; the region from the URL's host.

It lives in the ``lambdacast`` package (not a separate distribution) so it is installed with
everything else and tested with the backend; it is a few dozen lines in the Lambda layer that no
function imports.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Final

SERVICE: Final = "execute-api"
_CHANNEL: Final = re.compile(r"[A-Za-z0-9_\-=@,.;:]{1,128}")
_REGION_IN_HOST: Final = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What the endpoint answered: the message's ``seq`` and the connections it reached."""

    channel: str
    seq: int
    delivered: int


class PublishError(Exception):
    """The endpoint refused the publish.

    Attributes:
        status: The HTTP status (403 for a bad or missing signature, 400/413 for a bad request).
        code: The lambdacast error code when the function answered, else ``None``.
        message: The explanation.
    """

    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(f"{status} {code or ''}: {message}".replace("  ", " "))
        self.status = status
        self.code = code
        self.message = message


def region_of(url: str) -> str | None:
    """The AWS region in an ``execute-api`` URL's host, if it has one (a custom domain has not)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    match = _REGION_IN_HOST.search(host)
    return match.group(1) if match else None


def signed_request(
    url: str, channel: str, data: Any, *, region: str, credentials: Any
) -> urllib.request.Request:
    """Build the signed ``POST {url}/channels/{channel}/messages`` request.

    Args:
        url: The publish API's base URL (``PublishURL``).
        channel: The channel (the protocol's naming rules; checked here, so a typo fails early).
        data: Any JSON value.
        region: The API's region.
        credentials: botocore credentials (``get_frozen_credentials()`` is called).

    Raises:
        ValueError: The channel name breaks the rules.
    """
    from botocore.auth import SigV4Auth  # noqa: PLC0415 - keep importing this module cheap
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415

    if _CHANNEL.fullmatch(channel) is None:
        raise ValueError("channel names are 1 to 128 characters from A-Z a-z 0-9 _ - = @ , . ; :")
    body = json.dumps({"data": data}, separators=(",", ":"), allow_nan=False).encode("utf-8")
    request = AWSRequest(
        method="POST",
        url=f"{url.rstrip('/')}/channels/{channel}/messages",
        data=body,
        headers={"content-type": "application/json"},
    )
    frozen = credentials.get_frozen_credentials()
    SigV4Auth(frozen, SERVICE, region).add_auth(request)
    prepared = request.prepare()
    return urllib.request.Request(
        prepared.url, data=body, headers=dict(prepared.headers.items()), method="POST"
    )


def publish(
    url: str,
    channel: str,
    data: Any,
    *,
    region: str | None = None,
    credentials: Any = None,
    timeout: float = 10.0,
) -> PublishResult:
    """Publish ``data`` to ``channel`` through the IAM-authorized HTTP API.

    Args:
        url: The publish API's base URL (the stack's ``PublishURL`` output).
        channel: The channel.
        data: Any JSON value.
        region: The API's region; read from the URL when omitted (required for custom domains).
        credentials: botocore credentials; the default chain when omitted.
        timeout: Seconds to wait for the answer.

    Returns:
        The ``seq`` and delivery count.

    Raises:
        PublishError: The endpoint answered with an error status.
        ValueError: Bad channel, no region, or no credentials found.
    """
    region = region or region_of(url)
    if region is None:
        raise ValueError("the region cannot be read from this URL (custom domain?); pass region=")
    if credentials is None:
        import botocore.session  # noqa: PLC0415

        credentials = botocore.session.get_session().get_credentials()
        if credentials is None:
            raise ValueError("no AWS credentials found (environment, profile or role)")
    request = signed_request(url, channel, data, region=region, credentials=credentials)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            answer = json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        raise _error(exc.code, exc.read()) from None
    return PublishResult(
        channel=answer["channel"], seq=int(answer["seq"]), delivered=int(answer["delivered"])
    )


def _error(status: int, raw: bytes) -> PublishError:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and "code" in body:
        return PublishError(status, str(body["code"]), str(body.get("message", "")))
    # API Gateway's own refusals (a bad signature: 403 {"message": "..."}).
    message = body.get("message") if isinstance(body, dict) else None
    return PublishError(status, None, str(message or raw[:200].decode("utf-8", "replace")))
