// The client's requests: session setup, id matching, server errors, timeouts, sockets closing under requests.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, LambdacastError } from "../lambdacast.js";
import { FakeWebSocket, openSession, settle, setup } from "../test-support/fakes.mjs";

test("connecting sends hello and the subscriptions, then reports open with the connection id", async () => {
  // GIVEN a client with one subscription made before the socket opened
  const t = await setup();
  t.client.subscribe("lobby", () => {});
  // WHEN the socket opens and the server answers
  const ws = await openSession(t);
  // THEN hello and subscribe went out with ids, and the state went connecting -> open
  assert.deepEqual(
    ws.sent.map((f) => [f.action, typeof f.id]),
    [
      ["hello", "string"],
      ["subscribe", "string"],
    ],
  );
  assert.deepEqual(
    t.states.map((s) => s.state),
    ["connecting", "open"],
  );
  assert.equal(t.client.connectionId, "conn-0");
  assert.deepEqual(t.client.limits, { maxDataBytes: 32768, maxChannels: 100 });
});

test("replies are matched to requests by id, whatever order they come in", async () => {
  // GIVEN an open client subscribed to two channels
  const t = await setup();
  t.client.subscribe("a", () => {});
  t.client.subscribe("b", () => {});
  const ws = await openSession(t);
  // WHEN two publishes go out and the server acks the second first
  const first = t.client.publish("a", { n: 1 });
  const second = t.client.publish("b", { n: 2 });
  await settle();
  const [pa, pb] = ws.sent.filter((f) => f.action === "publish");
  assert.notEqual(pa.id, pb.id);
  ws.reply(pb, { type: "ack", channel: "b", seq: 9, delivered: 3 });
  ws.reply(pa, { type: "ack", channel: "a", seq: 4, delivered: 1 });
  // THEN each publish resolves with its own ack (and its own msgId)
  assert.deepEqual(await first, { channel: "a", seq: 4, delivered: 1, msgId: pa.msgId, duplicate: false });
  assert.deepEqual(await second, { channel: "b", seq: 9, delivered: 3, msgId: pb.msgId, duplicate: false });
});

test("a publish refused by the server rejects with the server's code and message", async () => {
  // GIVEN an open client subscribed to lobby
  const t = await setup();
  t.client.subscribe("lobby", () => {});
  const ws = await openSession(t);
  // WHEN the server answers the publish (over MaxDataBytes, under the 32 KB frame quota) with too_large
  const publish = t.client.publish("lobby", "x".repeat(31000));
  await settle();
  ws.reply(ws.lastSent("publish"), {
    type: "error",
    code: "too_large",
    message: "data is 31002 bytes; the limit is 30720",
  });
  // THEN the promise rejects with a LambdacastError carrying that code
  await assert.rejects(publish, (err) => {
    assert.ok(err instanceof LambdacastError);
    assert.equal(err.code, "too_large");
    assert.equal(err.fromServer, true);
    assert.match(err.message, /limit is 30720/);
    return true;
  });
});

test("a request with no reply rejects with code timeout once its timeout runs out", async () => {
  // GIVEN an open client with a 5 s request timeout
  const t = await setup({ client: { requestTimeout: 5000 } });
  t.client.subscribe("lobby", () => {});
  await openSession(t);
  // WHEN a publish gets no answer for 5 s
  const publish = t.client.publish("lobby", "hello?");
  const outcome = publish.then(
    () => "resolved",
    (err) => err,
  );
  await t.clock.advance(4999);
  assert.equal(await Promise.race([outcome, Promise.resolve("pending")]), "pending");
  await t.clock.advance(1);
  // THEN it rejects with code timeout, naming the action
  const err = await outcome;
  assert.equal(err.code, "timeout");
  assert.match(err.message, /publish/);
});

test("a socket closing under a request rejects it with code connection_lost", async () => {
  // GIVEN an open client with a history request in flight
  const t = await setup();
  const ws = await openSession(t);
  const page = t.client.history("lobby");
  await settle();
  // WHEN the socket drops before the reply
  ws.drop(1006);
  // THEN the request rejects at once with connection_lost
  await assert.rejects(page, { code: "connection_lost", action: "history" });
});

test("an error frame without an id is reported on the 'error' event", async () => {
  // GIVEN an open client
  const t = await setup();
  const ws = await openSession(t);
  // WHEN the server sends an unsolicited error frame
  ws.receive({ type: "error", code: "invalid_json", message: "the frame is not JSON" });
  // THEN the app hears it with the server's code
  assert.deepEqual(
    t.errors.map((e) => e.code),
    ["invalid_json"],
  );
});

test("a subscription the server refuses rejects its ready promise with the server's code", async () => {
  // GIVEN a server that forbids private-x
  const t = await setup();
  t.server.refuse.set("private-x", "forbidden");
  const received = [];
  const sub = t.client.subscribe("private-x", (m) => received.push(m));
  // WHEN the session opens
  await openSession(t);
  // THEN ready rejects with forbidden, the error event names the channel, and the client stays open
  await assert.rejects(sub.ready, { code: "forbidden", channel: "private-x" });
  assert.equal(t.errors.at(-1).channel, "private-x");
  assert.equal(t.client.state, "open");
});

