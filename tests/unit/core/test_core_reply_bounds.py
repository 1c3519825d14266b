"""Replies bounded to one API Gateway post: history pages on with "more", presence says "truncated"."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lambdacast.history import StoredMessage
from lambdacast.reply_bounds import bounded_history, bounded_presence
from lambdacast.wire.limits import MAX_REPLY_BYTES
from world_support import World

ME = "BFHPhfCWIAMCKlQ="
PUB = "BFHPub11oAMCAAA="
API_GATEWAY_POST_LIMIT = 128 * 1024


@pytest.fixture
def feed(world: World) -> World:
    """PUB published 50 messages of ~3 KB to "feed" (150 KB of history); ME is connected."""
    world.unlimited()
    world.open(PUB)
    world.open(ME)
    world.send({"action": "subscribe", "channel": "feed"}, PUB)
    for n in range(50):
        world.send({"action": "publish", "channel": "feed", "data": f"{n:04d}" + "x" * 3000}, PUB)
    world.transport.clear()
    return world


def _history_reply(world: World, **fields: Any) -> tuple[dict[str, Any], int]:
    world.transport.clear()
    world.send({"action": "history", "channel": "feed", "id": "h", **fields}, ME)
    (data,) = [d for c, d in world.transport.posts if c == ME]
    return json.loads(data), len(data)


def test_a_history_page_larger_than_a_post_keeps_the_newest_and_says_more(feed: World) -> None:
    # GIVEN 150 KB of history WHEN ME asks for the newest 50 messages
    reply, size = _history_reply(feed, limit=50)
    seqs = [m["seq"] for m in reply["messages"]]
    # THEN the reply fits one post, holds the newest messages in seq order up to 50
    assert size <= MAX_REPLY_BYTES < API_GATEWAY_POST_LIMIT
    assert seqs == list(range(seqs[0], 51))
    # AND says more, with the before of the next page (its oldest seq)
    assert (reply["more"], reply["before"]) == (True, seqs[0])


def test_paging_on_with_before_returns_the_rest_without_a_gap(feed: World) -> None:
    # GIVEN a first page cut by size
    first, _ = _history_reply(feed, limit=50)
    # WHEN ME asks again with the before it was given
    second, size = _history_reply(feed, limit=50, before=first["before"])
    # THEN the second page ends right before the first began, and nothing more is left
    assert size <= MAX_REPLY_BYTES
    assert [m["seq"] for m in second["messages"]] == list(range(1, first["before"]))
    assert "more" not in second
    assert "before" not in second


def test_a_history_page_that_fits_has_no_more_field(feed: World) -> None:
    # GIVEN 150 KB of history WHEN ME asks for 5 messages (15 KB)
    reply, _ = _history_reply(feed, limit=5)
    # THEN all five come, and the frame is as before (no more/before)
    assert [m["seq"] for m in reply["messages"]] == [46, 47, 48, 49, 50]
    assert set(reply) == {"type", "id", "channel", "epoch", "messages"}


def test_bounded_history_always_holds_the_newest_message() -> None:
    # GIVEN two messages each larger than the budget WHEN bounded
    big = [StoredMessage(seq=s, frame=json.dumps({"seq": s, "data": "y" * 500})) for s in (7, 8)]
    reply = json.loads(bounded_history("h", channel="c", epoch="e", messages=big, max_bytes=300))
    # THEN the newest is kept (a reply is never empty while messages exist) and more points at it
    assert [m["seq"] for m in reply["messages"]] == [8]
    assert (reply["more"], reply["before"]) == (True, 8)


def test_a_presence_list_larger_than_the_budget_is_truncated_with_the_count() -> None:
    # GIVEN 1,000 members with display info
    members = [{"userId": f"user-{n}", "info": {"name": "N" * 200}} for n in range(1000)]
    # WHEN the presence reply is built
    text = bounded_presence("p", channel="presence-x", members=members, v=3)
    reply = json.loads(text)
    # THEN it fits one post, lists the first members in order, and says how many there are (and
    # the version of the whole list)
    assert len(text.encode()) <= MAX_REPLY_BYTES
    assert reply["v"] == 3
    assert reply["truncated"] is True
    assert reply["count"] == 1000
    assert reply["members"] == members[: len(reply["members"])]
    assert 0 < len(reply["members"]) < 1000


def test_a_presence_list_that_fits_is_complete_and_not_marked() -> None:
    # GIVEN three members WHEN the presence reply is built THEN it holds all, with no truncated/count
    members = [{"userId": f"u{n}", "info": {}} for n in range(3)]
    reply = json.loads(bounded_presence("p", channel="presence-x", members=members, v=3))
    assert reply == {"type": "presence", "id": "p", "channel": "presence-x", "v": 3, "members": members}


def test_a_reply_larger_than_api_gateway_delivers_is_answered_with_a_small_error_frame(
    feed: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a history reply that would come out larger than one API Gateway message (128 KB)
    def oversized(frame_id: str | None, **_kw: Any) -> str:
        return json.dumps({"type": "history", "id": frame_id, "padding": "x" * API_GATEWAY_POST_LIMIT})

    monkeypatch.setattr("lambdacast.actions.bounded_history", oversized)
    # WHEN ME asks for it
    feed.send({"action": "history", "channel": "feed", "id": "h", "limit": 20}, ME)
    # THEN ME is not left in silence: a too_large error frame answers its frame id
    reply = feed.last(ME)
    assert (reply["type"], reply["id"], reply["code"]) == ("error", "h", "too_large")
