"""The soak's load: publishers, steady and recovering subscribers, presence tabs and watchers, one expiry.

All of it runs against one emulator serving the project's template under ``--faults``; what each client
was handed, every ack and the presence truth are kept for :mod:`soak_verdict`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from soak_client import SoakClient, Tally


@dataclass(frozen=True)
class Scale:
    """How big a soak is."""

    channels: int
    publishers_per_channel: int
    messages_per_publisher: int
    steady: int  # subscribers that never disconnect on purpose
    recovering: int  # subscribers that disconnect and recover, over and over
    presence_users: int
    tabs_per_user: int
    presence_cycles: int
    watchers: int
    pace_s: float  # a publisher's mean pause between publishes
    resend_rate: float  # share of publishes sent again with the same msgId after their ack

    @classmethod
    def named(cls, name: str) -> Scale:
        return SCALES[name]


SCALES = {
    # make test: ~100 messages, ~20 connections; a minute or less on a 2-core machine.
    "small": Scale(
        channels=2,
        publishers_per_channel=2,
        messages_per_publisher=25,
        steady=4,
        recovering=3,
        presence_users=3,
        tabs_per_user=2,
        presence_cycles=3,
        watchers=2,
        pace_s=0.15,
        resend_rate=0.1,
    ),
    # make soak: a few minutes.
    "large": Scale(
        channels=4,
        publishers_per_channel=3,
        messages_per_publisher=100,
        steady=16,
        recovering=8,
        presence_users=8,
        tabs_per_user=2,
        presence_cycles=8,
        watchers=3,
        pace_s=0.15,
        resend_rate=0.05,
    ),
}


def scale_from_env() -> tuple[str, Scale]:
    """``LAMBDACAST_SOAK_SCALE`` (``small`` by default; ``make soak`` sets ``large``)."""
    name = os.environ.get("LAMBDACAST_SOAK_SCALE", "small")
    if name not in SCALES:
        raise ValueError(f"LAMBDACAST_SOAK_SCALE={name!r}: choose one of {sorted(SCALES)}")
    return name, SCALES[name]


@dataclass
class Ack:
    """What a publisher learned about one msgId."""

    channel: str
    msg_id: str
    data: Any
    epoch: str
    seq: int
    resent: int = 0  # deliberate resends after the ack
    resend_acks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Tab:
    """One presence tab's membership as the soak knows it (the truth)."""

    user_id: str
    client: SoakClient | None = None
    inside: bool = False


@dataclass
class Expiry:
    """Messages made to expire from the history while a recovering client was away."""

    channel: str
    epoch: str
    upto: int  # seqs 1..upto


