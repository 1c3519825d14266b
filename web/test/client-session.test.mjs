// Heartbeat, the offline publish queue, ordering and duplicates through the client, unsubscribe.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeWebSocket, openSession, serveAll, settle, setup } from "../test-support/fakes.mjs";

const message = (channel, seq, data = `m${seq}`) => ({
  type: "message",
  channel,
  seq,
  data,
  from: { connectionId: "x", userId: null },
  ts: 0,
});

test("after 60 s without traffic the client pings, and a pong keeps the socket", async () => {
  // GIVEN an open client
  const t = await setup();
  const ws = await openSession(t);
  // WHEN 60 s pass with nothing received
  await t.clock.advance(60_000);
  // THEN a ping went out; answered, it keeps the same socket
  assert.equal(ws.sent.at(-1).action, "ping");
  t.server.serve(ws);
  await t.clock.advance(15_000);
  assert.equal(FakeWebSocket.instances.length, 1);
  assert.equal(t.client.state, "open");
});

test("traffic postpones the ping", async () => {
  // GIVEN an open client subscribed to lobby
  const t = await setup();
  t.client.subscribe("lobby", () => {});
  const ws = await openSession(t);
  // WHEN a message arrives at 50 s and the clock reaches 100 s
  await t.clock.advance(50_000);
  ws.receive(message("lobby", 1));
  await t.clock.advance(50_000);
  // THEN no ping yet: the idle time is only 50 s
  assert.equal(ws.lastSent("ping"), undefined);
  await t.clock.advance(10_000);
  assert.notEqual(ws.lastSent("ping"), undefined);
});

test("no pong within 10 s means the socket is dead: the client drops it and reconnects", async () => {
  // GIVEN an open client whose server went silent (half-open TCP)
  const t = await setup();
  const ws = await openSession(t);
  t.server.silent = true;
  // WHEN the ping gets no pong for 10 s
  await t.clock.advance(60_000);
  await t.clock.advance(10_000);
  // THEN the socket is abandoned with heartbeat_timeout and a new one follows the backoff
  assert.equal(t.errors.at(-1).code, "heartbeat_timeout");
  assert.notEqual(ws.closedWith, null);
  assert.equal(t.client.state, "reconnecting");
  await t.clock.advance(t.states.at(-1).delay);
  assert.equal(FakeWebSocket.instances.length, 2);
});

test("publishes made while reconnecting wait and go out after the resubscribe", async () => {
  // GIVEN a subscribed client whose socket just dropped
  const t = await setup({ server: { autoAck: true } });
  t.client.subscribe("lobby", () => {});
  const first = await openSession(t);
  first.drop(1006);
  // WHEN the app publishes twice while offline
  const acks = [t.client.publish("lobby", "a"), t.client.publish("lobby", "b")];
  await t.clock.advance(t.states.at(-1).delay);
  const second = FakeWebSocket.last;
  second.accept();
  await settle();
  // THEN nothing is published before the subscribe is confirmed
  assert.deepEqual(
    second.sent.map((f) => f.action),
    ["hello", "subscribe"],
  );
  t.server.serve(second);
  await settle();
  // AND then both go out, in order, and resolve with their acks
  t.server.serve(second); // acks "a"; "b" follows
  await settle();
  t.server.serve(second);
  assert.deepEqual(
    second.sent.filter((f) => f.action === "publish").map((f) => f.data),
    ["a", "b"],
  );
  assert.deepEqual(
    (await Promise.all(acks)).map((a) => a.seq),
    [1, 2],
  );
});

test("past maxQueue, publishes reject at once with queue_full", async () => {
  // GIVEN a client with room for 2 queued publishes, not connected yet
  const t = await setup({ client: { maxQueue: 2 } });
  t.client.subscribe("lobby", () => {});
  // WHEN three publishes are made before the connection opens
  const queued = [t.client.publish("lobby", 1), t.client.publish("lobby", 2)];
  const third = t.client.publish("lobby", 3);
  // THEN the third rejects clearly and the first two are still sent once open
  await assert.rejects(third, (err) => err.code === "queue_full" && /maxQueue 2/.test(err.message));
  t.server.autoAck = true;
  const ws = await openSession(t);
  t.server.serve(ws);
  await settle();
  t.server.serve(ws);
  assert.deepEqual(
    ws.sent.filter((f) => f.action === "publish").map((f) => f.data),
    [1, 2],
  );
  assert.equal((await Promise.all(queued)).length, 2);
});

