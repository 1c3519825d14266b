"""Wire protocol v1 at ``$connect``: the answer to the client's ``Sec-WebSocket-Protocol`` offer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["SUBPROTOCOL", "Handshake", "choose_subprotocol"]

#: The WebSocket subprotocol of protocol v1, chosen at ``$connect`` when a client offers it.
SUBPROTOCOL: Final = "lambdacast.v1"


@dataclass(frozen=True, slots=True)
class Handshake:
    """The ``$connect`` answer to the client's ``Sec-WebSocket-Protocol`` offer.

    Attributes:
        accept: Whether the handshake may go on.
        subprotocol: The subprotocol to echo in ``Sec-WebSocket-Protocol`` (``None``: no header).
        reason: Why it was refused (for the log), empty when accepted.
    """

    accept: bool
    subprotocol: str | None = None
    reason: str = ""


def choose_subprotocol(offered: str | None) -> Handshake:
    """Choose the subprotocol from a ``Sec-WebSocket-Protocol`` header value (comma-separated).

    A browser whose offered subprotocol is not echoed fails the handshake, and API Gateway echoes
    only what ``$connect`` returns: so :data:`SUBPROTOCOL` is chosen when offered; an offer of
    only unknown subprotocols is refused (the client speaks something else); no offer is fine.
    """
    names = [name.strip() for name in (offered or "").split(",") if name.strip()]
    if not names:
        return Handshake(accept=True)
    if SUBPROTOCOL in names:
        return Handshake(accept=True, subprotocol=SUBPROTOCOL)
    shown = ", ".join(name[:40] for name in names[:5])
    return Handshake(accept=False, reason=f"offered subprotocols {shown} do not include {SUBPROTOCOL}")
