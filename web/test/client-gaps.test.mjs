// Holes in a channel's stream: filled from history when possible, reported once when not, never a lost message.
import { test } from "node:test";
import assert from "node:assert/strict";
import { messageFrame, openSession, serveAll, setup } from "../test-support/fakes.mjs";

/** An open client subscribed to lobby at seq 0, recording what it delivers and reports. */
async function live(options = {}) {
  const t = await setup(options);
  const got = [];
  const late = [];
  const gaps = [];
  t.client.subscribe("lobby", (m) => (m.late ? late : got).push(m.seq));
  t.client.on("gap", (g) => gaps.push([g.from, g.to]));
  const ws = await openSession(t);
  return { ...t, ws, got, late, gaps };
}

const historyRequests = (ws) => ws.sent.filter((f) => f.action === "history").map((f) => [f.before, f.limit]);

test("a message inside a gap reported by a recovery is delivered, flagged late, when it arrives afterwards", async () => {
  // GIVEN a client that saw lobby 1-2 and lost its socket, while seq 3 was numbered but its history
  // write has not landed (so the server cannot replay it, and the history does not have it yet)
  const t = await live();
  for (const m of t.server.published("lobby", 2)) t.ws.receive(m);
  t.ws.drop(1006);
  t.server.seq.set("lobby", 3);
  // WHEN it reconnects (recovered: false, the backfill finds nothing: 3 is reported as a gap),
  // and then seq 3 arrives live
  await t.clock.advance(t.states.at(-1).delay);
  const ws = await openSession(t);
  assert.deepEqual(t.gaps, [[3, 3]]);
  ws.receive(messageFrame("lobby", 3));
  // THEN 3 is delivered after all, flagged late; a second copy of it is a duplicate
  ws.receive(messageFrame("lobby", 3));
  assert.deepEqual([t.got, t.late], [[1, 2], [3]]);
});

test("a hole in the live stream is filled from history after the reorder window, without a gap", async () => {
  // GIVEN an open client and a channel whose 1-3 are in the history
  const t = await live();
  const [m1, , m3] = t.server.published("lobby", 3);
  // WHEN 1 and 3 arrive live and 2 never does (its post failed), and the reorder window passes
  t.ws.receive(m1);
  t.ws.receive(m3);
  await t.clock.advance(999);
  assert.deepEqual(historyRequests(t.ws), []);
  await t.clock.advance(1);
  await serveAll(t.server, t.ws);
  // THEN the client asked the history once for 2, and delivered 1, 2, 3 in order with no gap
  assert.deepEqual(historyRequests(t.ws), [[3, 1]]);
  assert.deepEqual(t.got, [1, 2, 3]);
  assert.deepEqual(t.gaps, []);
});

test("only what the history does not hold becomes a gap", async () => {
  // GIVEN an open client and a channel of 5 messages whose seq 3 is not in the history
  const t = await live();
  const frames = t.server.published("lobby", 5);
  t.server.log.set(
    "lobby",
    frames.filter((m) => m.seq !== 3),
  );
  // WHEN 1 and 5 arrive live and the reorder window passes
  t.ws.receive(frames[0]);
  t.ws.receive(frames[4]);
  await t.clock.advance(1000);
  await serveAll(t.server, t.ws);
  // THEN one history request covered 2-4, 2 and 4 came from it, and 3 alone is reported
  assert.deepEqual(historyRequests(t.ws), [[5, 3]]);
  assert.deepEqual(t.got, [1, 2, 4, 5]);
  assert.deepEqual(t.gaps, [[3, 3]]);
});

test("holes open in one window are fetched with one request", async () => {
  // GIVEN an open client and a channel whose 1-5 are in the history
  const t = await live();
  const frames = t.server.published("lobby", 5);
  // WHEN 1, 3 and 5 arrive (2 and 4 never do) within the window
  for (const i of [0, 2, 4]) t.ws.receive(frames[i]);
  await t.clock.advance(1000);
  await serveAll(t.server, t.ws);
  // THEN a single request fetched both missing seqs
  assert.deepEqual(historyRequests(t.ws), [[5, 3]]);
  assert.deepEqual(t.got, [1, 2, 3, 4, 5]);
});

test("a hole longer than a history page costs one request of 100; the rest is one gap", async () => {
  // GIVEN an open client and a channel of 250 messages, all in the history
  const t = await live();
  const frames = t.server.published("lobby", 250);
  // WHEN 1 and 250 arrive live and the reorder window passes
  t.ws.receive(frames[0]);
  t.ws.receive(frames[249]);
  await t.clock.advance(1000);
  await serveAll(t.server, t.ws);
  await t.clock.advance(10_000);
  await serveAll(t.server, t.ws);
  // THEN one page of 100 was fetched (2-101), 102-249 is reported once, and 250 is delivered
  assert.deepEqual(historyRequests(t.ws), [[102, 100]]);
  assert.deepEqual(t.got, [...Array.from({ length: 101 }, (_, i) => i + 1), 250]);
  assert.deepEqual(t.gaps, [[102, 249]]);
});

test("more than reorderMaxBuffered held messages start the history fill without waiting the window", async () => {
  // GIVEN an open client holding at most 3 messages, and a channel whose 1-5 are in the history
  const t = await live({ client: { reorderMaxBuffered: 3 } });
  const frames = t.server.published("lobby", 5);
  // WHEN 2-5 arrive and 1 does not
  for (const m of frames.slice(1)) t.ws.receive(m);
  await serveAll(t.server, t.ws);
  // THEN the history was asked at once (no time passed), and 1-5 are delivered in order
  assert.deepEqual(historyRequests(t.ws), [[2, 1]]);
  assert.deepEqual(t.got, [1, 2, 3, 4, 5]);
});

test("a hole open when the socket drops waits for the resubscribe, whose since recovers it", async () => {
  // GIVEN an open client that received 1 and 3 of lobby (2 is missing), all three in the history
  const t = await live();
  const frames = t.server.published("lobby", 3);
  t.ws.receive(frames[0]);
  t.ws.receive(frames[2]);
  // WHEN the socket drops and the reorder window passes before the reconnect completes
  t.ws.drop(1006);
  await t.clock.advance(1000);
  const ws = await openSession(t);
  // THEN the resubscribe asked for everything after 1, and 2 and 3 arrived in order, with no gap
  assert.equal(ws.lastSent("subscribe").since, 1);
  assert.deepEqual(t.got, [1, 2, 3]);
  assert.deepEqual(t.gaps, []);
});

test("a refused history request leaves the hole reported as a gap, and the stream goes on", async () => {
  // GIVEN an open client on a channel whose history requests are refused (e.g. rate_limited)
  const t = await live();
  t.server.hold.add("history");
  // WHEN 2 arrives without 1, the window passes, and the history request is refused
  t.ws.receive(messageFrame("lobby", 2));
  await t.clock.advance(1000);
  await serveAll(t.server, t.ws);
  t.ws.reply(t.ws.lastSent("history"), { type: "error", code: "rate_limited", message: "slow down" });
  await serveAll(t.server, t.ws);
  // THEN 1 is reported, 2 delivered, and the refusal is on the error event
  assert.deepEqual([t.got, t.gaps], [[2], [[1, 1]]]);
  assert.equal(t.errors.at(-1).code, "rate_limited");
});