test("a publish right after subscribe waits for the subscribe to be confirmed", async () => {
  // GIVEN an open client (API Gateway runs frames concurrently, so order on the wire is not enough)
  const t = await setup({ server: { autoAck: true } });
  const ws = await openSession(t);
  // WHEN the app subscribes and publishes in the same tick
  t.client.subscribe("news", () => {});
  const ack = t.client.publish("news", "first!");
  await settle();
  // THEN only the subscribe is on the wire until its reply arrives
  assert.deepEqual(
    ws.sent.slice(1).map((f) => f.action),
    ["subscribe"],
  );
  t.server.serve(ws);
  await settle();
  t.server.serve(ws);
  assert.equal((await ack).seq, 1);
});

test("messages reach onMessage in seq order, without duplicates", async () => {
  // GIVEN an open client subscribed to lobby at seq 0
  const t = await setup();
  const seen = [];
  t.client.subscribe("lobby", (m) => seen.push(m.seq));
  const ws = await openSession(t);
  // WHEN 2 arrives before 1, and 1 arrives twice
  for (const seq of [2, 1, 1, 3]) ws.receive(message("lobby", seq));
  // THEN the app sees 1, 2, 3
  assert.deepEqual(seen, [1, 2, 3]);
});

test("a gap that never fills, nor is in the history, is given up after the reorder window and reported", async () => {
  // GIVEN an open client subscribed to lobby, reorder window 1 s, and a history without seq 1
  const t = await setup();
  const seen = [];
  const gaps = [];
  t.client.subscribe("lobby", (m) => seen.push(m.seq));
  t.client.on("gap", (g) => gaps.push(g));
  const ws = await openSession(t);
  // WHEN seq 2 arrives and seq 1 never does
  ws.receive(message("lobby", 2));
  assert.deepEqual(seen, []);
  await t.clock.advance(1000);
  await serveAll(t.server, ws);
  // THEN after the window the client asked the history for 1, and then delivered 2 and reported 1 missing
  assert.deepEqual(
    ws.sent.filter((f) => f.action === "history").map((f) => [f.before, f.limit]),
    [[2, 1]],
  );
  assert.deepEqual(seen, [2]);
  assert.deepEqual(gaps, [{ channel: "lobby", from: 1, to: 1 }]);
});

test("our own publish without echo does not open a gap for the next message", async () => {
  // GIVEN an open client subscribed to lobby
  const t = await setup();
  const seen = [];
  t.client.subscribe("lobby", (m) => seen.push(m.seq));
  const ws = await openSession(t);
  // WHEN we publish (seq 1, not echoed) and another client's seq 2 arrives before our ack
  const ack = t.client.publish("lobby", "mine");
  await settle();
  ws.receive(message("lobby", 2));
  ws.reply(ws.lastSent("publish"), { type: "ack", channel: "lobby", seq: 1, delivered: 1 });
  await ack;
  // THEN seq 2 is delivered as soon as the ack accounts for seq 1
  assert.deepEqual(seen, [2]);
});

test("with recover off, after a reconnect the app hears about the messages it missed and gets the new ones", async () => {
  // GIVEN a client without recovery that saw lobby up to seq 2, then lost its socket while seq 3-4 were published
  const t = await setup({ client: { recover: false } });
  const seen = [];
  const gaps = [];
  t.client.subscribe("lobby", (m) => seen.push(m.seq));
  t.client.on("gap", (g) => gaps.push(g));
  const first = await openSession(t);
  first.receive(message("lobby", 1));
  first.receive(message("lobby", 2));
  first.drop(1006);
  t.server.seq.set("lobby", 4);
  // WHEN it reconnects and seq 5 is published
  await t.clock.advance(t.states.at(-1).delay);
  const second = await openSession(t);
  second.receive(message("lobby", 5));
  // THEN it did not ask for a replay, reports 3-4 as missed and delivers 5 without waiting
  assert.equal(second.lastSent("subscribe").since, undefined);
  assert.deepEqual(gaps, [{ channel: "lobby", from: 3, to: 4 }]);
  assert.deepEqual(seen, [1, 2, 5]);
});

