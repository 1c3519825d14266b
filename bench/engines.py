"""The fan-out engines under test, each posting one payload to every id in a list.

Every engine is built once (clients, pools and sessions outside the timed region, as in a warm
Lambda container) and then called per run; it returns how many posts were delivered.

* ``boto3 sequential`` - one ``post_to_connection`` after another: AWS's Python sample, Chalice.
* ``boto3 threads`` - one client shared by a ``ThreadPoolExecutor`` of ``concurrency`` workers,
  ``max_pool_connections`` sized to match (botocore's default pool of 10 would cap it silently),
  botocore retries off (the core retries itself).
* ``fastpost`` - :func:`lambdacast.delivery.transport.post_many`.
* ``fastpost + AWSRequest signing`` - the same engine signing each request through botocore's
  ``SigV4Auth.add_auth``, to show what the cached signer saves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.credentials import Credentials

REGION = "us-east-1"
CREDENTIALS = Credentials("AKIDBENCHMARK", "bench-secret-key")
PAYLOAD = b'{"type":"message","channel":"lobby","seq":1,"data":{"text":"hello, world"},"ts":1764000000000}'

Post = Callable[[Sequence[str]], int]


@dataclass
class Engine:
    """A named engine: ``post(ids) -> delivered``; ``close()`` releases its resources."""

    name: str
    post: Post
    close: Callable[[], None]
    max_recipients: int | None = None


def _boto3_client(endpoint: str, pool: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS.access_key,
        aws_secret_access_key=CREDENTIALS.secret_key,
        config=Config(max_pool_connections=pool, retries={"max_attempts": 0, "mode": "standard"}),
    )


def boto3_sequential(endpoint: str, max_recipients: int) -> Engine:
    client = _boto3_client(endpoint, 1)

    def post(ids: Sequence[str]) -> int:
        for connection_id in ids:
            client.post_to_connection(ConnectionId=connection_id, Data=PAYLOAD)
        return len(ids)

    return Engine("boto3 sequential", post, client.close, max_recipients)


def boto3_threads(endpoint: str, concurrency: int) -> Engine:
    client = _boto3_client(endpoint, concurrency)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench-boto3")

    def one(connection_id: str) -> None:
        client.post_to_connection(ConnectionId=connection_id, Data=PAYLOAD)

    def post(ids: Sequence[str]) -> int:
        return sum(1 for _ in pool.map(one, ids))

    def close() -> None:
        pool.shutdown()
        client.close()

    return Engine(f"boto3 threads ({concurrency})", post, close)


def fastpost(endpoint: str, concurrency: int, *, botocore_signing: bool = False) -> Engine:
    from lambdacast.delivery import transport as fp
    from lambdacast.delivery.sigv4 import BotocoreSigner

    signer = BotocoreSigner(CREDENTIALS.get_frozen_credentials(), REGION) if botocore_signing else None

    def post(ids: Sequence[str]) -> int:
        outcome = fp.post_many(
            endpoint,
            [(connection_id, PAYLOAD) for connection_id in ids],
            concurrency=concurrency,
            region=REGION,
            credentials=CREDENTIALS,
            signer=signer,
        )
        if outcome.failed or outcome.gone:
            raise RuntimeError(
                f"fastpost lost posts in a benchmark: {dict(list(outcome.failed.items())[:3])}"
            )
        return len(outcome.delivered)

    name = f"fastpost ({concurrency})" + (" + AWSRequest signing" if botocore_signing else "")
    return Engine(name, post, fp.close)


def core_fast(endpoint: str, concurrency: int) -> Engine:
    """The core's one fan-out engine (``DirectBroadcaster``), as the handlers run it."""
    from lambdacast.delivery.broadcaster import DirectBroadcaster

    fanout = DirectBroadcaster(
        endpoint, concurrency=concurrency, on_gone=_no_gone, region=REGION, credentials=CREDENTIALS
    )

    def post(ids: Sequence[str]) -> int:
        return _checked(fanout.broadcast([ids], PAYLOAD))

    return Engine(f"core DirectBroadcaster ({concurrency})", post, fanout.close)


def _no_gone(connection_id: str) -> None:
    raise RuntimeError(f"the benchmark server never answers 410, yet {connection_id} was gone")


def _checked(result: Any) -> int:
    if result.failed or result.gone:
        raise RuntimeError(f"posts lost in a benchmark: {result.failed[:3]} {result.gone[:3]}")
    return int(result.delivered)
