"""Which ``@connections`` endpoint to post to, and which ones this stack may post to at all.

* The endpoint comes from ``MANAGEMENT_ENDPOINT`` (set by the template, so custom domains work),
  falling back to ``https://{domainName}/{stage}`` from the event.
* A queued fan-out batch names its endpoint in the message body; ``FanoutFunction`` posts only to
  its own stack's endpoint (:func:`is_own_endpoint`): a message that names another one is dropped,
  so whoever can write to the queue cannot make the function sign requests for someone else's API,
  or send them in clear text.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def resolve_endpoint(configured: str | None, *, domain_name: str, stage: str) -> str:
    """Return the management endpoint: the configured one, else ``https://{domainName}/{stage}``.

    Args:
        configured: ``MANAGEMENT_ENDPOINT``, if set.
        domain_name: ``requestContext.domainName`` of the event.
        stage: ``requestContext.stage`` of the event.
    """
    if configured:
        return configured.rstrip("/")
    return f"https://{domain_name}/{stage}"


def is_own_endpoint(endpoint: str, configured: str | None) -> bool:
    """Whether a queued batch's ``endpoint`` is this stack's own management endpoint.

    Without a configured endpoint (``MANAGEMENT_ENDPOINT`` unset) nothing can be checked, so only
    ``https`` endpoints on an ``execute-api`` host pass. With one, the batch must name it exactly
    (scheme, host, port and stage path; a trailing slash is ignored).

    Args:
        endpoint: The endpoint a batch names.
        configured: ``MANAGEMENT_ENDPOINT``, if set.
    """
    if configured:
        return _normal(endpoint) == _normal(configured)
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").split(".")
    return parts.scheme == "https" and len(host) >= 5 and host[1] == "execute-api" and not parts.query


def _normal(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    return parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path.rstrip("/")
