// Riding through drops: backoff between attempts, a fresh token each time, resubscribe, giving up clearly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeWebSocket, openSession, settle, setup } from "../test-support/fakes.mjs";

test("after a drop the client waits a jittered backoff, reconnects, resubscribes and is open again", async () => {
  // GIVEN an open client subscribed to lobby, with random() fixed at 0.5
  const t = await setup();
  t.client.subscribe("lobby", () => {});
  const first = await openSession(t);
  // WHEN the server closes the socket (API Gateway's 2 h limit, say)
  first.drop(1001, "Going away");
  // THEN the client reports reconnecting with a delay of half the 1 s ceiling, and opens no socket before it
  assert.deepEqual(t.states.at(-1).state, "reconnecting");
  assert.equal(t.states.at(-1).delay, 500);
  await t.clock.advance(499);
  assert.equal(FakeWebSocket.instances.length, 1);
  await t.clock.advance(1);
  assert.equal(FakeWebSocket.instances.length, 2);
  // AND the new socket sends hello and subscribe again, and the state is open
  const second = await openSession(t);
  assert.deepEqual(
    second.sent.map((f) => f.action),
    ["hello", "subscribe"],
  );
  assert.equal(second.lastSent("subscribe").channel, "lobby");
  assert.equal(t.client.state, "open");
});

test("consecutive failed attempts back off exponentially up to the cap", async () => {
  // GIVEN a client that has been open once, and a server that now refuses every handshake
  const t = await setup({ client: { random: () => 0.999999 } });
  const ws = await openSession(t);
  ws.drop(1006);
  // WHEN six attempts in a row fail
  const delays = [t.states.at(-1).delay];
  for (let i = 0; i < 6; i++) {
    await t.clock.advance(t.states.at(-1).delay);
    await settle();
    FakeWebSocket.last.drop(1006);
    delays.push(t.states.at(-1).delay);
  }
  // THEN the delays follow the full-jitter ceilings 1, 2, 4, 8, 10, 10, 10 s
  assert.deepEqual(delays, [999, 1999, 3999, 7999, 9999, 9999, 9999]);
  assert.equal(t.client.state, "reconnecting");
});

test("getToken is called for every attempt and its token goes in the token query parameter", async () => {
  // GIVEN a getToken that mints a new token each call
  let minted = 0;
  const t = await setup({ client: { getToken: async () => `tok-${++minted}` } });
  // WHEN the first socket opens, drops, and the client reconnects
  const first = await openSession(t);
  first.drop(1006);
  await t.clock.advance(t.states.at(-1).delay);
  await settle();
  // THEN each socket URL carries a fresh token, and the base URL is kept
  const urls = FakeWebSocket.instances.map((ws) => new URL(ws.url));
  assert.deepEqual(
    urls.map((u) => u.searchParams.get("token")),
    ["tok-1", "tok-2"],
  );
  assert.deepEqual(
    urls.map((u) => u.pathname),
    ["/dev", "/dev"],
  );
});

test("a getToken that throws counts as a failed attempt and is reported as token_error", async () => {
  // GIVEN a getToken whose backend is down
  const t = await setup({
    client: {
      getToken: async () => {
        throw new Error("503 from /token");
      },
    },
  });
  // WHEN the client tries to connect
  await settle();
  // THEN no socket is opened, the error says why, and a retry is scheduled
  assert.equal(FakeWebSocket.instances.length, 0);
  assert.equal(t.errors[0].code, "token_error");
  assert.match(t.errors[0].message, /503 from \/token/);
  assert.equal(t.client.state, "connecting");
  assert.equal(t.states.at(-1).attempt, 2);
});

test("a URL that never answers ends in state closed with connect_failed after maxConnectAttempts", async () => {
  // GIVEN a client allowed 3 attempts at a server that refuses every handshake
  const t = await setup({ client: { maxConnectAttempts: 3 } });
  // WHEN every attempt fails
  for (let i = 0; i < 3; i++) {
    await settle();
    FakeWebSocket.last.drop(1006);
    await t.clock.advance(10_000);
  }
  // THEN the client is closed with a clear error, and tries no more
  assert.equal(t.client.state, "closed");
  assert.equal(t.client.error.code, "connect_failed");
  assert.equal(
    t.client.error.message,
    "gave up after 3 failed attempts to connect to ws://127.0.0.1:9/dev (last error: connect_failed, close code 1006)",
  );
  assert.equal(t.states.at(-1).state, "closed");
  await t.clock.advance(60_000);
  assert.equal(FakeWebSocket.instances.length, 3);
});

test("a handshake that hangs is abandoned after connectTimeout", async () => {
  // GIVEN a 2 s connect timeout and a socket that never opens
  const t = await setup({ client: { connectTimeout: 2000 } });
  await settle();
  const hanging = FakeWebSocket.last;
  // WHEN 2 s pass
  await t.clock.advance(2000);
  // THEN the attempt fails with connect_timeout, the socket is closed, and a retry follows
  assert.equal(t.errors[0].code, "connect_timeout");
  assert.notEqual(hanging.closedWith, null);
  await t.clock.advance(t.states.at(-1).delay);
  assert.equal(FakeWebSocket.instances.length, 2);
});

test("the browser's online event skips the rest of the backoff", async () => {
  // GIVEN a reconnecting client waiting out a backoff, and an event target standing in for window
  const target = new EventTarget();
  const t = await setup({ client: { onlineTarget: target, random: () => 0.999999 } });
  const ws = await openSession(t);
  ws.drop(1006);
  assert.equal(FakeWebSocket.instances.length, 1);
  // WHEN the network comes back
  target.dispatchEvent(new Event("online"));
  await settle();
  // THEN the client attempts at once
  assert.equal(FakeWebSocket.instances.length, 2);
});

test("the token never appears in error messages", async () => {
  // GIVEN a WebSocket constructor that refuses the URL, and a secret token
  class Refusing {
    constructor(url) {
      throw new SyntaxError(`The URL '${url}' is invalid.`.replace(url, "<url>"));
    }
  }
  const t = await setup({ client: { WebSocket: Refusing, token: "s3cr3t-jwt", maxConnectAttempts: 1 } });
  // WHEN the attempt fails and the client gives up
  await settle();
  // THEN the messages name the URL with the token masked
  assert.equal(t.client.state, "closed");
  const messages = t.errors.map((e) => e.message).join("\n");
  assert.match(messages, /token=\*\*\*/);
  assert.doesNotMatch(messages, /s3cr3t-jwt/);
});
