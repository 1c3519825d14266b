// Recovery after a reconnect: `since` replay, the history backfill when the server cannot replay, rewind.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeWebSocket, messageFrame, openSession, serveAll, settle, setup } from "../test-support/fakes.mjs";

/** A client subscribed to lobby that saw seq 1..seen, then lost its socket; returns the recorder too. */
async function offlineAfter(seen, options = {}) {
  const t = await setup(options);
  const got = [];
  const gaps = [];
  t.client.subscribe("lobby", (m) => got.push(m.seq));
  t.client.on("gap", (g) => gaps.push(g));
  t.server.published("lobby", seen);
  t.server.seq.set("lobby", 0);
  const first = await openSession(t);
  for (const m of t.server.log.get("lobby")) first.receive(m);
  t.server.seq.set("lobby", seen);
  first.drop(1006);
  return { ...t, got, gaps };
}

async function reconnect(t) {
  await t.clock.advance(t.states.at(-1).delay);
  return openSession(t);
}

test("a replay within the server's window is delivered in order before newer messages, without duplicates", async () => {
  // GIVEN a client that saw lobby 1-3 and was offline while 4-6 were published
  const t = await offlineAfter(3);
  t.server.published("lobby", 3);
  // WHEN it reconnects, the server replays 4-6, and 7 arrives live, with a stray duplicate of 5
  const ws = await reconnect(t);
  ws.receive(messageFrame("lobby", 5));
  ws.receive(messageFrame("lobby", 7));
  // THEN it asked for everything after 3, and delivered every seq once, in order, with no gap
  assert.equal(ws.lastSent("subscribe").since, 3);
  assert.deepEqual(t.got, [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(t.gaps, []);
  assert.equal(t.client.state, "open");
});

test("a replayed message arriving after a live one is put back in seq order", async () => {
  // GIVEN a client that saw lobby 1-2, offline while 3 was published
  const t = await offlineAfter(2);
  t.server.published("lobby", 1);
  t.server.hold.add("subscribe");
  await t.clock.advance(t.states.at(-1).delay);
  const ws = FakeWebSocket.last;
  ws.accept();
  await serveAll(t.server, ws);
  // WHEN 4 arrives live before the replay of 3 and the recovered reply
  ws.receive(messageFrame("lobby", 4));
  ws.receive(messageFrame("lobby", 3));
  ws.reply(ws.lastSent("subscribe"), { type: "subscribed", channel: "lobby", seq: 3, recovered: true });
  await settle();
  // THEN the app sees 3 before 4
  assert.deepEqual(t.got, [1, 2, 3, 4]);
  assert.deepEqual(t.gaps, []);
});

test("when the server cannot replay (a gap over 100), the client pages back through history and misses nothing", async () => {
  // GIVEN a client that saw lobby 1-2 and was offline while 250 messages were published
  const t = await offlineAfter(2);
  t.server.published("lobby", 250);
  // WHEN it reconnects (the server answers recovered: false) and 253 arrives live afterwards
  const ws = await reconnect(t);
  ws.receive(messageFrame("lobby", 253));
  // THEN it fetched history in pages of at most 100, going back with before
  const pages = ws.sent.filter((f) => f.action === "history").map((f) => [f.limit, f.before]);
  assert.deepEqual(pages, [
    [100, 253],
    [100, 153],
    [50, 53],
  ]);
  // AND delivered 3..253 in order exactly once, with no gap reported
  assert.deepEqual(
    t.got,
    Array.from({ length: 253 }, (_, i) => i + 1),
  );
  assert.deepEqual(t.gaps, []);
});

test("a history page the server cut to fit one post (more: true) is paged on, not taken as the end", async () => {
  // GIVEN a client that saw lobby 1-2, offline while 150 messages were published, and a server whose
  // history replies hold at most 30 messages (large messages: the rest would not fit one post)
  const t = await offlineAfter(2);
  t.server.published("lobby", 150);
  t.server.maxHistoryPage = 30;
  // WHEN it reconnects (recovered: false) and 153 arrives live afterwards
  const ws = await reconnect(t);
  ws.receive(messageFrame("lobby", 153));
  // THEN it kept paging back with before past each short page marked more, and missed nothing
  assert.deepEqual(
    t.got,
    Array.from({ length: 153 }, (_, i) => i + 1),
  );
  assert.deepEqual(t.gaps, []);
});

test("a gap longer than recoverLimit: the newest recoverLimit messages are fetched and the older part is one gap", async () => {
  // GIVEN a client with recoverLimit 120 that saw lobby 1-2, offline while 200 messages were published
  const t = await offlineAfter(2, { client: { recoverLimit: 120 } });
  t.server.published("lobby", 200);
  // WHEN it reconnects
  const ws = await reconnect(t);
  // THEN it fetched 120 messages (two pages), reported 3-82 as one gap, and delivered 83-202 in order
  assert.deepEqual(
    ws.sent.filter((f) => f.action === "history").map((f) => f.limit),
    [100, 20],
  );
  assert.deepEqual(t.gaps, [{ channel: "lobby", from: 3, to: 82 }]);
  assert.deepEqual(
    t.got.slice(2),
    Array.from({ length: 120 }, (_, i) => 83 + i),
  );
});

test("messages past the history retention are reported as a gap, the retained ones are delivered", async () => {
  // GIVEN a client that saw lobby 1-2, offline while 3-10 were published, of which 3-6 have expired
  const t = await offlineAfter(2);
  t.server.published("lobby", 8);
  t.server.retainedFrom.set("lobby", 7);
  // WHEN it reconnects (the replay is refused: its first message expired)
  await reconnect(t);
  // THEN 3-6 are one gap and 7-10 arrive in order
  assert.deepEqual(t.gaps, [{ channel: "lobby", from: 3, to: 6 }]);
  assert.deepEqual(t.got, [1, 2, 7, 8, 9, 10]);
});

test("live messages arriving during the history backfill wait for it, past the reorder window", async () => {
  // GIVEN a client that saw lobby 1-2, offline while 3-150 were published, whose history replies are held
  const t = await offlineAfter(2);
  t.server.published("lobby", 148);
  t.server.hold.add("history");
  const ws = await reconnect(t);
  // WHEN 151 arrives live and the reorder window passes before the history comes
  ws.receive(messageFrame("lobby", 151));
  await t.clock.advance(5_000);
  assert.deepEqual(t.got, [1, 2]);
  t.server.hold.delete("history");
  t.server.answered.set(ws, ws.sent.length - 1);
  await serveAll(t.server, ws);
  // THEN everything arrives in order, without a gap
  assert.deepEqual(
    t.got,
    Array.from({ length: 151 }, (_, i) => i + 1),
  );
  assert.deepEqual(t.gaps, []);
});

test("a publish made during the recovery goes out only after the channel caught up", async () => {
  // GIVEN a client that saw lobby 1-2, offline while 3-150 were published, whose history replies are held
  const t = await offlineAfter(2, { server: { autoAck: true } });
  t.server.published("lobby", 148);
  t.server.hold.add("history");
  const ws = await reconnect(t);
  // WHEN the app publishes while the backfill is running
  const ack = t.client.publish("lobby", "hi");
  await settle();
  // THEN nothing is published until the history arrived
  assert.equal(ws.lastSent("publish"), undefined);
  t.server.hold.delete("history");
  t.server.answered.set(ws, ws.sent.length - 1);
  await serveAll(t.server, ws);
  assert.equal((await ack).seq, 151);
});

test("with recoverLimit 0 a refused replay is only reported as a gap", async () => {
  // GIVEN a client with recoverLimit 0 that saw lobby 1-2, offline while 200 messages were published
  const t = await offlineAfter(2, { client: { recoverLimit: 0 } });
  t.server.published("lobby", 200);
  // WHEN it reconnects
  const ws = await reconnect(t);
  // THEN no history was asked for, and 3-202 is one gap
  assert.equal(ws.lastSent("history"), undefined);
  assert.deepEqual(t.gaps, [{ channel: "lobby", from: 3, to: 202 }]);
});

test("rewind delivers the channel's last messages before the live ones on the first subscribe", async () => {
  // GIVEN a channel with 30 stored messages
  const t = await setup();
  t.server.published("lobby", 30);
  const got = [];
  const gaps = [];
  t.client.on("gap", (g) => gaps.push(g));
  // WHEN a client subscribes with rewind 10, and 31 arrives live
  t.client.subscribe("lobby", (m) => got.push(m.seq), { rewind: 10 });
  const ws = await openSession(t);
  ws.receive(messageFrame("lobby", 31));
  // THEN it read one history page and delivered 21-31 in order, with no gap
  assert.deepEqual(
    ws.sent.filter((f) => f.action === "history").map((f) => [f.limit, f.before]),
    [[10, 31]],
  );
  assert.deepEqual(
    got,
    Array.from({ length: 11 }, (_, i) => 21 + i),
  );
  assert.deepEqual(gaps, []);
});

test("rewind on a channel with fewer messages delivers what there is, and no gap", async () => {
  // GIVEN a channel with 3 messages, the first of them expired
  const t = await setup();
  t.server.published("lobby", 3);
  t.server.retainedFrom.set("lobby", 2);
  const got = [];
  const gaps = [];
  t.client.on("gap", (g) => gaps.push(g));
  // WHEN a client subscribes with rewind 50
  t.client.subscribe("lobby", (m) => got.push(m.seq), { rewind: 50 });
  await openSession(t);
  // THEN it gets 2 and 3, and hears of no gap
  assert.deepEqual(got, [2, 3]);
  assert.deepEqual(gaps, []);
});

test("rewind out of range is refused at once", async () => {
  // GIVEN a client
  const t = await setup();
  // WHEN / THEN a rewind over 100 or negative throws invalid_argument
  assert.throws(() => t.client.subscribe("lobby", () => {}, { rewind: 101 }), { code: "invalid_argument" });
  assert.throws(() => t.client.subscribe("lobby", () => {}, { rewind: -1 }), { code: "invalid_argument" });
});
