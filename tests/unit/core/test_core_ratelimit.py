"""Per-connection publish rate limit: a token bucket in memory, checked before DynamoDB."""

from __future__ import annotations

from typing import Any

import pytest
from lambdacast.numbering import Counter, Numbering
from lambdacast.ratelimit import RateLimiter
from world_support import World

ME = "BFHPhfCWIAMCKlQ="


def test_a_full_bucket_allows_a_burst_then_refuses() -> None:
    # GIVEN 10/s with a burst of 20, all at one instant
    limiter = RateLimiter(rate=10, burst=20)
    # WHEN 21 publishes arrive at t=0
    results = [limiter.allow("c", 0) for _ in range(21)]
    # THEN the first 20 pass and the 21st is refused
    assert results == [True] * 20 + [False]


def test_tokens_refill_at_the_rate() -> None:
    # GIVEN an empty bucket at t=0
    limiter = RateLimiter(rate=10, burst=20)
    for _ in range(20):
        limiter.allow("c", 0)
    # WHEN 250 ms pass THEN two publishes pass (10/s x 0.25 s = 2.5 tokens) and the third waits
    assert [limiter.allow("c", 250) for _ in range(3)] == [True, True, False]
    # AND the wait it advertises is the time to the next whole token
    assert limiter.retry_after_ms("c") == 50


def test_the_bucket_never_holds_more_than_the_burst() -> None:
    # GIVEN an idle hour WHEN publishing THEN still only the burst passes at once
    limiter = RateLimiter(rate=10, burst=20)
    limiter.allow("c", 0)
    assert sum(limiter.allow("c", 3_600_000) for _ in range(25)) == 20


def test_connections_have_their_own_buckets() -> None:
    # GIVEN one connection that emptied its bucket WHEN another publishes THEN it is not limited
    limiter = RateLimiter(rate=1, burst=1)
    assert limiter.allow("a", 0)
    assert not limiter.allow("a", 0)
    assert limiter.allow("b", 0)


def test_a_clock_going_backwards_adds_no_tokens() -> None:
    # GIVEN an empty bucket at t=1000 WHEN the clock reads 0 THEN still refused
    limiter = RateLimiter(rate=10, burst=1)
    assert limiter.allow("c", 1000)
    assert not limiter.allow("c", 0)


def test_the_number_of_buckets_is_bounded() -> None:
    # GIVEN room for two buckets WHEN a third connection publishes THEN the oldest bucket is dropped
    limiter = RateLimiter(rate=1, burst=1, max_buckets=2)
    for key in ("a", "b", "c"):
        limiter.allow(key, 0)
    # THEN "a" starts again with a full bucket, "c" is still empty
    assert limiter.allow("a", 0)
    assert not limiter.allow("c", 0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (1, 0), (-1, 5)])
def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    # GIVEN a zero or negative setting WHEN a limiter is built THEN ValueError
    with pytest.raises(ValueError, match="rate must be positive"):
        RateLimiter(rate=rate, burst=burst)


def test_a_flooding_connection_gets_rate_limited_without_a_dynamodb_call(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a subscriber with a burst of 2 and a frozen clock
    world.runtime.limiter = RateLimiter(rate=1, burst=2)
    monkeypatch.setattr("lambdacast.handlers.now_ms", lambda: 1_795_626_615_562)
    world.open(ME)
    world.send({"action": "subscribe", "channel": "lobby"}, ME)
    for n in range(2):
        world.send({"action": "publish", "channel": "lobby", "data": n}, ME)
    calls: list[str] = []
    client = world.store.client
    for name in ("get_item", "update_item", "put_item", "query", "transact_write_items"):
        monkeypatch.setattr(client, name, _recording(getattr(client, name), name, calls))
    # WHEN it publishes a third time in the same instant
    world.send({"action": "publish", "channel": "lobby", "data": 3, "id": "p3"}, ME)
    # THEN it is answered rate_limited with the limit and the wait (also as retryAfterMs),
    # and DynamoDB was not called
    reply = world.last(ME)
    assert (reply["code"], reply["id"], reply["retryAfterMs"]) == ("rate_limited", "p3", 1000)
    assert "1 messages per second" in reply["message"]
    assert "wait 1000 ms" in reply["message"]
    assert calls == []
    assert Numbering(world.store).peek("lobby") == Counter(seq=2, epoch=world.epoch("lobby"))


def _recording(original: Any, name: str, calls: list[str]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return original(*args, **kwargs)

    return wrapper


def test_the_limit_comes_from_the_settings(world: World) -> None:
    # GIVEN the default settings WHEN the runtime builds its limiter THEN 10/s, burst 20
    assert (world.runtime.limiter.rate, world.runtime.limiter.burst) == (10, 20)


@pytest.mark.parametrize(
    "frame",
    [
        {"action": "subscribe", "channel": "lobby"},
        {"action": "unsubscribe", "channel": "lobby"},
        {"action": "history", "channel": "lobby"},
        {"action": "presence", "channel": "presence-x"},
    ],
    ids=lambda f: f["action"],
)
def test_every_action_touching_dynamodb_is_rate_limited_without_a_dynamodb_call(
    world: World, monkeypatch: pytest.MonkeyPatch, frame: dict[str, Any]
) -> None:
    # GIVEN a connection (granted presence-x) whose action budget is a burst of 2, and a frozen clock
    world.runtime.action_limiter = RateLimiter(rate=1, burst=2)
    monkeypatch.setattr("lambdacast.handlers.now_ms", lambda: 1_795_626_615_562)
    world.open(ME, user="u1", channels=("presence-*",))
    for _ in range(2):
        world.send(frame, ME)
    calls: list[str] = []
    client = world.store.client
    for name in ("get_item", "update_item", "put_item", "delete_item", "query", "transact_write_items"):
        monkeypatch.setattr(client, name, _recording(getattr(client, name), name, calls))
    # WHEN it sends the same frame a third time in the same instant
    world.send({**frame, "id": "x3"}, ME)
    # THEN it is answered rate_limited with the wait, and DynamoDB was not called
    reply = world.last(ME)
    assert (reply["code"], reply["id"]) == ("rate_limited", "x3")
    assert "wait 1000 ms" in reply["message"]
    assert calls == []


def test_the_action_budget_is_separate_from_the_publish_budget(world: World) -> None:
    # GIVEN a publish budget already spent
    world.runtime.limiter = RateLimiter(rate=1, burst=1)
    world.open(ME)
    world.send({"action": "subscribe", "channel": "lobby"}, ME)
    world.send({"action": "publish", "channel": "lobby", "data": 1}, ME)
    # WHEN the connection asks for history
    world.send({"action": "history", "channel": "lobby", "id": "h"}, ME)
    # THEN it is answered (the read budget is its own)
    assert world.last(ME)["type"] == "history"


def test_the_action_budget_lets_a_client_subscribe_to_all_its_channels_at_once(world: World) -> None:
    # GIVEN the default runtime WHEN its action limiter is read
    limiter = world.runtime.action_limiter
    # THEN a burst covers subscribing to maxChannels channels in one go
    assert limiter.burst >= world.runtime.settings.max_channels
