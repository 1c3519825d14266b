// Channel epochs: a channel whose counter was created again restarts its stream, and nothing is lost in the switch.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeWebSocket, messageFrame, openSession, serveAll, settle, setup } from "../test-support/fakes.mjs";

/** A client subscribed to lobby that received seq 1..seen of epoch e1, then lost its socket. */
async function offlineAfter(seen, options = {}) {
  const t = await setup(options);
  const got = [];
  const gaps = [];
  const resets = [];
  t.client.subscribe("lobby", (m) => got.push(`${m.epoch}:${m.seq}`));
  t.client.on("gap", (g) => gaps.push(g));
  t.client.on("reset", (r) => resets.push(r));
  const first = await openSession(t);
  for (const m of t.server.published("lobby", seen)) first.receive(m);
  first.drop(1006);
  return { ...t, got, gaps, resets };
}

async function reconnect(t) {
  await t.clock.advance(t.states.at(-1).delay);
  return openSession(t);
}

const range = (epoch, from, to) => Array.from({ length: to - from + 1 }, (_, i) => `${epoch}:${from + i}`);

test("after a backend restart, the new epoch's messages are replayed and delivered, not dropped as old seqs", async () => {
  // GIVEN a page that received lobby seq 1 (epoch e1), then lost its socket
  const t = await offlineAfter(1);
  // WHEN the backend restarts (the channel's counter is new: epoch e2), someone publishes seq 1 of e2,
  // and the page reconnects
  t.server.restart("lobby");
  t.server.published("lobby");
  const ws = await reconnect(t);
  // THEN it got e2's seq 1, was told of the reset (and of no gap), having resubscribed with its old since and epoch
  assert.deepEqual(t.got, ["e1:1", "e2:1"]);
  assert.deepEqual(t.resets, [{ channel: "lobby", epoch: "e2" }]);
  assert.deepEqual(t.gaps, []);
  const subscribe = ws.lastSent("subscribe");
  assert.deepEqual([subscribe.since, subscribe.epoch], [1, "e1"]);
});

test("a reset whose new epoch is longer than the replay fetches the rest of it from history", async () => {
  // GIVEN a page that received lobby 1-3 of e1, then lost its socket
  const t = await offlineAfter(3);
  // WHEN the channel restarts and 150 messages are published in e2 (the server replays only the first 100)
  t.server.restart("lobby");
  t.server.published("lobby", 150);
  await reconnect(t);
  // THEN every message of e2 was delivered once, in order, after e1's, with no gap
  assert.deepEqual(t.got, [...range("e1", 1, 3), ...range("e2", 1, 150)]);
  assert.deepEqual(t.gaps, []);
  assert.equal(t.resets.length, 1);
});

test("a reset with recover off reports the new epoch's earlier messages as a gap", async () => {
  // GIVEN a page without recovery that received lobby 1-2 of e1, then lost its socket
  const t = await offlineAfter(2, { client: { recover: false } });
  // WHEN the channel restarts, 4 messages are published in e2, and the page reconnects
  t.server.restart("lobby");
  t.server.published("lobby", 4);
  const ws = await reconnect(t);
  ws.receive(t.server.published("lobby")[0]);
  // THEN the app hears of the reset, then of e2's 1-4 as missed, and gets e2's 5
  assert.deepEqual(t.resets, [{ channel: "lobby", epoch: "e2" }]);
  assert.deepEqual(t.gaps, [{ channel: "lobby", from: 1, to: 4 }]);
  assert.deepEqual(t.got, ["e1:1", "e1:2", "e2:5"]);
});

test("a message frame of an epoch the channel left behind is stale and not delivered", async () => {
  // GIVEN a page that moved from e1 to e2 after a restart
  const t = await offlineAfter(2);
  t.server.restart("lobby");
  t.server.published("lobby");
  const ws = await reconnect(t);
  // WHEN a late frame of e1 arrives (seq 3, above anything e2 has)
  ws.receive(messageFrame("lobby", 3, "old", "e1"));
  // THEN it is dropped: the app saw e1's 1-2 and e2's 1 only
  assert.deepEqual(t.got, ["e1:1", "e1:2", "e2:1"]);
});

test("a live message of an epoch never held restarts the stream at once", async () => {
  // GIVEN an open page subscribed to lobby in e1, having received seq 1
  const t = await setup();
  const got = [];
  const resets = [];
  t.client.subscribe("lobby", (m) => got.push(`${m.epoch}:${m.seq}`));
  t.client.on("reset", (r) => resets.push(r));
  const ws = await openSession(t);
  ws.receive(messageFrame("lobby", 1));
  // WHEN a message of a new epoch e7 arrives (its reply or replay is still on the way)
  ws.receive(messageFrame("lobby", 1, "fresh", "e7"));
  // THEN the app hears of the reset and gets the message
  assert.deepEqual(resets, [{ channel: "lobby", epoch: "e7" }]);
  assert.deepEqual(got, ["e1:1", "e7:1"]);
});

test("a resubscribe whose reply comes late does not give up on the replay meanwhile", async () => {
  // GIVEN a page that saw lobby 1-2, offline while 3-5 were published, whose subscribe reply is held
  const t = await offlineAfter(2);
  t.server.published("lobby", 3);
  t.server.hold.add("subscribe");
  await t.clock.advance(t.states.at(-1).delay);
  const ws = FakeWebSocket.last;
  ws.accept();
  await serveAll(t.server, ws);
  // WHEN the live 6 arrives first, 5 s pass (far beyond the reorder window), then the replay and the reply
  ws.receive(messageFrame("lobby", 6));
  await t.clock.advance(5_000);
  for (const seq of [3, 4, 5]) ws.receive(messageFrame("lobby", seq));
  ws.reply(ws.lastSent("subscribe"), { type: "subscribed", channel: "lobby", seq: 5, epoch: "e1", recovered: true });
  await settle();
  // THEN everything arrived in order with no gap, and no history was needed
  assert.deepEqual(t.got, range("e1", 1, 6));
  assert.deepEqual(t.gaps, []);
  assert.equal(ws.lastSent("history"), undefined);
});

test("messages arriving before the first subscribed reply are held and delivered in order after it", async () => {
  // GIVEN a page whose first subscribe to lobby is not answered yet (the channel is at seq 4)
  const t = await setup();
  t.server.published("lobby", 4);
  t.server.hold.add("subscribe");
  const got = [];
  t.client.subscribe("lobby", (m) => got.push(m.seq));
  const ws = await openSession(t);
  // WHEN live 6 and 5 arrive before the reply
  ws.receive(messageFrame("lobby", 6));
  ws.receive(messageFrame("lobby", 5));
  assert.deepEqual(got, []);
  ws.reply(ws.lastSent("subscribe"), { type: "subscribed", channel: "lobby", seq: 4, epoch: "e1" });
  await settle();
  // THEN both are delivered, in order
  assert.deepEqual(got, [5, 6]);
});

test("delivered messages carry their epoch", async () => {
  // GIVEN an open page subscribed to lobby in e1
  const t = await setup();
  const got = [];
  t.client.subscribe("lobby", (m) => got.push(m));
  const ws = await openSession(t);
  // WHEN a message arrives
  ws.receive(t.server.published("lobby")[0]);
  // THEN the app sees epoch and seq
  assert.deepEqual(
    got.map((m) => [m.epoch, m.seq]),
    [["e1", 1]],
  );
});
