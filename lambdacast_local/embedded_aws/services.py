"""Embedded AWS: moto in server mode on 127.0.0.1, with the template's tables and queues created."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from lambdacast_local.embedded_aws import moto_transactions
from lambdacast_local.faults import Faults
from lambdacast_local.faults.dynamodb import FaultListener
from lambdacast_local.model import Table
from lambdacast_local.runtime_env import FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from lambdacast_local.sqs.model import Queue

_RUNNING = [0]
"""Embedded moto servers running in this process (they share moto's global state)."""
_RUNNING_LOCK = threading.Lock()


class EmbeddedAws:
    """A ``ThreadedMotoServer`` in this process; DynamoDB may live elsewhere (``--dynamodb-endpoint``).

    With ``faults``, handlers reach the embedded DynamoDB through a second listener that injects them
    (``handler_dynamodb_endpoint``); ``dynamodb_endpoint`` stays fault-free for the emulator and tests.
    """

    def __init__(
        self, dynamodb_endpoint: str | None = None, region: str = "us-east-1", faults: Faults | None = None
    ) -> None:
        self._region = region
        self._server: Any = None
        self._faults = faults
        self._fault_listener: FaultListener | None = None
        self.endpoint = ""
        self.dynamodb_endpoint = dynamodb_endpoint or ""
        self.handler_dynamodb_endpoint = self.dynamodb_endpoint

    def start(self) -> str:
        """Start moto on a free port and return its endpoint URL."""
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        moto_transactions.install()  # transactions cost the items they touch, not the table
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        with _RUNNING_LOCK:
            _RUNNING[0] += 1
        wsgi = self._server._server  # werkzeug's server: its app is looked up on every request
        wsgi.app = _serialize_dynamodb(wsgi.app)
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        if not self.dynamodb_endpoint and self._faults is not None:
            self._fault_listener = FaultListener(wsgi.app, self._faults)
            self.handler_dynamodb_endpoint = self._fault_listener.start()
        self.dynamodb_endpoint = self.dynamodb_endpoint or self.endpoint
        self.handler_dynamodb_endpoint = self.handler_dynamodb_endpoint or self.endpoint
        return self.endpoint

    def client(self, service: str, endpoint: str | None = None) -> Any:
        """A boto3 client for the embedded AWS (fake credentials)."""
        factory: Any = boto3.client  # typed per service name; ours is a variable
        return factory(
            service,
            endpoint_url=endpoint or self.endpoint,
            region_name=self._region,
            aws_access_key_id=FAKE_ACCESS_KEY,
            aws_secret_access_key=FAKE_SECRET_KEY,
        )

    def create_tables(self, tables: list[Table]) -> None:
        """Create each table (key schema, indexes, TTL); an existing table is left as it is."""
        client = self.client("dynamodb", self.dynamodb_endpoint)
        existing = set(client.list_tables().get("TableNames", []))
        for table in tables:
            args = dict(table.create_args)
            ttl_attribute = args.pop("_ttl_attribute", None)
            if args["TableName"] in existing:
                continue
            client.create_table(**args)
            if ttl_attribute:
                client.update_time_to_live(
                    TableName=args["TableName"],
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
                )

    def create_queues(self, queues: list[Queue]) -> None:
        """Create each queue, then apply redrive policies (a DLQ may be declared after its source)."""
        client = self.client("sqs")
        for queue in queues:
            client.create_queue(QueueName=queue.name, Attributes=queue.attributes)
        for queue in queues:
            if queue.redrive_policy is not None:
                url = client.get_queue_url(QueueName=queue.name)["QueueUrl"]
                client.set_queue_attributes(
                    QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(queue.redrive_policy)}
                )

    def seed(self, ssm: dict[str, str], secrets: dict[str, str]) -> None:
        """Create SSM SecureString parameters and Secrets Manager secrets the handlers read at run time."""
        if ssm:
            client = self.client("ssm")
            for name, value in ssm.items():
                client.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
        if secrets:
            client = self.client("secretsmanager")
            for name, value in secrets.items():
                client.create_secret(Name=name, SecretString=value)

    def stop(self) -> None:
        """Stop the embedded server; the last one running in this process also empties moto's state.

        moto keeps its backends in process-wide globals shared by every embedded server, so without the
        reset one emulator's tables (a 10,000-row fan-out test) would live on in the next one started in the
        same process, where every ``TransactWriteItems`` deep-copies the whole table.
        """
        if self._fault_listener is not None:
            self._fault_listener.stop()
            self._fault_listener = None
        if self._server is None:
            return
        with _RUNNING_LOCK:
            _RUNNING[0] -= 1
            last = _RUNNING[0] == 0
        if last:
            reset = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
            with contextlib.suppress(OSError), urllib.request.urlopen(reset, timeout=30):
                pass
        self._server.stop()
        self._server = None


def _serialize_dynamodb(app: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
    """Run moto's DynamoDB requests one at a time (other services stay concurrent: SQS long-polls).

    moto's DynamoDB backend is not thread-safe: a ``TransactWriteItems`` deep-copies tables while another
    request thread writes them ("dictionary changed size during iteration"), which surfaces as a 500
    that real DynamoDB never returns.
    """
    lock = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            with lock:
                return list(app(environ, start_response))
        return list(app(environ, start_response))

    return serialized
