"""Where the echo handler's CPU goes: one boto3 ``post_to_connection``, profiled phase by phase.

The echo app's workers spend about a millisecond of CPU per message, and nearly all of it is the
handler's own boto3 call, the same code under any emulator. This measures that call alone, in a fresh
interpreter as a Lambda worker runs it (boto3 without ``awscrt``: Lambda's runtime has none, and the
emulator's workers link boto3 and its pure-Python dependencies only), posting over TLS with keep-alive
to a bare HTTP server in another process (so only the caller's CPU is counted):

* ``cpu_ms_per_call``: the calling thread's CPU per call, unprofiled, after a warm-up;
* ``phases``: cProfile's time per function grouped into the parts of the call
  (:mod:`bench.profile_parts`), scaled to the unprofiled figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.profile_parts import Parts, group, rows

_SERVER = r"""
import ssl, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

_CALLER = r"""
import cProfile, json, pstats, sys, time
sys.modules["awscrt"] = None  # as in Lambda's Python runtime: botocore signs in pure Python
import boto3, botocore

port, ca, calls = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
client = boto3.client("apigatewaymanagementapi", endpoint_url=f"https://localhost:{port}/bench", verify=ca)

def post(count):
    for _ in range(count):
        client.post_to_connection(ConnectionId="BFHPhfCWIAMCKlQ=", Data=b"m0-0")

post(300)
started = time.thread_time()
post(calls)
cpu = (time.thread_time() - started) * 1000 / calls
profile = cProfile.Profile(time.thread_time)
profile.enable()
post(calls)
profile.disable()
own = [  # stats: calls, primitive calls, own time, cumulative time, {caller: (..., own time, ...)}
    [f"{filename}:{line}:{name}", stats[2], [[f"{c[0]}:{c[1]}:{c[2]}", v[2]] for c, v in stats[4].items()]]
    for (filename, line, name), stats in pstats.Stats(profile).stats.items()
]
found = {"python": sys.version.split()[0], "botocore": botocore.__version__, "cpu": cpu, "own": own}
print(json.dumps(found))
"""

_HTTP = (
    "urllib3/", "http/client.py", "/ssl.py", "/socket.py", "email/", "botocore/httpsession.py",
    "botocore/awsrequest.py", "_ssl.", "_socket.", "selectors.py",
)  # fmt: skip
# Where each function belongs, first match wins: (label, path fragments or builtin-name fragments).
PARTS: Parts = (
    ("User-Agent header, rebuilt each call", ("botocore/useragent.py",)),
    ("SigV4 signing", ("botocore/auth.py", "botocore/signers.py", "hashlib", "_hashlib", "hmac.py")),
    ("event hooks (dispatch)", ("botocore/hooks.py",)),
    ("parameters: validation, serialization", ("botocore/validate.py", "botocore/serialize.py")),
    ("response parsing", ("botocore/parsers.py",)),
    ("endpoint rules", ("botocore/endpoint_provider.py", "botocore/regions.py")),
    ("retries", ("botocore/retries/", "botocore/retryhandler.py")),
    ("HTTP and TLS (urllib3, http.client, ssl)", _HTTP),
    ("the rest of botocore (client, endpoint, context)", ("botocore/",)),
)


@dataclass
class HandlerProfile:
    """The handler's boto3 call: CPU per call and where it goes."""

    python: str = ""
    botocore: str = ""
    cpu_ms_per_call: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    """Phase -> ms of CPU per call (scaled to ``cpu_ms_per_call``), largest first."""
    skipped: str = ""


def run(calls: int = 3000) -> HandlerProfile:
    """Profile ``calls`` posts (and as many unprofiled); a skipped result says why."""
    try:
        import trustme
    except ImportError:
        return HandlerProfile(skipped="trustme is not installed (it makes the server's certificate)")
    authority = trustme.CA()
    issued = authority.issue_cert("localhost")
    with tempfile.TemporaryDirectory(prefix="lambdacast-bench-profile-") as where:
        folder = Path(where)
        cert, key, ca = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
        issued.cert_chain_pems[0].write_to_path(str(cert))
        issued.private_key_pem.write_to_path(str(key))
        authority.cert_pem.write_to_path(str(ca))
        server = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(cert), str(key)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            port = server.stdout.readline().strip()
            environment = {
                **os.environ, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
            }  # fmt: skip
            caller = subprocess.run(
                [sys.executable, "-c", _CALLER, port, str(ca), str(calls)],
                capture_output=True, text=True, env=environment, check=False, timeout=600,
            )  # fmt: skip
        finally:
            server.kill()
            server.wait(10)
    if caller.returncode != 0:
        return HandlerProfile(skipped=f"the profiled caller failed: {caller.stderr.strip()[-300:]}")
    found = json.loads(caller.stdout)
    return HandlerProfile(
        python=found["python"],
        botocore=found["botocore"],
        cpu_ms_per_call=found["cpu"],
        phases=group(rows(found["own"]), found["cpu"], PARTS),
    )


if __name__ == "__main__":
    result = run()
    heading = f"Python {result.python}, botocore {result.botocore}: {result.cpu_ms_per_call:.3f} ms"
    print(result.skipped or heading)
    for label, cost in result.phases.items():
        print(f"  {cost:.3f} ms  {label}")