test("by default the resubscribe asks for everything after the last seq seen", async () => {
  // GIVEN a client (default options) that saw lobby up to seq 7, then lost its socket
  const t = await setup();
  t.client.subscribe("lobby", () => {});
  t.server.seq.set("lobby", 6);
  const first = await openSession(t);
  first.receive(message("lobby", 7));
  first.drop(1006);
  // WHEN it reconnects
  await t.clock.advance(t.states.at(-1).delay);
  const second = await openSession(t);
  // THEN the subscribe frame carries since: 7
  assert.equal(second.lastSent("subscribe").since, 7);
});

test("unsubscribe is sent only when the channel's last subscription goes", async () => {
  // GIVEN two subscriptions to lobby on an open client
  const t = await setup();
  const a = t.client.subscribe("lobby", () => {});
  const b = t.client.subscribe("lobby", () => {});
  const ws = await openSession(t);
  // WHEN the first unsubscribes, then the second
  a.unsubscribe();
  await settle();
  assert.equal(ws.lastSent("unsubscribe"), undefined);
  b.unsubscribe();
  await settle();
  // THEN one unsubscribe frame goes out, and a later message is not delivered to anyone
  assert.equal(ws.sent.filter((f) => f.action === "unsubscribe").length, 1);
  assert.equal(ws.sent.filter((f) => f.action === "subscribe").length, 1);
});

test("a throwing onMessage does not stop other subscribers and is reported", async () => {
  // GIVEN two subscriptions to lobby, the first of which throws
  const t = await setup();
  const seen = [];
  t.client.subscribe("lobby", () => {
    throw new Error("app bug");
  });
  t.client.subscribe("lobby", (m) => seen.push(m.seq));
  const ws = await openSession(t);
  // WHEN a message arrives
  ws.receive(message("lobby", 1));
  // THEN the second still gets it and the error is reported as handler_error
  assert.deepEqual(seen, [1]);
  assert.equal(t.errors.at(-1).code, "handler_error");
});

test("a publish made while the socket is closing waits in the queue instead of being dropped", async () => {
  // GIVEN an open client whose socket has started closing (the close event has not arrived yet)
  const t = await setup({ server: { autoAck: true } });
  t.client.subscribe("lobby", () => {});
  const first = await openSession(t);
  first.readyState = 2;
  // WHEN the app publishes
  const ack = t.client.publish("lobby", "during close");
  await settle();
  // THEN nothing is written to the closing socket
  assert.equal(first.lastSent("publish"), undefined);
  // AND once the close lands and the client reconnects, the publish goes out and is acked
  first.drop(1006);
  await t.clock.advance(t.states.at(-1).delay);
  const second = await openSession(t);
  t.server.serve(second);
  assert.equal((await ack).seq, 1);
});

test("publishes to one channel go out one at a time, each after the previous ack", async () => {
  // GIVEN an open client subscribed to lobby (API Gateway would run two in-flight publishes concurrently)
  const t = await setup();
  t.client.subscribe("lobby", () => {});
  const ws = await openSession(t);
  // WHEN the app publishes three messages in one tick
  const outcomes = Promise.allSettled(["a", "b", "c"].map((text) => t.client.publish("lobby", text)));
  await settle();
  // THEN only the first is on the wire until it is acked, then the next, in order
  const published = () => ws.sent.filter((f) => f.action === "publish").map((f) => f.data);
  assert.deepEqual(published(), ["a"]);
  ws.reply(ws.lastSent("publish"), { type: "ack", channel: "lobby", seq: 1, delivered: 0 });
  await settle();
  assert.deepEqual(published(), ["a", "b"]);
  ws.reply(ws.lastSent("publish"), { type: "error", code: "too_large", message: "too big" });
  await settle();
  // AND a refused publish does not hold the next one back
  assert.deepEqual(published(), ["a", "b", "c"]);
  ws.reply(ws.lastSent("publish"), { type: "ack", channel: "lobby", seq: 2, delivered: 0 });
  assert.deepEqual(
    (await outcomes).map((o) => o.status),
    ["fulfilled", "rejected", "fulfilled"],
  );
});

test("with orderedPublish off, publishes to one channel are pipelined", async () => {
  // GIVEN an open client that trades per-client order for throughput
  const t = await setup({ client: { orderedPublish: false } });
  t.client.subscribe("lobby", () => {});
  const ws = await openSession(t);
  // WHEN the app publishes three messages in one tick
  for (const text of ["a", "b", "c"]) t.client.publish("lobby", text).catch(() => {});
  await settle();
  // THEN all three are on the wire at once
  assert.equal(ws.sent.filter((f) => f.action === "publish").length, 3);
});
