"""Subscribe, publish, echo, unsubscribe and idempotent publish (msgId)."""

from __future__ import annotations

import secrets

from lambdacast_check.session import Frame, Session
from lambdacast_check.suite import Probe, behaviour, expect


async def subscribe(session: Session, channel: str) -> Frame:
    """Subscribe and return ``subscribed`` (a refusal fails the behaviour)."""
    reply = await session.request({"action": "subscribe", "channel": channel})
    expect(reply.get("type") == "subscribed", f"subscribe {channel} got {reply}")
    return reply


def msg_id() -> str:
    """A fresh msgId."""
    return f"check-{secrets.token_hex(8)}"


@behaviour("subscribe")
async def subscribe_twice(probe: Probe) -> str:
    """Subscribe answers subscribed with seq and epoch; subscribing again changes nothing."""
    channel = probe.channel()
    async with probe.connect() as session:
        first = await session.request({"action": "subscribe", "channel": channel, "id": "s1"})
        again = await session.request({"action": "subscribe", "channel": channel, "id": "s2"})
    expect(
        first.get("type") == "subscribed" and first.get("id") == "s1" and first.get("channel") == channel,
        f"expected subscribed with id s1 and the channel, got {first}",
    )
    expect(isinstance(first.get("seq"), int) and first["seq"] >= 0, f"no seq >= 0: {first}")
    expect(isinstance(first.get("epoch"), str) and first["epoch"], f"no epoch: {first}")
    expect(
        again.get("type") == "subscribed"
        and (again.get("seq"), again.get("epoch")) == (first["seq"], first["epoch"]),
        f"subscribing again got {again} after {first}",
    )
    return f"seq {first['seq']}, epoch {first['epoch']}; again: the same"


@behaviour("publish")
async def publish(probe: Probe) -> str:
    """Publish is acked with the next seq; every subscriber gets the message (echo included)."""
    channel = probe.channel()
    async with probe.connect() as alice, probe.connect() as bob:
        base = await subscribe(alice, channel)
        await subscribe(bob, channel)
        mid = msg_id()
        data = {"text": "hello from lambdacast check", "n": [1, 2.5, None, True]}
        ack = await alice.request(
            {"action": "publish", "channel": channel, "data": data, "echo": True, "msgId": mid}
        )
        own = await alice.expect(type="message", channel=channel)
        other = await bob.expect(type="message", channel=channel)
    seq, epoch = base["seq"] + 1, base["epoch"]
    expect(ack.get("type") == "ack", f"publish got {ack}")
    expect(
        (ack.get("channel"), ack.get("seq"), ack.get("epoch"), ack.get("msgId"))
        == (channel, seq, epoch, mid),
        f"expected ack of seq {seq} in epoch {epoch} with msgId {mid}, got {ack}",
    )
    expect(
        ack.get("delivered") == 2, f"delivered is {ack.get('delivered')!r}, 2 subscribers (echo on) expected"
    )
    for who, frame in (("the publisher (echo)", own), ("the other subscriber", other)):
        expect(
            (frame.get("seq"), frame.get("epoch"), frame.get("data"), frame.get("msgId"))
            == (seq, epoch, data, mid),
            f"{who} got {frame}; expected seq {seq}, epoch {epoch}, the data and msgId {mid}",
        )
        expect(isinstance(frame.get("ts"), int), f"{who}'s message has no integer ts: {frame}")
    return f"ack seq {seq} delivered 2; both got the message (seq {seq}, msgId, data, ts)"


@behaviour("echo")
async def echo(probe: Probe) -> str:
    """Without echo the publisher does not get its own message; with echo it does."""
    channel = probe.channel()
    async with probe.connect() as alice, probe.connect() as bob:
        await subscribe(alice, channel)
        await subscribe(bob, channel)
        quiet = await alice.request({"action": "publish", "channel": channel, "data": "no echo"})
        loud = await alice.request({"action": "publish", "channel": channel, "data": "echo", "echo": True})
        first_own = await alice.expect(type="message", channel=channel)
        await bob.expect(type="message", channel=channel, seq=loud.get("seq"))
    expect(quiet.get("type") == "ack" and loud.get("type") == "ack", f"publishes got {quiet} / {loud}")
    expect(quiet.get("delivered") == 1, f"without echo delivered is {quiet.get('delivered')!r}, 1 expected")
    expect(
        first_own.get("seq") == loud["seq"],
        f"the publisher's first own message is seq {first_own.get('seq')} (echo off), "
        f"not {loud['seq']} (echo on)",
    )
    return f"seq {quiet['seq']} (no echo) not received by its publisher; seq {loud['seq']} (echo) received"


@behaviour("unsubscribe")
async def unsubscribe(probe: Probe) -> str:
    """Unsubscribe stops delivery and publishing (not_subscribed); it is idempotent."""
    channel = probe.channel()
    async with probe.connect() as alice, probe.connect() as bob:
        await subscribe(alice, channel)
        await subscribe(bob, channel)
        left = await alice.request({"action": "unsubscribe", "channel": channel, "id": "u1"})
        again = await alice.request({"action": "unsubscribe", "channel": channel, "id": "u2"})
        refused = await alice.request({"action": "publish", "channel": channel, "data": 1})
        sent = await bob.request({"action": "publish", "channel": channel, "data": "after", "echo": True})
        await bob.expect(type="message", channel=channel, seq=sent.get("seq"))
        # A ping round trip after bob's own copy: a post to alice would have gone out before it.
        await alice.request({"action": "ping"})
    expect(left == {"type": "unsubscribed", "id": "u1", "channel": channel}, f"unsubscribe got {left}")
    expect(again.get("type") == "unsubscribed", f"unsubscribing again got {again}")
    expect(refused.get("code") == "not_subscribed", f"a publish after unsubscribing got {refused}")
    expect(
        sent.get("type") == "ack" and sent.get("delivered") == 1,
        f"the remaining subscriber's publish got {sent}",
    )
    expect(not alice.messages(channel), f"after unsubscribing alice still got {alice.messages(channel)}")
    return "unsubscribed (twice); publish refused with not_subscribed; later messages not delivered"


@behaviour("msgid-duplicate")
async def msgid_duplicate(probe: Probe) -> str:
    """A publish repeating a msgId gets the first ack back (duplicate) and is not delivered again."""
    channel = probe.channel()
    async with probe.connect() as alice, probe.connect() as bob:
        await subscribe(alice, channel)
        await subscribe(bob, channel)
        mid = msg_id()
        first = await alice.request({"action": "publish", "channel": channel, "data": "once", "msgId": mid})
        second = await alice.request({"action": "publish", "channel": channel, "data": "once", "msgId": mid})
        after = await alice.request(
            {"action": "publish", "channel": channel, "data": "after", "msgId": msg_id()}
        )
        await bob.expect(type="message", channel=channel, seq=after.get("seq"))
    expect(
        first.get("type") == "ack" and first.get("duplicate") is not True, f"the first publish got {first}"
    )
    expect(
        second.get("type") == "ack"
        and (second.get("seq"), second.get("epoch")) == (first["seq"], first["epoch"])
        and second.get("duplicate") is True,
        f"the repeated msgId got {second}; expected seq {first['seq']} with duplicate true",
    )
    expect(
        after.get("seq") == first["seq"] + 1,
        f"the next publish took seq {after.get('seq')}, not {first['seq'] + 1}",
    )
    copies = [m for m in bob.messages(channel) if m.get("msgId") == mid]
    expect(len(copies) == 1, f"the subscriber received msgId {mid} {len(copies)} times")
    return f"seq {first['seq']} acked twice (duplicate: true), delivered once; the next took {after['seq']}"
