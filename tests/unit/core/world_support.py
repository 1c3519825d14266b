"""A small world of connections for the feature tests: users with tokens' contexts, frames in, frames out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from core_support import RecordingTransport, load_event, message_event
from lambdacast.auth.access import Identity, authorizer_context
from lambdacast.channels import ChannelStore
from lambdacast.handlers import Runtime
from lambdacast.numbering import Numbering
from lambdacast.ratelimit import RateLimiter

Invoke = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class World:
    """The deployed handlers over moto; each connection may carry an authorizer context."""

    connect: Invoke
    disconnect: Invoke
    default: Invoke
    transport: RecordingTransport
    store: ChannelStore
    dynamodb: Any
    runtime: Runtime
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def open(
        self, cid: str, *, user: str | None = None, channels: Iterable[str] = (), name: str | None = None
    ) -> None:
        """Open connection ``cid`` as ``user`` (anonymous when ``None``) holding the channel patterns."""
        context: dict[str, Any] = {}
        if user is not None:
            identity = Identity(user_id=user, channels=tuple(channels), name=name)
            context = {"principalId": user, **authorizer_context(identity)}
        self.contexts[cid] = context
        event = load_event("connect", connectionId=cid)
        if context:
            event["requestContext"]["authorizer"] = context
        assert self.connect(event) == {"statusCode": 200}

    def send(self, body: dict[str, Any], cid: str) -> None:
        """Send one frame from ``cid`` (with its authorizer context, as API Gateway does)."""
        event = message_event(json.dumps(body), cid)
        if self.contexts.get(cid):
            event["requestContext"]["authorizer"] = self.contexts[cid]
        assert self.default(event)["statusCode"] == 200

    def close(self, cid: str) -> None:
        """``$disconnect`` of ``cid``."""
        event = load_event("disconnect", connectionId=cid)
        if self.contexts.get(cid):
            event["requestContext"]["authorizer"] = self.contexts[cid]
        assert self.disconnect(event) == {"statusCode": 200}

    def frames(self, cid: str, kind: str | None = None) -> list[dict[str, Any]]:
        """Frames posted to ``cid`` (of one ``type`` when given)."""
        return [f for f in self.transport.frames(cid) if kind is None or f["type"] == kind]

    def last(self, cid: str) -> dict[str, Any]:
        """The last frame posted to ``cid``."""
        frames = self.transport.frames(cid)
        assert frames, f"nothing was posted to {cid}"
        return frames[-1]

    def unlimited(self) -> World:
        """Lift the publish rate limits (in-memory and shared) for tests that publish in bulk."""
        self.runtime.limiter = RateLimiter(rate=1_000_000, burst=1_000_000)
        self.runtime.quotas = None
        return self

    def epoch(self, channel: str) -> str:
        """The channel's current epoch, as the table holds it."""
        counter = Numbering(self.store).peek(channel)
        assert counter is not None, f"{channel} has no counter"
        return counter.epoch

    def items(self, prefix: str = "") -> list[dict[str, Any]]:
        """The table's items whose pk starts with ``prefix``."""
        items = self.dynamodb.scan(TableName=self.store.table_name)["Items"]
        return [i for i in items if i["pk"]["S"].startswith(prefix)]


@pytest.fixture
def world(
    invoke: Callable[[str], Invoke],
    transport: RecordingTransport,
    store: ChannelStore,
    dynamodb: Any,
    runtime: Runtime,
) -> World:
    """The handlers, no connection open yet."""
    return World(
        invoke("connect"), invoke("disconnect"), invoke("default"), transport, store, dynamodb, runtime
    )
