"""The last hop to the ``@connections`` API: one HTTP request and its answer.

An :data:`Exchange` sends one signed request and returns the :class:`Reply`. The deployed one,
:class:`AiohttpExchange`, goes through one pooled aiohttp session (:func:`open_session`); tests
pass an in-memory one, so the engine they run is the one deployed.

``AWS_CA_BUNDLE`` is honoured as botocore honours it: ``lambdacast local`` hands its workers a
throwaway CA for its ``https://`` management listener.

``aiohttp`` is imported on the first request, not at module load.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AiohttpExchange", "Exchange", "Reply", "exchange_of", "open_session"]


@dataclass(frozen=True, slots=True)
class Reply:
    """The management API's answer to one request."""

    status: int
    error_type: str = ""
    body: bytes = b""


class Exchange(Protocol):
    """Sends one signed request and returns the answer.

    Raises ``aiohttp.ClientError``, ``TimeoutError`` or ``OSError`` when no answer came (a
    connection error: retried like a 5xx).
    """

    def __call__(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float | None
    ) -> Awaitable[Reply]:
        """Send ``method url`` with ``headers`` and ``body``; ``timeout`` in seconds, ``None``: default."""
        ...


def exchange_of(session: aiohttp.ClientSession | None, exchange: Exchange | None) -> Exchange:
    """``exchange`` if given, else the aiohttp one over ``session``; neither is a ``ValueError``."""
    if exchange is not None:
        return exchange
    if session is None:
        raise ValueError("pass an aiohttp session or an exchange to send through")
    return AiohttpExchange(session)


class AiohttpExchange:
    """The deployed :class:`Exchange`: one request through a pooled aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        import aiohttp  # noqa: PLC0415 - lazy: keeps handler cold start small
        from yarl import URL  # noqa: PLC0415 - ships with aiohttp

        self._session = session
        self._url = URL
        self._timeout = aiohttp.ClientTimeout

    async def __call__(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float | None
    ) -> Reply:
        """Send one request through the pooled session; see :class:`Exchange`."""
        total = self._session.timeout.total
        limit = self._timeout(total=min(timeout, total or timeout)) if timeout is not None else None
        async with self._session.request(
            method,
            self._url(url, encoded=True),
            data=body if method != "DELETE" else None,
            headers=headers,
            timeout=limit or self._session.timeout,
        ) as resp:
            return Reply(resp.status, resp.headers.get("x-amzn-ErrorType", ""), await resp.read())


async def open_session(concurrency: int, timeout: float, ca_bundle: str = "") -> aiohttp.ClientSession:
    """A pooled session; ``ca_bundle`` (``AWS_CA_BUNDLE``, as botocore honours it) adds trusted CAs."""
    import ssl  # noqa: PLC0415 - lazy, like aiohttp itself

    import aiohttp  # noqa: PLC0415 - lazy: keeps handler cold start small

    tls: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
    connector = aiohttp.TCPConnector(
        limit=concurrency, limit_per_host=concurrency, ttl_dns_cache=300, ssl=tls
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout),
        skip_auto_headers=("User-Agent",),
        auto_decompress=False,
    )
