"""History paging and recovery: since + epoch, a refused recovery, a reset, a repeated subscribe."""

from __future__ import annotations

from lambdacast_check.behaviours.channels import msg_id, subscribe
from lambdacast_check.session import Frame, Session
from lambdacast_check.suite import Probe, behaviour, expect

PUBLISHED = 5


async def publish_some(session: Session, channel: str, count: int) -> list[Frame]:
    """Publish ``count`` messages (one at a time); return their acks."""
    acks = []
    for n in range(count):
        ack = await session.request(
            {"action": "publish", "channel": channel, "data": {"n": n}, "msgId": msg_id()}
        )
        expect(ack.get("type") == "ack", f"publish {n + 1} of {count} got {ack}")
        acks.append(ack)
    return acks


def seqs(frames: list[Frame]) -> list[int]:
    """The frames' seqs, in order."""
    return [int(f["seq"]) for f in frames]


@behaviour("history")
async def history(probe: Probe) -> str:
    """History pages back through stored messages in seq order, as they were delivered."""
    channel = probe.channel()
    async with probe.connect() as publisher, probe.connect() as listener:
        empty = await publisher.request({"action": "history", "channel": channel})
        await subscribe(publisher, channel)
        await subscribe(listener, channel)
        acks = await publish_some(publisher, channel, PUBLISHED)
        live = [await listener.expect(type="message", channel=channel, seq=a["seq"]) for a in acks]
        newest = await publisher.request({"action": "history", "channel": channel, "limit": 2})
        older = await publisher.request(
            {"action": "history", "channel": channel, "limit": 2, "before": newest["messages"][0]["seq"]}
        )
        everything = await publisher.request({"action": "history", "channel": channel, "limit": 100})
    expect(
        empty.get("type") == "history" and empty.get("messages") == [],
        f"a fresh channel's history is {empty}",
    )
    top = acks[-1]["seq"]
    expect(seqs(newest["messages"]) == [top - 1, top], f"limit 2 gave seqs {seqs(newest['messages'])}")
    expect(seqs(older["messages"]) == [top - 3, top - 2], f"the page before gave {seqs(older['messages'])}")
    expect(newest.get("epoch") == acks[0]["epoch"], f"history's epoch {newest.get('epoch')} is not the acks'")
    expect(everything["messages"] == live, "the stored frames differ from the ones delivered live")
    return f"empty at first; pages {seqs(newest['messages'])}, {seqs(older['messages'])}; frames as delivered"


@behaviour("recovery")
async def recovery(probe: Probe) -> str:
    """Resubscribing with since + epoch replays what was missed, in order, before subscribed."""
    channel = probe.channel()
    async with probe.connect() as publisher:
        await subscribe(publisher, channel)
        async with probe.connect() as away:
            seen = await subscribe(away, channel)
        acks = await publish_some(publisher, channel, 3)
        async with probe.connect() as back:
            reply = await back.request(
                {"action": "subscribe", "channel": channel, "since": seen["seq"], "epoch": seen["epoch"]}
            )
            before_reply = [
                f for f in back.received[: back.received.index(reply)] if f.get("type") == "message"
            ]
    expect(reply.get("type") == "subscribed", f"the resubscribe got {reply}")
    expect(
        reply.get("recovered") is True and reply.get("seq") == acks[-1]["seq"] and "reset" not in reply,
        f"expected recovered true at seq {acks[-1]['seq']} (no reset), got {reply}",
    )
    expect(
        seqs(before_reply) == seqs(acks),
        f"before subscribed the replay was {seqs(before_reply)}, expected {seqs(acks)}",
    )
    return f"since {seen['seq']}: replayed {seqs(before_reply)} before subscribed (recovered: true)"


@behaviour("recovery-refused")
async def recovery_refused(probe: Probe) -> str:
    """Since ahead of the channel: recovered false, nothing replayed."""
    channel = probe.channel()
    async with probe.connect() as session:
        seen = await subscribe(session, channel)
    async with probe.connect() as back:
        reply = await back.request(
            {"action": "subscribe", "channel": channel, "since": seen["seq"] + 10, "epoch": seen["epoch"]}
        )
        await back.request({"action": "ping"})
    expect(
        reply.get("type") == "subscribed" and reply.get("recovered") is False, f"the resubscribe got {reply}"
    )
    expect(not back.messages(channel), f"something was replayed: {back.messages(channel)}")
    return f"since {seen['seq'] + 10} (channel at {seen['seq']}): recovered false, nothing replayed"


@behaviour("recovery-reset")
async def recovery_reset(probe: Probe) -> str:
    """Since with another epoch (or none): the current epoch is replayed from 1, reset true."""
    channel = probe.channel()
    async with probe.connect() as publisher:
        await subscribe(publisher, channel)
        acks = await publish_some(publisher, channel, 3)
    outcomes = []
    for frame in (
        {"action": "subscribe", "channel": channel, "since": 2, "epoch": "lambdacast-check-old-epoch"},
        {"action": "subscribe", "channel": channel, "since": 2},
    ):
        async with probe.connect() as back:
            reply = await back.request(frame)
            replayed = [f for f in back.received[: back.received.index(reply)] if f.get("type") == "message"]
        what = "another epoch" if "epoch" in frame else "no epoch"
        expect(
            reply.get("reset") is True
            and reply.get("recovered") is True
            and reply.get("epoch") == acks[0]["epoch"],
            f"since 2 with {what} got {reply}; expected reset and recovered true in epoch {acks[0]['epoch']}",
        )
        expect(seqs(replayed) == seqs(acks), f"with {what} the replay was {seqs(replayed)}, not {seqs(acks)}")
        outcomes.append(f"{what}: replayed {seqs(replayed)}")
    return "; ".join(outcomes) + " (reset: true, recovered: true)"


@behaviour("recovery-repeat")
async def recovery_repeat(probe: Probe) -> str:
    """Subscribe with since on a channel already followed: recovered false, nothing replayed."""
    channel = probe.channel()
    async with probe.connect() as session:
        seen = await subscribe(session, channel)
        await publish_some(session, channel, 2)
        reply = await session.request(
            {"action": "subscribe", "channel": channel, "since": seen["seq"], "epoch": seen["epoch"]}
        )
        await session.request({"action": "ping"})
    expect(
        reply.get("type") == "subscribed" and reply.get("recovered") is False,
        f"the repeated subscribe got {reply}",
    )
    expect(not session.messages(channel), f"it replayed {seqs(session.messages(channel))} (echo was off)")
    return f"already following: recovered false at seq {reply['seq']}, nothing replayed"
