// Tokens never travel over ws:// to another machine: connect() refuses before anything is opened.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, LambdacastError } from "../lambdacast.js";
import { FakeWebSocket } from "../test-support/fakes.mjs";

const quiet = { WebSocket: FakeWebSocket, onlineTarget: {} };

async function opened(client) {
  await new Promise((resolve) => setTimeout(resolve, 0)); // the client connects in a microtask
  client.close();
  return FakeWebSocket.instances.length;
}

test("ws:// with getToken to a remote host is refused with insecure_url, and nothing is opened", async () => {
  // GIVEN the attack: a page wired to ws:// on another machine with a token source
  FakeWebSocket.reset();
  // WHEN connect() is called
  // THEN it throws a LambdacastError saying to use wss://, and no socket was ever created
  assert.throws(
    () => connect("ws://chat.example.com/prod", { ...quiet, getToken: async () => "secret-token" }),
    (err) => err instanceof LambdacastError && err.code === "insecure_url" && /use wss:\/\//.test(err.message),
  );
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(FakeWebSocket.instances.length, 0);
});

test("ws:// with a token option or a token in the URL is refused too", () => {
  FakeWebSocket.reset();
  for (const [url, options] of [
    ["ws://203.0.113.7:3001/dev", { token: "t" }],
    ["ws://chat.example.com/prod?token=t", {}],
    ["ws://localhost.evil.example/dev", { token: "t" }],
    ["ws://127.0.0.1.nip.io/dev", { token: "t" }],
  ]) {
    assert.throws(() => connect(url, { ...quiet, ...options }), { code: "insecure_url" }, url);
  }
  assert.equal(FakeWebSocket.instances.length, 0);
});

test("ws:// with a token to this machine is allowed (local development)", async () => {
  for (const url of ["ws://localhost:3001/dev", "ws://127.0.0.1:3001/dev", "ws://[::1]:3001/dev"]) {
    FakeWebSocket.reset();
    const client = connect(url, { ...quiet, getToken: async () => "t" });
    assert.equal(await opened(client), 1, url);
  }
});

test("wss:// with a token and ws:// without one are allowed anywhere", async () => {
  for (const [url, options] of [
    ["wss://abc123.execute-api.eu-west-1.amazonaws.com/prod", { getToken: async () => "t" }],
    ["ws://chat.example.com/prod", {}],
  ]) {
    FakeWebSocket.reset();
    assert.equal(await opened(connect(url, { ...quiet, ...options })), 1, url);
  }
});
