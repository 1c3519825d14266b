"""Wire protocol v1: its version and the limits every frame is checked against or kept under.

Names, ids and numbers clients send are bounded here; so are the frames sent back (one post to
API Gateway holds at most 128 KB). See docs/protocol.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ALLOWED_CHANNEL_CHARS",
    "CHANNEL_PATTERN",
    "DEFAULT_HISTORY_LIMIT",
    "MAX_CHANNEL_LENGTH",
    "MAX_HISTORY_LIMIT",
    "MAX_ID_LENGTH",
    "MAX_POST_BYTES",
    "MAX_REPLY_BYTES",
    "MAX_SEQ",
    "MAX_TOKEN_LENGTH",
    "PROTOCOL_VERSION",
    "RESERVED_PREFIXES",
    "Limits",
]

PROTOCOL_VERSION: Final = 1
MAX_ID_LENGTH: Final = 64
#: ``msgId`` and ``epoch`` are 1 to 64 characters.
MAX_TOKEN_LENGTH: Final = 64
MAX_CHANNEL_LENGTH: Final = 128
CHANNEL_PATTERN: Final = re.compile(r"[A-Za-z0-9_\-=@,.;:]{1,128}")
RESERVED_PREFIXES: Final = ("private-", "presence-")
MAX_SEQ: Final = 2**53 - 1
MAX_HISTORY_LIMIT: Final = 100
DEFAULT_HISTORY_LIMIT: Final = 50
ALLOWED_CHANNEL_CHARS: Final = "A-Z a-z 0-9 _ - = @ , . ; :"
#: The largest reply frame sent, in bytes: API Gateway refuses a post over 128 KB (413), which
#: would leave the client with no reply at all; the rest is headroom.
MAX_REPLY_BYTES: Final = 120 * 1024
#: API Gateway's limit on one message to a client (a post over it is refused with 413).
MAX_POST_BYTES: Final = 128 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits a frame is checked against (from :class:`lambdacast.config.Settings`)."""

    max_data_bytes: int
    max_channels: int
