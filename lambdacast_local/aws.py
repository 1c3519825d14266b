"""Embedded AWS: moto in server mode on 127.0.0.1, with the template's DynamoDB tables created."""

from __future__ import annotations

import logging
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from lambdacast_local.model import Table
from lambdacast_local.runtime_env import FAKE_ACCESS_KEY, FAKE_SECRET_KEY


class EmbeddedAws:
    """A ``ThreadedMotoServer`` in this process (or an external endpoint given by ``--dynamodb-endpoint``)."""

    def __init__(self, dynamodb_endpoint: str | None = None, region: str = "us-east-1") -> None:
        self._external = dynamodb_endpoint
        self._region = region
        self._server: Any = None
        self.endpoint = dynamodb_endpoint or ""

    def start(self) -> str:
        """Start moto (unless an external endpoint was given) and return the endpoint URL."""
        if self._external is None:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self._server.start()
            host, port = self._server.get_host_and_port()
            self.endpoint = f"http://{host}:{port}"
        return self.endpoint

    def create_tables(self, tables: list[Table]) -> None:
        """Create each table (key schema, indexes, TTL); an existing table is left as it is."""
        client = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name=self._region,
            aws_access_key_id=FAKE_ACCESS_KEY,
            aws_secret_access_key=FAKE_SECRET_KEY,
        )
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

    def stop(self) -> None:
        """Stop the embedded server (no-op for an external endpoint)."""
        if self._server is not None:
            self._server.stop()
            self._server = None
