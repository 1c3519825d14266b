"""Property tests: any presence/history/recovery frame, from any identity, gets one reply and no crash."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lambdacast.errors import ProtocolError
from lambdacast.wire.limits import Limits
from lambdacast.wire.parser import parse_frame
from world_support import World

LIMITS = Limits(max_data_bytes=256, max_channels=3)
ME = "BFHPhfCWIAMCKlQ="

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
)
channels = st.one_of(
    st.sampled_from(["lobby", "presence-team-1", "private-x", "presence-x", "a b", "", "x" * 129]), values
)
frames = st.fixed_dictionaries(
    {"action": st.sampled_from(["subscribe", "history", "presence", "publish", "unsubscribe"])},
    optional={
        "channel": channels,
        "since": values,
        "limit": values,
        "before": values,
        "data": values,
        "id": values,
    },
)


@settings(max_examples=300, deadline=None)
@given(frame=frames)
def test_parsing_any_feature_frame_gives_a_request_or_a_protocol_error(frame: dict[str, Any]) -> None:
    # GIVEN any combination of fields WHEN parsed
    try:
        request = parse_frame(json.dumps(frame), LIMITS)
    except ProtocolError as exc:
        # THEN either a ProtocolError (any other exception fails the test) with a sentence for the client
        message = exc.message
    else:
        message = "parsed"
        # OR the request type the action names, its numbers in range
        assert type(request).__name__.lower() == frame["action"]
        for name in ("since", "limit", "before"):
            value = getattr(request, name, None)
            assert value is None or (isinstance(value, int) and 0 <= value < 2**53)
    assert message


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    frame=frames, user=st.sampled_from([None, "u1"]), patterns=st.sampled_from([(), ("presence-*",), ("*",)])
)
def test_any_feature_frame_gets_exactly_one_reply(
    world: World, frame: dict[str, Any], user: str | None, patterns: tuple[str, ...]
) -> None:
    # GIVEN a connection with some identity (reopened per example) and any frame
    world.open(ME, user=user, channels=patterns)
    world.transport.clear()
    # WHEN it is sent
    world.send(frame, ME)
    # THEN one direct reply came back (replays and announcements aside), never internal_error
    replies = [f for f in world.frames(ME) if f["type"] not in {"message", "member_joined", "member_left"}]
    assert len(replies) == 1, replies
    assert replies[0].get("code") != "internal_error", replies[0]