@dataclass
class Soak:
    """One soak run."""

    url: str
    mint: Callable[[str], Awaitable[dict[str, Any]]]
    expire: Callable[[str, str, int], None]
    scale: Scale
    seed: int
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    tally: Tally = field(default_factory=Tally)
    acks: dict[str, Ack] = field(default_factory=dict)
    publishers: list[SoakClient] = field(default_factory=list)
    steady: list[SoakClient] = field(default_factory=list)
    recovering: list[SoakClient] = field(default_factory=list)
    watchers: list[SoakClient] = field(default_factory=list)
    watcher_users: list[str] = field(default_factory=list)
    tabs: list[Tab] = field(default_factory=list)
    retired_tabs: list[SoakClient] = field(default_factory=list)
    expiries: list[Expiry] = field(default_factory=list)
    offline_periods: int = 0
    load_seconds: float = 0.0
    _tokens: dict[tuple[int, int], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        self.channels = [f"soak-{self.run}-{i}" for i in range(self.scale.channels)]
        self.presence_channel = f"presence-soak-{self.run}"
        self._publishing_done = asyncio.Event()

    # -- the run ------------------------------------------------------------------------------------

    async def load(self) -> None:
        """Everything under faults: subscribe, publish, recover, join and leave; returns when all is sent."""
        started = time.monotonic()
        await self._subscribe_everyone()
        victim = self.recovering[0] if self.recovering else None
        tasks = [
            *(
                self._publish(client, channel, i)
                for i, (client, channel) in enumerate(self._publisher_roles())
            ),
            *(self._recover(client, expiry_victim=client is victim) for client in self.recovering),
            *(self._tab(tab, random.Random(f"{self.seed}/tab/{i}")) for i, tab in enumerate(self.tabs)),
        ]
        publishing = asyncio.gather(*tasks[: len(self.publishers)])
        others = asyncio.gather(*tasks[len(self.publishers) :])
        await publishing
        self._publishing_done.set()
        await others
        self.load_seconds = time.monotonic() - started

    def _publisher_roles(self) -> list[tuple[SoakClient, str]]:
        per = self.scale.publishers_per_channel
        return [(client, self.channels[i // per]) for i, client in enumerate(self.publishers)]

    async def _subscribe_everyone(self) -> None:
        scale = self.scale

        async def client(
            name: str, channels: list[str], *, token: str | None = None, echo: bool = False
        ) -> SoakClient:
            made = SoakClient(name, self.url, self.tally, token=token, echo=echo)
            await made.start()
            for channel in channels:
                await made.subscribe(channel)
            return made

        self.publishers = list(
            await asyncio.gather(
                *(
                    client(f"pub{c}.{p}", [channel], echo=True)
                    for c, channel in enumerate(self.channels)
                    for p in range(scale.publishers_per_channel)
                )
            )
        )
        self.steady = list(
            await asyncio.gather(*(client(f"sub{i}", self.channels) for i in range(scale.steady)))
        )
        self.recovering = list(
            await asyncio.gather(*(client(f"rec{i}", self.channels) for i in range(scale.recovering)))
        )
        watchers = [await self.mint(f"watcher-{self.run}-{i}") for i in range(scale.watchers)]
        self.watcher_users = [w["userId"] for w in watchers]
        self.watchers = list(
            await asyncio.gather(
                *(
                    client(f"watch{i}", [self.presence_channel], token=w["token"])
                    for i, w in enumerate(watchers)
                )
            )
        )
        for u in range(scale.presence_users):
            minted = await self.mint(f"member-{self.run}-{u}")
            for t in range(scale.tabs_per_user):
                self.tabs.append(Tab(user_id=minted["userId"]))
                self._tokens[(u, t)] = minted["token"]

    # -- publishers ---------------------------------------------------------------------------------

    async def _publish(self, client: SoakClient, channel: str, index: int) -> None:
        rnd = random.Random(f"{self.seed}/pub/{index}")
        for k in range(self.scale.messages_per_publisher):
            msg_id = f"{self.run}.{client.name}.{k}"
            data = {"from": client.name, "k": k, "pad": "x" * rnd.randrange(0, 200)}
            ack = await client.publish(channel, data, msg_id)
            self._record_ack(channel, msg_id, data, ack)
            if rnd.random() < self.scale.resend_rate:
                # As if the ack had been lost (an offline queue resending): the msgId must not number twice.
                again = await client.publish(channel, data, msg_id)
                record = self.acks[msg_id]
                record.resent += 1
                record.resend_acks.append(again)
            await asyncio.sleep(rnd.expovariate(1 / self.scale.pace_s))

    def _record_ack(self, channel: str, msg_id: str, data: Any, ack: dict[str, Any]) -> None:
        assert ack["type"] == "ack", ack
        known = self.acks.get(msg_id)
        if known is None:
            self.acks[msg_id] = Ack(channel, msg_id, data, str(ack["epoch"]), int(ack["seq"]))
        else:
            known.resend_acks.append(ack)

    # -- recovering subscribers ----------------------------------------------------------------------

    async def _recover(self, client: SoakClient, *, expiry_victim: bool) -> None:
        rnd = random.Random(f"{self.seed}/{client.name}")
        if expiry_victim:
            await self._be_expiry_victim(client, rnd)
        while not self._publishing_done.is_set():
            await self._sleep_unless_done(rnd.uniform(0.5, 2.5))
            if self._publishing_done.is_set():
                break
            await client.go_offline(abort=rnd.random() < 0.5)
            self.offline_periods += 1
            await asyncio.sleep(rnd.uniform(0.5, 3.0))
            await client.come_back()

    async def _be_expiry_victim(self, client: SoakClient, rnd: random.Random) -> None:
        """Go away early; while away, the oldest messages of the first channel expire; then come back."""
        channel = self.channels[0]
        await self._sleep_unless_done(rnd.uniform(0.5, 1.5))
        await client.go_offline(abort=False)
        self.offline_periods += 1
        stream = client.streams[channel]
        assert stream.last is not None
        assert stream.epoch is not None
        away_from = stream.last
        total = self.scale.publishers_per_channel * self.scale.messages_per_publisher
        target = away_from + max(3, total // 4)
        # Expire the oldest messages up to `target`, once every client still online holds them: history
        # drops what is oldest first, and only the client that was away can miss them.
        while not self._publishing_done.is_set():
            seqs = [a.seq for a in self.acks.values() if a.channel == channel]
            if seqs and max(seqs) >= target and self._everyone_online_has(channel, target, client):
                await asyncio.to_thread(self.expire, channel, stream.epoch, target)
                self.expiries.append(Expiry(channel, stream.epoch, target))
                break
            await asyncio.sleep(0.1)
        await client.come_back()

    def _everyone_online_has(self, channel: str, seq: int, away: SoakClient) -> bool:
        for other in [*self.publishers, *self.steady, *self.recovering]:
            stream = other.streams.get(channel)
            if other is away or stream is None:
                continue
            if stream.last is None or stream.last < seq:
                return False
        return True

    async def _sleep_unless_done(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._publishing_done.wait(), seconds)

    # -- presence -----------------------------------------------------------------------------------

    async def _tab(self, tab: Tab, rnd: random.Random) -> None:
        """Join and leave the presence channel, by unsubscribing or closing the tab, a few times."""
        index = self.tabs.index(tab)
        token = self._tokens[(index // self.scale.tabs_per_user, index % self.scale.tabs_per_user)]
        stay_at_the_end = rnd.random() < 0.5
        for cycle in range(self.scale.presence_cycles):
            client = SoakClient(f"tab{index}.{cycle}", self.url, self.tally, token=token)
            tab.client = client
            await client.start()
            await client.subscribe(self.presence_channel)
            tab.inside = True
            await asyncio.sleep(rnd.uniform(0.3, 2.0))
            if cycle == self.scale.presence_cycles - 1 and stay_at_the_end:
                return
            if rnd.random() < 0.5:
                await client.unsubscribe(self.presence_channel)
                tab.inside = False
                await client.stop()
            else:
                tab.inside = False  # from the moment its socket goes, the tab is not there
                await client.go_offline(abort=rnd.random() < 0.5)
                await client.stop()
            self.retired_tabs.append(client)
            tab.client = None
            await asyncio.sleep(rnd.uniform(0.2, 1.5))

    def presence_truth(self) -> set[str]:
        """The users with a tab inside the presence channel now (the watchers are inside throughout)."""
        return {tab.user_id for tab in self.tabs if tab.inside} | set(self.watcher_users)

    # -- after the load -------------------------------------------------------------------------------

    async def settle(self, quiet_s: float = 2.0, timeout_s: float = 120.0) -> None:
        """Wait until no client has received a frame for ``quiet_s`` (the backend has gone quiet)."""
        deadline = time.monotonic() + timeout_s
        last = -1
        while time.monotonic() < deadline:
            if self.tally.frames == last:
                return
            last = self.tally.frames
            await asyncio.sleep(quiet_s)
        raise TimeoutError("the soak never went quiet")

    async def tails(self) -> None:
        """Every subscriber learns its channels' last seq and fills a hole at the very end (faults off)."""
        subscribers = [*self.publishers, *self.steady, *self.recovering]
        await asyncio.gather(*(c.tail(ch) for c in subscribers for ch in list(c.wanted)))

    async def flush_presence(self) -> tuple[set[str], set[str]]:
        """One message to the presence channel: a fan-out finds (410) any tab whose ``$disconnect`` never ran.

        This is the protocol's documented way for a connection that vanished without ``$disconnect`` to
        leave (docs/protocol.md, Presence); a crashed ``$disconnect`` (``lambda:crash``) leaves one behind.
        """
        if not self.watchers:
            return set(), set()
        before = await self._listed()
        await self.watchers[0].publish(self.presence_channel, {"flush": True}, f"{self.run}.flush")
        await asyncio.sleep(1.0)
        await self.settle(quiet_s=1.0)
        return before, await self._listed()

    async def _listed(self) -> set[str]:
        reply = await self.watchers[0].request({"action": "presence", "channel": self.presence_channel})
        return {str(member["userId"]) for member in reply["members"]}

    async def close(self) -> None:
        clients = [*self.publishers, *self.steady, *self.recovering, *self.watchers]
        clients += [tab.client for tab in self.tabs if tab.client is not None]
        await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)


async def mint_token(base: str, name: str) -> dict[str, Any]:
    """A dev token from the emulator's minter (``POST /_lambdacast/dev-token``)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/_lambdacast/dev-token", json={"name": name}) as response,
    ):
        response.raise_for_status()
        minted: dict[str, Any] = await response.json()
        return minted
