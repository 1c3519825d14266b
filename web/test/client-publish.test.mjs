// Idempotent publish: every publish has a msgId, kept whenever the client sends it again.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeWebSocket, openSession, serveAll, settle, setup } from "../test-support/fakes.mjs";

/** An open client subscribed to lobby, with the messages it delivers recorded. */
async function subscribed(options = {}) {
  const t = await setup(options);
  const got = [];
  t.client.subscribe("lobby", (m) => got.push(m.seq));
  const ws = await openSession(t);
  return { ...t, ws, got };
}

const published = (ws) => ws.sent.filter((f) => f.action === "publish");

test("every publish carries its own random msgId", async () => {
  // GIVEN an open client (random bytes from the injected getRandomValues)
  const t = await subscribed({ server: { autoAck: true } });
  // WHEN it publishes twice
  const acks = [t.client.publish("lobby", "a"), t.client.publish("lobby", "b")];
  await serveAll(t.server, t.ws);
  // THEN each frame has a distinct 32-character msgId, and each result names its own
  const ids = published(t.ws).map((f) => f.msgId);
  assert.equal(new Set(ids).size, 2);
  assert.ok(ids.every((id) => /^[0-9a-f]{32}$/.test(id)));
  assert.deepEqual(
    (await Promise.all(acks)).map((a) => a.msgId),
    ids,
  );
});

test("a publish whose ack was lost with the socket is resent with the same msgId and numbered once", async () => {
  // GIVEN a subscribed client whose publish was numbered (seq 1) but whose socket died before the ack
  const t = await subscribed({ server: { autoAck: true } });
  t.server.hold.add("publish");
  const ack = t.client.publish("lobby", "hello");
  await serveAll(t.server, t.ws);
  const first = t.ws.lastSent("publish");
  t.server._number("lobby", first.data, first.msgId);
  t.ws.drop(1006);
  // WHEN the client reconnects and the server answers the resend
  t.server.hold.delete("publish");
  await t.clock.advance(t.states.at(-1).delay);
  const ws = await openSession(t);
  await serveAll(t.server, ws);
  // THEN the resend carried the same msgId, the ack says duplicate with the original seq,
  // the channel holds one message, and our own message (no echo) was not delivered back to us
  assert.equal(ws.lastSent("publish").msgId, first.msgId);
  assert.deepEqual(await ack, {
    channel: "lobby",
    seq: 1,
    epoch: "e1",
    msgId: first.msgId,
    duplicate: true,
  });
  assert.equal(t.server.log.get("lobby").length, 1);
  assert.deepEqual(t.got, []);
});

test("a publish that never reached the server before the drop is sent after the reconnect and numbered", async () => {
  // GIVEN a subscribed client whose socket died right after a publish was written
  const t = await subscribed({ server: { autoAck: true } });
  t.server.hold.add("publish");
  const ack = t.client.publish("lobby", "hello");
  await serveAll(t.server, t.ws);
  t.ws.drop(1006);
  // WHEN the client reconnects
  t.server.hold.delete("publish");
  await t.clock.advance(t.states.at(-1).delay);
  const ws = await openSession(t);
  await serveAll(t.server, ws);
  // THEN the publish resolves with a fresh seq (not a duplicate)
  const result = await ack;
  assert.deepEqual([result.seq, result.duplicate], [1, false]);
});

test("a publish is not resent after resendWindow: it rejects with connection_lost and its msgId", async () => {
  // GIVEN a client with a 100 ms resendWindow whose socket died under a publish (reconnecting takes 500 ms)
  const t = await subscribed({ client: { resendWindow: 100 } });
  const ack = t.client.publish("lobby", "hello");
  await settle();
  const msgId = t.ws.lastSent("publish").msgId;
  t.ws.drop(1006);
  const outcome = assert.rejects(ack, (err) => err.code === "connection_lost" && err.msgId === msgId);
  // WHEN it reconnects
  await t.clock.advance(t.states.at(-1).delay);
  const ws = await openSession(t);
  // THEN the publish was not sent again, and rejects saying so
  await outcome;
  assert.equal(ws.lastSent("publish"), undefined);
});

test("a rate-limited publish is retried after retryAfterMs with the same msgId", async () => {
  // GIVEN a subscribed client
  const t = await subscribed();
  const ack = t.client.publish("lobby", "soon");
  await settle();
  const first = t.ws.lastSent("publish");
  // WHEN the server answers rate_limited with retryAfterMs 300
  t.ws.reply(first, { type: "error", code: "rate_limited", message: "wait 300 ms", retryAfterMs: 300 });
  await t.clock.advance(299);
  // THEN nothing is resent before 300 ms, then the same msgId goes out, and its ack resolves the publish
  assert.equal(published(t.ws).length, 1);
  await t.clock.advance(1);
  const second = t.ws.lastSent("publish");
  assert.deepEqual([published(t.ws).length, second.msgId], [2, first.msgId]);
  t.ws.reply(second, { type: "ack", channel: "lobby", seq: 1, epoch: "e1", delivered: 1, msgId: first.msgId });
  assert.equal((await ack).seq, 1);
});

