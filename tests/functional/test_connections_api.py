"""The @connections management API (POST / GET / DELETE) through lambdacast local."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

APP = Path(__file__).parent / "apps" / "echo" / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP


def management(endpoint: str, **kwargs: Any) -> Any:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        **kwargs,
    )


def whoami(ws: ClientConnection) -> str:
    ws.send("whoami")
    connection_id = ws.recv(timeout=15)
    assert isinstance(connection_id, str)
    return connection_id


def raw_request(url: str, method: str, data: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def test_post_with_stage_prefix_delivers_a_text_frame(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url) as ws:
        connection_id = whoami(ws)
        # WHEN a backend posts to /{stage}/@connections/{id} with boto3
        management(lambdacast.management_url).post_to_connection(ConnectionId=connection_id, Data=b"pushed")
        # THEN the client receives it
        assert ws.recv(timeout=15) == "pushed"


def test_post_without_stage_prefix_delivers(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url) as ws:
        connection_id = whoami(ws)
        # WHEN a POST goes to /@connections/{id} (no stage)
        base = lambdacast.management_url.rsplit("/", 1)[0]
        status, _, _ = raw_request(f"{base}/@connections/{connection_id}", "POST", b"no stage")
        # THEN it is accepted and delivered
        assert status == 200
        assert ws.recv(timeout=15) == "no stage"


def test_post_of_non_utf8_bytes_delivers_a_binary_frame(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url) as ws:
        connection_id = whoami(ws)
        # WHEN the posted data is not UTF-8
        management(lambdacast.management_url).post_to_connection(ConnectionId=connection_id, Data=b"\xff\x00")
        # THEN it arrives as a binary frame
        assert ws.recv(timeout=15) == b"\xff\x00"


def test_post_over_tls_with_the_local_ca(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url) as ws:
        connection_id = whoami(ws)
        # WHEN a client posts to the https:// listener, verifying with the emulator's CA
        client = management(lambdacast.tls_management_url, verify=str(lambdacast.ca_bundle))
        client.post_to_connection(ConnectionId=connection_id, Data=b"over tls")
        # THEN it is delivered
        assert ws.recv(timeout=15) == "over tls"


def test_post_to_unknown_id_is_410_gone(lambdacast):
    # WHEN a backend posts to an id that never existed
    with pytest.raises(ClientError) as error:
        management(lambdacast.management_url).post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x")
    # THEN boto3 sees GoneException (410)
    assert error.value.response["Error"]["Code"] == "GoneException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410


def test_post_to_closed_connection_is_410_gone(lambdacast):
    # GIVEN a connection that has closed
    with connect(lambdacast.ws_url) as ws:
        connection_id = whoami(ws)
    assert lambdacast.wait_for(lambda e: connection_id not in e.emulator.gateway.connections)
    # WHEN a backend posts to it
    with pytest.raises(ClientError) as error:
        management(lambdacast.management_url).post_to_connection(ConnectionId=connection_id, Data=b"x")
    # THEN GoneException
    assert error.value.response["Error"]["Code"] == "GoneException"


def test_post_before_connect_finished_is_410_gone(lambdacast, tmp_path):
    # GIVEN a handshake whose $connect blocks until the test creates a file
    release = tmp_path / "release-connect"
    opened = threading.Event()

    def slow_client() -> None:
        with connect(f"{lambdacast.ws_url}?wait_for={release}", open_timeout=40):
            opened.set()

    thread = threading.Thread(target=slow_client)
    thread.start()
    gateway = lambdacast.emulator.gateway
    assert lambdacast.wait_for(lambda e: any(not live.open for live in gateway.connections.values()))
    pending = next(cid for cid, live in list(gateway.connections.items()) if not live.open)
    # WHEN a backend posts to it
    with pytest.raises(ClientError) as error:
        management(lambdacast.management_url).post_to_connection(ConnectionId=pending, Data=b"x")
    assert not opened.is_set()  # the post really happened while $connect was still running
    release.touch()
    thread.join(40)
    # THEN GoneException, and the handshake itself still completed once $connect returned
    assert error.value.response["Error"]["Code"] == "GoneException"
    assert opened.is_set()


def test_post_over_128_kib_is_413(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url) as ws:
        connection_id = whoami(ws)
        # WHEN the post is bigger than 128 KiB
        with pytest.raises(ClientError) as error:
            management(lambdacast.management_url).post_to_connection(
                ConnectionId=connection_id, Data=b"x" * (128 * 1024 + 1)
            )
    # THEN PayloadTooLargeException (413)
    assert error.value.response["Error"]["Code"] == "PayloadTooLargeException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_get_connection_returns_connected_at_identity_and_last_active_at(lambdacast):
    # GIVEN a client with a known user agent
    with connect(lambdacast.ws_url, user_agent_header="get-test/2") as ws:
        connection_id = whoami(ws)
        # WHEN a backend reads the connection
        info = management(lambdacast.management_url).get_connection(ConnectionId=connection_id)
    # THEN it has ConnectedAt, Identity and LastActiveAt
    assert isinstance(info["ConnectedAt"], datetime)
    assert info["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "get-test/2"}
    assert info["LastActiveAt"] >= info["ConnectedAt"]


def test_last_active_at_is_updated_by_each_message(lambdacast):
    # GIVEN a connection and its LastActiveAt
    client = management(lambdacast.management_url)
    with connect(lambdacast.ws_url) as ws:
        connection_id = whoami(ws)
        before = client.get_connection(ConnectionId=connection_id)["LastActiveAt"]
        time.sleep(0.05)  # let the millisecond clock move; not an assertion on timing
        # WHEN the client sends another message
        assert whoami(ws) == connection_id
        after = client.get_connection(ConnectionId=connection_id)["LastActiveAt"]
    # THEN LastActiveAt moved forward
    assert after > before


def test_delete_closes_the_socket_and_fires_disconnect(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url) as ws:
        connection_id = whoami(ws)
        # WHEN a backend deletes the connection
        management(lambdacast.management_url).delete_connection(ConnectionId=connection_id)
        # THEN the socket closes
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=15)
    # AND $disconnect fires for it
    assert lambdacast.wait_for(lambda e: connection_id in _disconnected_ids(e))


def test_delete_is_reported_to_disconnect_as_aws_logs_it(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url) as ws:
        connection_id = whoami(ws)
        # WHEN a backend deletes the connection
        management(lambdacast.management_url).delete_connection(ConnectionId=connection_id)
        # THEN the client sees a normal close
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=15)
        assert ws.close_code == 1000
    # AND $disconnect says 1000 "Connection Closed Normally", the wording API Gateway's execution logs show
    # for a DeleteConnection (captures in aws/chalice#2060 and boto/boto3#3789; AWS's docs name no reason)
    assert lambdacast.wait_for(lambda e: connection_id in _disconnected_ids(e))
    context = next(
        json.loads(inv.result["body"])
        for inv in lambdacast.invocations_of("$disconnect")
        if inv.connection_id == connection_id
    )
    reported = (context["disconnectStatusCode"], context["disconnectReason"])
    assert reported == (1000, "Connection Closed Normally")


def test_get_and_delete_of_unknown_id_are_410(lambdacast):
    # WHEN GET and DELETE target an unknown id
    client = management(lambdacast.management_url)
    for call in (client.get_connection, client.delete_connection):
        with pytest.raises(ClientError) as error:
            call(ConnectionId="AAAAAAAAAAAAAAA=")
        # THEN both answer GoneException
        assert error.value.response["Error"]["Code"] == "GoneException"


def _disconnected_ids(emulator: Any) -> set[str]:
    ids: set[str] = set()
    for invocation in emulator.invocations_of("$disconnect"):
        ids.add(invocation.connection_id)
    return ids


def test_client_leaving_during_connect_still_gets_disconnect(lambdacast):
    # GIVEN a raw handshake whose $connect sleeps 1 s
    before = {inv.connection_id for inv in lambdacast.invocations_of("$connect")}
    host, port = lambdacast.ws_url.split("//")[1].split("/")[0].split(":")
    sock = socket.create_connection((host, int(port)), timeout=15)
    sock.sendall(
        b"GET /test?sleep=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    # WHEN the client drops the TCP connection before $connect answers
    sock.close()
    assert lambdacast.wait_for(
        lambda e: len({i.connection_id for i in e.invocations_of("$connect")} - before) == 1
    )
    (connection_id,) = {inv.connection_id for inv in lambdacast.invocations_of("$connect")} - before
    # THEN $disconnect still fires for the connection $connect accepted
    assert lambdacast.wait_for(lambda e: connection_id in _disconnected_ids(e))