test("bad arguments fail at once with clear errors and send nothing", async () => {
  // GIVEN an open client
  const t = await setup();
  const ws = await openSession(t);
  const sentBefore = ws.sent.length;
  // WHEN it is asked for an invalid channel, undefined data, or a frame bigger than API Gateway allows
  // THEN each call fails with its own code
  assert.throws(() => t.client.subscribe("no spaces allowed", () => {}), { code: "invalid_channel" });
  await assert.rejects(t.client.publish("lobby", undefined), { code: "invalid_data" });
  await assert.rejects(t.client.publish("lobby", "x".repeat(200 * 1024)), { code: "too_large" });
  assert.equal(ws.sent.length, sentBefore);
});

test("a URL that is not ws:// or wss:// is refused by connect()", () => {
  // GIVEN / WHEN connect is called with an http URL or garbage
  // THEN it throws invalid_url before opening anything
  FakeWebSocket.reset();
  assert.throws(() => connect("http://example.com/", { WebSocket: FakeWebSocket }), { code: "invalid_url" });
  assert.throws(() => connect("not a url", { WebSocket: FakeWebSocket }), { code: "invalid_url" });
  assert.equal(FakeWebSocket.instances.length, 0);
});

test("close() rejects what is in flight and queued, and never reconnects", async () => {
  // GIVEN an open client with one publish in flight and a socket that then drops with one queued
  const t = await setup();
  t.client.subscribe("lobby", () => {});
  const ws = await openSession(t);
  const inFlight = t.client.publish("lobby", 1);
  await settle();
  // WHEN the app closes the client
  t.client.close();
  // THEN the publish rejects with closed, the state is closed, the socket was closed normally
  await assert.rejects(inFlight, { code: "closed" });
  await assert.rejects(t.client.publish("lobby", 2), { code: "closed" });
  assert.equal(t.client.state, "closed");
  assert.equal(ws.closedWith.code, 1000);
  // AND no new socket is ever opened
  await t.clock.advance(60_000);
  assert.equal(FakeWebSocket.instances.length, 1);
});

test("request() sends any action and resolves with the reply matched by id", async () => {
  // GIVEN an open client
  const t = await setup();
  const ws = await openSession(t);
  // WHEN the app asks for a channel's history, an action without its own method
  const reply = t.client.request({ action: "history", channel: "lobby", limit: 2 });
  await settle();
  const sent = ws.lastSent("history");
  ws.reply(sent, { type: "history", channel: "lobby", messages: [] });
  // THEN the frame went out with an id and the promise resolves with the reply
  assert.equal(typeof sent.id, "string");
  assert.equal(sent.limit, 2);
  assert.deepEqual(await reply, { type: "history", channel: "lobby", messages: [], id: sent.id });
});

test("request() refuses a frame with its own id, and rejects while no session is open", async () => {
  // GIVEN a client that is still connecting
  const t = await setup();
  // WHEN requests are made with an id, or before the session opens
  // THEN they reject clearly and nothing is sent
  await assert.rejects(t.client.request({ action: "ping", id: "mine" }), { code: "invalid_frame" });
  await assert.rejects(t.client.request({ action: "ping" }), { code: "connection_lost" });
  const ws = await openSession(t);
  assert.equal(ws.lastSent("ping"), undefined);
});

test("a publish whose frame would exceed API Gateway's 32 KB frame quota is refused locally; the socket stays open", async () => {
  // GIVEN an open client (API Gateway closes a socket with 1009 on any frame over 32 KB; browsers never fragment)
  const t = await setup();
  const ws = await openSession(t);
  const sentBefore = ws.sent.length;
  // WHEN it publishes data whose frame is just over 32 KB (the data alone is under 128 KB)
  const err = await t.client.publish("lobby", "x".repeat(32 * 1024)).catch((e) => e);
  // THEN it rejects with too_large naming the 32 KB limit, nothing was sent and the socket is untouched
  assert.ok(err instanceof LambdacastError);
  assert.equal(err.code, "too_large");
  assert.match(err.message, /32768/);
  assert.equal(ws.sent.length, sentBefore);
  assert.equal(ws.closedWith, null);
  assert.equal(ws.readyState, 1);
  assert.equal(t.client.state, "open");
});

test("a publish of the largest data the server accepts (MaxDataBytes 30720) fits in one frame and is sent", async () => {
  // GIVEN an open client
  const t = await setup();
  const ws = await openSession(t);
  // WHEN it publishes 30720 bytes of serialized data (a 30718-character string plus its quotes)
  const pending = t.client.publish("lobby", "y".repeat(30718));
  await settle();
  // THEN the frame went out
  const frame = ws.lastSent("publish");
  assert.equal(JSON.stringify(frame.data).length, 30720);
  assert.ok(new TextEncoder().encode(JSON.stringify(frame)).length <= 32 * 1024);
  ws.reply(frame, { type: "ack", channel: "lobby", seq: 1, delivered: 0 });
  assert.equal((await pending).seq, 1);
});

test("any request frame over maxFrameBytes is refused with too_large before reaching the socket", async () => {
  // GIVEN an open client whose frame limit is lowered to 40 bytes
  const t = await setup({ client: { maxFrameBytes: 40 } });
  const ws = await openSession(t);
  const sentBefore = ws.sent.length;
  // WHEN it asks for a history page (a frame of more than 40 bytes)
  const err = await t.client.history("a-rather-long-channel-name-for-this-test").catch((e) => e);
  // THEN the request rejects with too_large and nothing was sent
  assert.equal(err.code, "too_large");
  assert.equal(ws.sent.length, sentBefore);
  assert.equal(ws.readyState, 1);
});
