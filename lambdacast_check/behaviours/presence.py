"""Presence: needs a token that grants ``presence-<prefix>…`` (``--token``); skipped otherwise."""

from __future__ import annotations

from lambdacast_check.behaviours.channels import subscribe
from lambdacast_check.suite import Probe, Skipped, behaviour, expect


@behaviour("presence")
async def presence(probe: Probe) -> str:
    """A user subscribed to a presence- channel is listed, at a presence version."""
    channel = probe.channel("presence-")
    if not probe.token:
        raise Skipped(
            f"needs --token granting {channel} (an anonymous connection may not join presence channels)"
        )
    async with probe.connect() as session:
        welcome = await session.request({"action": "hello"})
        joined = await session.request({"action": "subscribe", "channel": channel})
        if joined.get("code") == "forbidden":
            raise Skipped(f"the token does not grant {channel}")
        expect(joined.get("type") == "subscribed", f"subscribing to {channel} got {joined}")
        listed = await session.request({"action": "presence", "channel": channel})
        async with probe.connect() as second_tab:
            await subscribe(second_tab, channel)
            both = await session.request({"action": "presence", "channel": channel})
            await second_tab.request({"action": "unsubscribe", "channel": channel})
        await session.request({"action": "unsubscribe", "channel": channel})
        after = await session.request({"action": "presence", "channel": channel})
    user = welcome.get("userId")
    members = [m.get("userId") for m in listed.get("members", [])]
    expect(listed.get("type") == "presence" and isinstance(listed.get("v"), int), f"presence got {listed}")
    expect(members == [user], f"the list is {members}, expected just the token's user {user!r}")
    expect(
        [m.get("userId") for m in both.get("members", [])] == [user] and both.get("v") == listed["v"],
        f"a second tab of the same user changed the list or its version: {both} after {listed}",
    )
    expect(
        after.get("members") == [] and isinstance(after.get("v"), int) and after["v"] > listed["v"],
        f"after the user's tabs left, presence is {after} (v was {listed['v']})",
    )
    return (
        f"{user} at v {listed['v']}; a second tab is the same member; after leaving: empty at v {after['v']}"
    )
