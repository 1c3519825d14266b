"""Channel authorization matrix and the authorizer-context round trip (lambdacast.auth.access, pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lambdacast.auth.access import (
    ANONYMOUS,
    ChannelKind,
    Identity,
    authorizer_context,
    channel_kind,
    identity_from_authorizer,
    may_access,
)

TEAM = Identity(user_id="user-42", channels=("private-team-*", "presence-lobby"), name="Ada")
WILDCARD = Identity(user_id="root", channels=("*",))
NO_PATTERNS = Identity(user_id="user-1")
PATTERNS_WITHOUT_USER = Identity(user_id=None, channels=("*",))


@pytest.mark.parametrize(
    ("channel", "identity", "allowed"),
    [
        # public channels: everyone, including anonymous
        ("lobby", None, True),
        ("lobby", ANONYMOUS, True),
        ("lobby", TEAM, True),
        ("privateer", ANONYMOUS, True),  # only the exact "private-" prefix is reserved
        ("presenceful", ANONYMOUS, True),
        # private-*: a pattern must match
        ("private-team-blue", TEAM, True),
        ("private-team-", TEAM, True),
        ("private-teams", TEAM, False),
        ("private-other", TEAM, False),
        ("private-team-blue", NO_PATTERNS, False),
        ("private-team-blue", ANONYMOUS, False),
        ("private-team-blue", None, False),
        ("private-anything", WILDCARD, True),
        ("Private-team-x", TEAM, True),  # not the reserved prefix (case-sensitive): public
        ("private-TEAM-x", TEAM, False),  # patterns match case-sensitively
        # presence-*: a pattern must match and a user id is required
        ("presence-lobby", TEAM, True),
        ("presence-lobby2", TEAM, False),
        ("presence-lobby", NO_PATTERNS, False),
        ("presence-lobby", ANONYMOUS, False),
        ("presence-lobby", None, False),
        ("presence-lobby", PATTERNS_WITHOUT_USER, False),
        ("presence-x", WILDCARD, True),
    ],
)
def test_channel_access_matrix(channel: str, identity: Identity | None, allowed: bool) -> None:
    # GIVEN a channel and who asks
    # WHEN access is decided
    # THEN the rules of docs/auth.md hold
    assert may_access(channel, identity) is allowed


@pytest.mark.parametrize(
    ("pattern", "channel", "allowed"),
    [
        ("private-room-?", "private-room-7", True),
        ("private-room-?", "private-room-17", False),
        ("private-room-[ab]", "private-room-a", True),
        ("private-room-[!ab]", "private-room-a", False),
        ("private-user-42", "private-user-42", True),
        ("private-user-42", "private-user-421", False),
    ],
)
def test_glob_patterns(pattern: str, channel: str, allowed: bool) -> None:
    # GIVEN an identity holding one glob pattern
    identity = Identity(user_id="u", channels=(pattern,))
    # WHEN a private channel is checked against it
    # THEN fnmatch-style globbing applies (*, ?, [...], [!...])
    assert may_access(channel, identity) is allowed


@pytest.mark.parametrize(
    ("channel", "kind"),
    [
        ("lobby", ChannelKind.PUBLIC),
        ("private-x", ChannelKind.PRIVATE),
        ("presence-x", ChannelKind.PRESENCE),
        ("private", ChannelKind.PUBLIC),
    ],
)
def test_channel_kind(channel: str, kind: ChannelKind) -> None:
    # GIVEN a channel name
    # WHEN it is classified
    # THEN its reserved prefix decides its kind
    assert channel_kind(channel) is kind


def test_context_holds_only_strings() -> None:
    # GIVEN an identity
    # WHEN it is encoded as an authorizer context
    context = authorizer_context(TEAM)
    # THEN every value is a string (API Gateway allows only string/number/boolean values)
    assert context == {
        "userId": "user-42",
        "channels": '["private-team-*","presence-lobby"]',
        "name": "Ada",
    }
    assert all(isinstance(v, str) for v in context.values())


def test_anonymous_context_has_empty_values() -> None:
    # GIVEN the anonymous identity
    # WHEN it is encoded
    context = authorizer_context(ANONYMOUS)
    # THEN user id and name are empty and there are no patterns
    assert context == {"userId": "", "channels": "[]", "name": ""}


@pytest.mark.parametrize("identity", [TEAM, WILDCARD, NO_PATTERNS, ANONYMOUS])
def test_context_round_trips_through_request_context(identity: Identity) -> None:
    # GIVEN the requestContext.authorizer API Gateway passes to later events (principalId + context)
    authorizer = {"principalId": identity.user_id or "anonymous", **authorizer_context(identity)}
    # WHEN the identity is rebuilt from it
    # THEN it is the same identity
    assert identity_from_authorizer(authorizer) == identity


@pytest.mark.parametrize(
    "authorizer",
    [
        None,
        {},
        {"principalId": "anonymous"},
        {"principalId": "anonymous", "userId": "", "channels": "[]", "name": ""},
        {"principalId": "x", "userId": None},
        {"principalId": "x", "userId": 42},
        {"principalId": "x", "userId": "u" * 129},
    ],
)
def test_absent_or_unusable_user_id_reads_as_anonymous(authorizer: dict[str, Any] | None) -> None:
    # GIVEN an event without a usable authorizer user id (no authorizer configured, or odd values)
    # WHEN the identity is read
    identity = identity_from_authorizer(authorizer)
    # THEN the connection is anonymous and cannot reach private channels
    assert identity == ANONYMOUS
    assert not may_access("private-team-x", identity)


@pytest.mark.parametrize(
    "channels",
    [
        None,
        "",
        "not json",
        '{"private-*": true}',
        "42",
        json.dumps([1, 2, None]),
    ],
)
def test_malformed_channels_grant_nothing(channels: Any) -> None:
    # GIVEN a user id with a malformed channels value
    identity = identity_from_authorizer({"principalId": "u", "userId": "u", "channels": channels})
    # WHEN access to a private channel is decided
    # THEN nothing is granted (fail closed), but the user id is kept
    assert identity.user_id == "u"
    assert identity.channels == ()
    assert not may_access("private-x", identity)


def test_channels_as_a_list_are_accepted() -> None:
    # GIVEN an emulator that passes the context's channels as a real list rather than JSON text
    identity = identity_from_authorizer({"userId": "u", "channels": ["private-x", 7, ""]})
    # WHEN it is read
    # THEN the string patterns are kept and the rest dropped
    assert identity.channels == ("private-x",)


def test_info_carries_the_display_name() -> None:
    # GIVEN identities with and without a name
    # WHEN their display info is read
    # THEN it is {"name": ...} or empty
    assert TEAM.info == {"name": "Ada"}
    assert NO_PATTERNS.info == {}
