"""The handlers' TLS listener: raw HTTP/1.1 against its lean @connections server, and what it hands on.

Raw sockets (TLS verified with the emulator's CA) so that each test controls the bytes: keep-alive,
pipelining, Expect: 100-continue, chunked bodies, oversized bodies, and the first request of a
connection that is not a @connections call.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from websockets.sync.client import ClientConnection, connect

from lambdacast_local.management.listener import MAX_BODY_BYTES
from lambdacast_local.testing import RunningEmulator

APP = Path(__file__).parent / "apps" / "echo" / "template.yaml"


@pytest.fixture(scope="module")
def lambdacast_template() -> Path:
    return APP


def whoami(ws: ClientConnection) -> str:
    ws.send("whoami")
    connection_id = ws.recv(timeout=15)
    assert isinstance(connection_id, str)
    return connection_id


@contextmanager
def tls_socket(emulator: RunningEmulator) -> Iterator[ssl.SSLSocket]:
    context = ssl.create_default_context(cafile=str(emulator.ca_bundle))
    url = urlsplit(emulator.tls_management_url)
    raw = socket.create_connection((url.hostname, url.port), timeout=15)
    with context.wrap_socket(raw, server_hostname=url.hostname) as sock:
        yield sock


class Responses:
    """Reads HTTP/1.1 responses (each with a Content-Length, as the listener sends them) off one socket."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.buffered = b""

    def next(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffered:
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed after {self.buffered!r}"
            self.buffered += chunk
        head, _, rest = self.buffered.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.buffered = rest[length:]
        return int(status_line.split()[1]), headers, rest[:length]


def read_response(sock: ssl.SSLSocket) -> tuple[int, dict[str, str], bytes]:
    return Responses(sock).next()


def post_bytes(stage: str, connection_id: str, body: bytes, extra: str = "") -> bytes:
    target = f"/{stage}/@connections/{quote(connection_id, safe='')}"
    head = f"POST {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def test_posts_on_one_keep_alive_connection_are_each_answered_and_delivered(lambdacast):
    # GIVEN a connected client and one TLS connection to the listener
    with connect(lambdacast.ws_url) as ws, tls_socket(lambdacast) as sock:
        connection_id = whoami(ws)
        # WHEN three posts go over that connection one after the other
        answers = []
        for n in range(3):
            sock.sendall(post_bytes(lambdacast.emulator.stage, connection_id, f"keep-{n}".encode()))
            answers.append(read_response(sock)[0])
        # THEN each is answered 200 and the client gets the three frames in order
        assert answers == [200, 200, 200]
        assert [ws.recv(timeout=15) for _ in range(3)] == ["keep-0", "keep-1", "keep-2"]


def test_pipelined_requests_are_answered_in_order(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url) as ws, tls_socket(lambdacast) as sock:
        connection_id = whoami(ws)
        stage = lambdacast.emulator.stage
        # WHEN a post, a post to an unknown id and a get are written at once, without waiting
        get = f"GET /{stage}/@connections/{quote(connection_id, safe='')} HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(
            post_bytes(stage, connection_id, b"first")
            + post_bytes(stage, "AAAAAAAAAAAAAAA=", b"nobody")
            + get.encode()
        )
        responses = Responses(sock)
        statuses = [responses.next()[0] for _ in range(3)]
        # THEN the answers come in the order of the requests: 200, 410 Gone, 200
        assert statuses == [200, 410, 200]
        assert ws.recv(timeout=15) == "first"


def test_expect_continue_and_a_chunked_body_are_honoured(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url) as ws, tls_socket(lambdacast) as sock:
        connection_id = whoami(ws)
        target = f"/{lambdacast.emulator.stage}/@connections/{quote(connection_id, safe='')}"
        # WHEN a post asks for 100-continue and sends its body in two chunks once told to go on
        sock.sendall(
            f"POST {target} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        interim = sock.recv(65536)
        sock.sendall(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        status, _, _ = read_response(sock)
        # THEN the listener said 100 Continue first, answered 200, and the frame is the whole body
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        assert status == 200
        assert ws.recv(timeout=15) == "hello world"


def test_a_body_over_the_buffer_limit_is_refused_with_413_and_the_connection_closed(lambdacast):
    # GIVEN a connected client
    with connect(lambdacast.ws_url) as ws, tls_socket(lambdacast) as sock:
        connection_id = whoami(ws)
        # WHEN a post declares and sends more than the listener buffers
        body = b"x" * (MAX_BODY_BYTES + 1)
        with contextlib.suppress(OSError):  # the listener may close before the last bytes are written
            sock.sendall(post_bytes(lambdacast.emulator.stage, connection_id, body))
        status, headers, payload = read_response(sock)
        # THEN it is refused with API Gateway's 413, the connection closes, and nothing was delivered
        assert status == 413
        assert headers.get("x-amzn-errortype") == "PayloadTooLargeException"
        assert json.loads(payload)["message"] == "Request entity too large"
        assert headers.get("connection", "").lower() == "close"
        ws.send("whoami")
        assert ws.recv(timeout=15) == connection_id  # the next frame is the echo: no post got through


def test_a_connection_that_starts_with_something_else_is_served_by_aiohttp(lambdacast):
    # GIVEN the listener (it also serves what the WebSocket port serves)
    with tls_socket(lambdacast) as sock:
        # WHEN a connection's first request is not a @connections call
        sock.sendall(b"GET /_lambdacast/connections HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    # THEN aiohttp answers it as on the WebSocket port
    assert head.startswith(b"HTTP/1.1 200")
    assert set(json.loads(body)["calls"]) == {"post", "get", "delete"}


def test_a_websocket_handshake_on_the_listener_reaches_the_api(lambdacast):
    # GIVEN the listener's wss:// URL and the emulator's CA
    url = urlsplit(lambdacast.tls_management_url)
    context = ssl.create_default_context(cafile=str(lambdacast.ca_bundle))
    # WHEN a WebSocket client connects there and sends a frame
    with connect(f"wss://{url.hostname}:{url.port}{url.path}", ssl=context) as ws:
        ws.send("over the listener")
        # THEN the echo app answers, as on the WebSocket port
        assert ws.recv(timeout=15) == "over the listener"


def test_another_path_after_a_connections_call_is_forbidden(lambdacast):
    # GIVEN a TLS connection that began with a @connections call
    with connect(lambdacast.ws_url) as ws, tls_socket(lambdacast) as sock:
        connection_id = whoami(ws)
        sock.sendall(post_bytes(lambdacast.emulator.stage, connection_id, b"first"))
        assert read_response(sock)[0] == 200
        # WHEN the next request on it is for another path
        sock.sendall(b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(sock)
        # THEN it is answered 403 Forbidden, as execute-api answers an unknown path
        assert status == 403
        assert json.loads(body) == {"message": "Forbidden"}
        assert ws.recv(timeout=15) == "first"
