// client.history(), client.reconnect() (e.g. after sign-in) and the issue-5 refusals surfaced with their codes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeWebSocket, messageFrame, openSession, settle, setup } from "../test-support/fakes.mjs";

test("history() sends limit and before and resolves with the messages in seq order", async () => {
  // GIVEN an open client and a channel with 10 stored messages
  const t = await setup();
  t.server.published("lobby", 10);
  const ws = await openSession(t);
  // WHEN the app asks for 3 messages before seq 8
  const page = t.client.history("lobby", { limit: 3, before: 8 });
  await settle();
  t.server.serve(ws);
  // THEN the frame carries both and the reply's messages come back
  assert.deepEqual(
    (await page).map((m) => m.seq),
    [5, 6, 7],
  );
  const sent = ws.lastSent("history");
  assert.deepEqual([sent.channel, sent.limit, sent.before], ["lobby", 3, 8]);
});

test("history() without options leaves limit and before to the server (newest 50)", async () => {
  // GIVEN an open client and a channel with 60 stored messages
  const t = await setup();
  t.server.published("lobby", 60);
  const ws = await openSession(t);
  // WHEN the app asks for the history
  const page = t.client.history("lobby");
  await settle();
  t.server.serve(ws);
  // THEN the frame has neither field and the newest 50 come back
  assert.deepEqual(
    (await page).map((m) => m.seq),
    Array.from({ length: 50 }, (_, i) => 11 + i),
  );
  assert.deepEqual(Object.keys(ws.lastSent("history")).sort(), ["action", "channel", "id"]);
});

test("history() with a bad limit, before or channel is refused at once and sends nothing", async () => {
  // GIVEN an open client
  const t = await setup();
  const ws = await openSession(t);
  // WHEN / THEN each bad argument rejects with a clear code
  await assert.rejects(t.client.history("lobby", { limit: 101 }), { code: "invalid_argument" });
  await assert.rejects(t.client.history("lobby", { limit: 0 }), { code: "invalid_argument" });
  await assert.rejects(t.client.history("lobby", { before: 0 }), { code: "invalid_argument" });
  await assert.rejects(t.client.history("lobby #1"), { code: "invalid_channel" });
  assert.equal(ws.lastSent("history"), undefined);
});

test("history() called before the connection is open waits for it", async () => {
  // GIVEN a client still connecting, and a channel with 2 stored messages
  const t = await setup();
  t.server.published("lobby", 2);
  // WHEN the app asks for the history at once
  const page = t.client.history("lobby", { limit: 5 });
  const ws = await openSession(t);
  await settle();
  t.server.serve(ws);
  // THEN the request went out once the session was open, and resolved
  assert.deepEqual(
    (await page).map((m) => m.seq),
    [1, 2],
  );
});

test("history() rejects with timeout when no connection opens within the request timeout", async () => {
  // GIVEN a client whose handshakes never complete
  const t = await setup({ client: { requestTimeout: 5_000, connectTimeout: 60_000 } });
  // WHEN the app asks for the history and 5 s pass
  const page = t.client.history("lobby");
  const outcome = assert.rejects(page, { code: "timeout", action: "history" });
  await t.clock.advance(5_000);
  // THEN it rejects with timeout, having sent nothing
  await outcome;
  assert.equal(FakeWebSocket.last.sent.length, 0);
});

test("a refused history request rejects with the server's code", async () => {
  // GIVEN an open client, and a server that forbids history on private-x
  const t = await setup();
  t.server.hold.add("history");
  const ws = await openSession(t);
  // WHEN the app asks and the server answers forbidden
  const page = t.client.history("private-x");
  await settle();
  ws.reply(ws.lastSent("history"), { type: "error", code: "forbidden", message: "no grant for private-x" });
  // THEN history() rejects with forbidden
  await assert.rejects(page, { code: "forbidden", message: "no grant for private-x" });
});

test("a rate-limited publish rejects with rate_limited, and the next publish still goes out", async () => {
  // GIVEN a subscribed client
  const t = await setup();
  t.client.subscribe("lobby", () => {});
  const ws = await openSession(t);
  // WHEN the server refuses the first publish with rate_limited
  const first = t.client.publish("lobby", "too fast");
  await settle();
  ws.reply(ws.lastSent("publish"), {
    type: "error",
    code: "rate_limited",
    message: "wait 100 ms before publishing again.",
  });
  // THEN it rejects with the server's code and message
  await assert.rejects(first, (err) => err.code === "rate_limited" && err.fromServer && /100 ms/.test(err.message));
  // AND a later publish is sent and acknowledged
  const second = t.client.publish("lobby", "later");
  await settle();
  ws.reply(ws.lastSent("publish"), { type: "ack", channel: "lobby", seq: 1, delivered: 1 });
  assert.equal((await second).seq, 1);
});

test("reconnect() opens a new socket at once with a fresh token and keeps the subscriptions", async () => {
  // GIVEN a subscribed client whose getToken changes after sign-in
  let token = "anonymous-token";
  const t = await setup({ client: { getToken: async () => token } });
  const got = [];
  t.client.subscribe("lobby", (m) => got.push(m.seq));
  const first = await openSession(t);
  first.receive(messageFrame("lobby", 1));
  // WHEN the app signs in and calls reconnect()
  token = "signed-in-token";
  t.client.reconnect();
  await t.clock.advance(0);
  const second = await openSession(t);
  // THEN the old socket was closed, the new one carries the new token and resubscribes with since
  assert.notEqual(first.closedWith, null);
  assert.equal(new URL(second.url).searchParams.get("token"), "signed-in-token");
  assert.equal(second.lastSent("subscribe").since, 1);
  // AND it is not reported as an error, and the client is open again
  assert.deepEqual(t.errors, []);
  assert.equal(t.client.state, "open");
});

test("reconnect() on a closed client throws closed", async () => {
  // GIVEN a closed client
  const t = await setup();
  t.client.close();
  // WHEN / THEN reconnect throws
  assert.throws(() => t.client.reconnect(), { code: "closed" });
});

test("history() waiting for the connection rejects with closed when the client is closed", async () => {
  // GIVEN a client still connecting, with a history request waiting for the session
  const t = await setup();
  const page = t.client.history("lobby");
  const outcome = assert.rejects(page, { code: "closed" });
  // WHEN the app closes the client
  t.client.close();
  // THEN the request rejects with closed and nothing was sent
  await outcome;
  await settle();
  assert.equal(FakeWebSocket.instances.length, 0);
});
