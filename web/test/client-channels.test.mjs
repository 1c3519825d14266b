// Channel bookkeeping: one subscribe/unsubscribe in flight per channel, and what a stuck request means.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeWebSocket, openSession, serveAll, settle, setup } from "../test-support/fakes.mjs";

test("subscribing again while the unsubscribe is in flight ends subscribed, one request at a time", async () => {
  // GIVEN an open client that just dropped its only lobby subscription (unsubscribe in flight)
  const t = await setup();
  const first = t.client.subscribe("lobby", () => {});
  const ws = await openSession(t);
  first.unsubscribe();
  await settle();
  // WHEN the app subscribes again before the server answers
  const again = t.client.subscribe("lobby", () => {});
  await settle();
  // THEN no subscribe races the unsubscribe on the wire
  assert.deepEqual(
    ws.sent.map((f) => f.action),
    ["hello", "subscribe", "unsubscribe"],
  );
  // AND once the unsubscribe is answered, the subscribe follows and the new subscription is ready
  t.server.serve(ws);
  await settle();
  assert.deepEqual(
    ws.sent.map((f) => f.action),
    ["hello", "subscribe", "unsubscribe", "subscribe"],
  );
  t.server.serve(ws);
  await again.ready;
});

test("a subscribe with no reply leaves the server's state unknown, so the client reconnects", async () => {
  // GIVEN an open client with a 3 s request timeout and a server that stops answering
  const t = await setup({ client: { requestTimeout: 3000 } });
  await openSession(t);
  t.server.silent = true;
  // WHEN a new subscription gets no reply for 3 s
  t.client.subscribe("news", () => {});
  await t.clock.advance(3000);
  // THEN the client drops the socket and, after the backoff, resubscribes on a new one
  assert.equal(t.client.state, "reconnecting");
  t.server.silent = false;
  await t.clock.advance(t.states.at(-1).delay);
  const second = await openSession(t);
  assert.equal(second.lastSent("subscribe").channel, "news");
  assert.equal(t.client.state, "open");
});

test("a server that does not know hello still gives an open session", async () => {
  // GIVEN a server that answers hello with unknown_action
  const t = await setup();
  t.client.subscribe("lobby", () => {});
  await settle();
  const ws = FakeWebSocket.last;
  ws.accept();
  await settle();
  ws.reply(ws.lastSent("hello"), { type: "error", code: "unknown_action", message: "no such action" });
  // WHEN the subscribe is answered
  ws.reply(ws.lastSent("subscribe"), { type: "subscribed", channel: "lobby", seq: 0 });
  await settle();
  // THEN the session is open without a connection id
  assert.equal(t.client.state, "open");
  assert.equal(t.client.connectionId, null);
});

test("a frame that is not JSON is reported, and the client carries on", async () => {
  // GIVEN an open client subscribed to lobby
  const t = await setup();
  const seen = [];
  t.client.subscribe("lobby", (m) => seen.push(m.seq));
  const ws = await openSession(t);
  // WHEN garbage arrives, then a real message
  ws.receive("Internal server error<");
  ws.receive({ type: "message", channel: "lobby", seq: 1, data: "ok", from: {}, ts: 0 });
  // THEN the garbage is an invalid_json error event and the message is still delivered
  assert.equal(t.errors.at(-1).code, "invalid_json");
  assert.deepEqual(seen, [1]);
});

test("a subscribe answered internal_error is sent again after the backoff, and the subscription becomes ready", async () => {
  // GIVEN a client whose first subscribe to lobby the server answers internal_error (random() is 0.5)
  const t = await setup();
  t.server.hold.add("subscribe");
  const sub = t.client.subscribe("lobby", () => {});
  const ws = await openSession(t);
  ws.reply(ws.lastSent("subscribe"), { type: "error", code: "internal_error", message: "dependency down" });
  // WHEN the backoff (500 ms) passes and the second subscribe is answered
  await t.clock.advance(499);
  assert.equal(ws.sent.filter((f) => f.action === "subscribe").length, 1);
  await t.clock.advance(1);
  t.server.hold.delete("subscribe");
  await serveAll(t.server, ws);
  // THEN the subscription is ready and no error was reported
  await sub.ready;
  assert.equal(ws.sent.filter((f) => f.action === "subscribe").length, 2);
  assert.deepEqual(t.errors, []);
});

test("a subscribe waiting to retry does not hold back the session or other channels", async () => {
  // GIVEN a client subscribing to lobby and news, whose lobby subscribe is answered internal_error
  // (retried after a 500 ms backoff)
  const t = await setup({ server: { autoAck: true } });
  t.server.refuse.set("lobby", "internal_error");
  const lobby = t.client.subscribe("lobby", () => {});
  const lobbyReady = lobby.ready.then(
    () => "ready",
    () => "rejected",
  );
  t.client.subscribe("news", () => {});
  // WHEN the session opens and news publishes
  const ws = await openSession(t);
  const ack = t.client.publish("news", "hi");
  await serveAll(t.server, ws);
  // THEN the client is open and the news publish was acked while lobby's retry still waits
  assert.equal(t.client.state, "open");
  assert.equal((await ack).seq, 1);
  assert.equal(ws.sent.filter((f) => f.action === "subscribe" && f.channel === "lobby").length, 1);
  assert.equal(await Promise.race([lobbyReady, settle().then(() => "pending")]), "pending");
});

test("a rate-limited subscribe is sent again after retryAfterMs", async () => {
  // GIVEN a client whose subscribe the server answers rate_limited, retryAfterMs 250
  const t = await setup();
  t.server.hold.add("subscribe");
  const sub = t.client.subscribe("lobby", () => {});
  const ws = await openSession(t);
  ws.reply(ws.lastSent("subscribe"), { type: "error", code: "rate_limited", message: "wait", retryAfterMs: 250 });
  // WHEN 250 ms pass
  t.server.hold.delete("subscribe");
  await t.clock.advance(250);
  await serveAll(t.server, ws);
  // THEN it subscribed again and is ready
  await sub.ready;
  assert.equal(ws.sent.filter((f) => f.action === "subscribe").length, 2);
});

test("a subscribe still refused after three retries rejects ready with the server's code", async () => {
  // GIVEN a server that answers every subscribe to lobby with internal_error
  const t = await setup();
  t.server.refuse.set("lobby", "internal_error");
  const sub = t.client.subscribe("lobby", () => {});
  const outcome = assert.rejects(sub.ready, { code: "internal_error", channel: "lobby" });
  // WHEN the retries run out (backoff ceilings 1, 2, 4 s)
  const ws = await openSession(t);
  for (let i = 0; i < 3; i += 1) {
    await t.clock.advance(10_000);
    await serveAll(t.server, ws);
  }
  // THEN four subscribes were sent and ready rejects
  await outcome;
  assert.equal(ws.sent.filter((f) => f.action === "subscribe").length, 4);
});