test("a rate-limited publish whose retryAfterMs ends past its timeout rejects at once with rate_limited", async () => {
  // GIVEN a subscribed client publishing with a 1 s timeout
  const t = await subscribed();
  const ack = t.client.publish("lobby", "late", { timeout: 1000 });
  await settle();
  const frame = t.ws.lastSent("publish");
  // WHEN the server asks it to wait 5 s
  t.ws.reply(frame, { type: "error", code: "rate_limited", message: "wait 5000 ms", retryAfterMs: 5000 });
  // THEN it rejects with the server's code and the msgId, and is never resent
  await assert.rejects(ack, (err) => err.code === "rate_limited" && err.msgId === frame.msgId);
  await t.clock.advance(10_000);
  assert.equal(published(t.ws).length, 1);
});

test("internal_error on a publish is retried with the same msgId, at most twice", async () => {
  // GIVEN a subscribed client (backoff ceilings 1 s, 2 s; random() is 0.5)
  const t = await subscribed();
  const ack = t.client.publish("lobby", "x");
  const outcome = assert.rejects(ack, { code: "internal_error" });
  // WHEN the server answers internal_error three times
  for (const wait of [500, 1000, 0]) {
    await settle();
    t.ws.reply(t.ws.lastSent("publish"), { type: "error", code: "internal_error", message: "dependency down" });
    await t.clock.advance(wait);
  }
  // THEN it was sent three times with one msgId, and the third refusal rejects the publish
  await outcome;
  assert.equal(new Set(published(t.ws).map((f) => f.msgId)).size, 1);
  assert.equal(published(t.ws).length, 3);
});

test("the app can give its own msgId, and a bad one is refused without sending", async () => {
  // GIVEN a subscribed client
  const t = await subscribed({ server: { autoAck: true } });
  // WHEN it publishes with msgId "outbox-17", then with a 65-character msgId
  const ack = t.client.publish("lobby", "mine", { msgId: "outbox-17" });
  await serveAll(t.server, t.ws);
  await assert.rejects(t.client.publish("lobby", "bad", { msgId: "x".repeat(65) }), { code: "invalid_argument" });
  // THEN the first frame carried that msgId, and the second was never sent
  assert.equal((await ack).msgId, "outbox-17");
  assert.deepEqual(
    published(t.ws).map((f) => f.msgId),
    ["outbox-17"],
  );
});

test("publishes queued while offline go out in their original order, the resent one first", async () => {
  // GIVEN a subscribed client with publish "a" in flight when the socket dies, then "b" made while offline
  const t = await subscribed({ server: { autoAck: true } });
  t.server.hold.add("publish");
  const acks = [t.client.publish("lobby", "a")];
  await serveAll(t.server, t.ws);
  t.ws.drop(1006);
  acks.push(t.client.publish("lobby", "b"));
  // WHEN it reconnects
  t.server.hold.delete("publish");
  await t.clock.advance(t.states.at(-1).delay);
  const ws = await openSession(t);
  await serveAll(t.server, ws);
  // THEN "a" went out before "b", and they took seq 1 and 2
  assert.deepEqual(
    published(ws).map((f) => f.data),
    ["a", "b"],
  );
  assert.deepEqual(
    (await Promise.all(acks)).map((a) => a.seq),
    [1, 2],
  );
  assert.equal(FakeWebSocket.instances.length, 2);
});

test("with orderedPublish off, a publish waiting to retry when the socket drops is resent after the reconnect", async () => {
  // GIVEN a client pipelining publishes, whose first publish was rate-limited (retry in 5 s) while a second
  // one is in flight
  const t = await subscribed({ client: { orderedPublish: false }, server: { autoAck: true } });
  t.server.hold.add("publish");
  const first = t.client.publish("lobby", "a");
  const second = t.client.publish("lobby", "b");
  await serveAll(t.server, t.ws);
  const [pa] = published(t.ws);
  t.ws.reply(pa, { type: "error", code: "rate_limited", message: "wait", retryAfterMs: 5000 });
  await settle();
  // WHEN the socket drops before the retry, and the client reconnects
  t.ws.drop(1006);
  t.server.hold.delete("publish");
  await t.clock.advance(t.states.at(-1).delay);
  const ws = await openSession(t);
  await serveAll(t.server, ws);
  // THEN both publishes were resent with their msgIds and are acked
  assert.deepEqual(
    published(ws).map((f) => f.data),
    ["a", "b"],
  );
  assert.deepEqual(
    (await Promise.all([first, second])).map((a) => a.seq),
    [1, 2],
  );
});
