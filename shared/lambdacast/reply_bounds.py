"""Replies that fit one post: ``history`` and ``presence`` cut to ``wire.limits.MAX_REPLY_BYTES``.

API Gateway refuses a ``@connections`` post over 128 KB. A ``history`` page of 100 messages of
up to 30 KB each, or the member list of a big presence channel, can be larger than that, and a
refused reply leaves the client with no answer at all. These pure functions keep what fits:

* ``history``: the newest messages first (the page ends at ``before``, so the newest are the
  ones the client asked for), sent in ``seq`` order; when older ones were left out the frame
  says ``"more": true`` and the ``before`` for the next page.
* ``presence``: members in order until the budget is spent; when some were left out the frame
  says ``"truncated": true`` and the full ``count``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from lambdacast.history import StoredMessage
from lambdacast.wire.frames import history_frame, presence_frame
from lambdacast.wire.limits import MAX_REPLY_BYTES, MAX_SEQ


def bounded_history(
    frame_id: str | None,
    *,
    channel: str,
    epoch: str | None,
    messages: Sequence[StoredMessage],
    before: int | None = None,
    max_bytes: int = MAX_REPLY_BYTES,
) -> str:
    """The ``history`` reply holding the newest of ``messages`` (in ``seq`` order) that fit ``max_bytes``.

    The newest message is always included (a single message is far below the limit: ``data`` is
    at most 30 KB). ``before`` says the read already stopped short of older messages: the reply
    then says ``"more": true`` even when every message read fits.
    """
    budget = max_bytes - len(
        history_frame(frame_id, channel=channel, epoch=epoch, messages_json=[], before=MAX_SEQ).encode()
    )
    kept: list[StoredMessage] = []
    for message in reversed(messages):
        size = len(message.frame.encode()) + 1  # the comma
        if kept and size > budget:
            break
        kept.append(message)
        budget -= size
    kept.reverse()
    frames = [m.frame for m in kept]
    if len(kept) < len(messages):
        before = kept[0].seq
    return history_frame(frame_id, channel=channel, epoch=epoch, messages_json=frames, before=before)


def bounded_presence(
    frame_id: str | None,
    *,
    channel: str,
    members: Sequence[dict[str, Any]],
    v: int,
    max_bytes: int = MAX_REPLY_BYTES,
) -> str:
    """The ``presence`` reply at version ``v``, holding as many of ``members`` (in order) as fit."""
    whole = presence_frame(frame_id, channel=channel, members=list(members), v=v)
    if len(whole.encode()) <= max_bytes:
        return whole
    budget = max_bytes - len(
        presence_frame(frame_id, channel=channel, members=[], v=v, count=len(members)).encode()
    )
    kept: list[dict[str, Any]] = []
    for member in members:
        # ensure_ascii errs on the large side for text the reply itself writes as UTF-8
        size = len(json.dumps(member, separators=(",", ":"), ensure_ascii=True)) + 1
        if size > budget:
            break
        kept.append(member)
        budget -= size
    return presence_frame(frame_id, channel=channel, members=kept, v=v, count=len(members))
