// Channel bookkeeping: one subscribe/unsubscribe in flight per channel, and what a stuck request means.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeWebSocket, openSession, settle, setup } from "../test-support/fakes.mjs";

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
