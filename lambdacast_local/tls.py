"""A throwaway CA and certificate so handlers' ``https://`` management calls reach the local listener."""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass
class LocalTls:
    """The server's SSL context and the CA bundle file handed to workers as ``AWS_CA_BUNDLE``."""

    context: ssl.SSLContext
    ca_bundle: Path
    _dir: tempfile.TemporaryDirectory[str]

    def cleanup(self) -> None:
        """Delete the CA bundle file."""
        self._dir.cleanup()


def make_local_tls(hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> LocalTls:
    """Create a CA (in memory, for this run only) and a server certificate for ``hosts``."""
    ca = trustme.CA()
    cert = ca.issue_cert(*hosts)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    directory = tempfile.TemporaryDirectory(prefix="lambdacast-tls-")
    bundle = Path(directory.name) / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return LocalTls(context=context, ca_bundle=bundle, _dir=directory)
