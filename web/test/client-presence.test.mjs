// Presence: client.presence(), member events, and the live member list of a presence- subscription.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeWebSocket, openSession, serveAll, settle, setup } from "../test-support/fakes.mjs";

const ada = { userId: "user-42", info: { name: "Ada" } };
const alice = { userId: "alice", info: { name: "Alice" } };
const bob = { userId: "bob", info: null };
const joined = (member) => ({ type: "member_joined", channel: "presence-room", member });
const left = (member) => ({ type: "member_left", channel: "presence-room", member });
const ids = (members) => members.map((m) => m.userId);

test("presence() asks the server and resolves with the members", async () => {
  // GIVEN an open client and a room with Ada and Alice
  const t = await setup();
  t.server.members.set("presence-room", [alice, ada]);
  const ws = await openSession(t);
  // WHEN the app asks who is there
  const members = t.client.presence("presence-room");
  await settle();
  t.server.serve(ws);
  // THEN the frame names the channel and the reply's members come back
  assert.deepEqual(await members, [alice, ada]);
  assert.equal(ws.lastSent("presence").channel, "presence-room");
});

test("presence() on a channel that is not a presence- channel is refused without a request", async () => {
  // GIVEN an open client
  const t = await setup();
  const ws = await openSession(t);
  // WHEN / THEN presence on lobby rejects with invalid_channel and sends nothing
  await assert.rejects(t.client.presence("lobby"), { code: "invalid_channel" });
  assert.equal(ws.lastSent("presence"), undefined);
});

test("a presence subscription gets the member list after subscribing, then each join and leave", async () => {
  // GIVEN a room where Ada already is
  const t = await setup();
  t.server.members.set("presence-room", [ada]);
  const calls = [];
  const sub = t.client.subscribe("presence-room", () => {}, {
    onPresence: (members, change) => calls.push([ids(members), change.type]),
  });
  // WHEN the client subscribes, then Alice joins, Bob joins and Ada leaves
  const ws = await openSession(t);
  assert.equal(ws.lastSent("presence").channel, "presence-room");
  ws.receive(joined(alice));
  ws.receive(joined(bob));
  ws.receive(left(ada));
  // THEN onPresence saw each state, sorted by userId, and the subscription holds the latest
  assert.deepEqual(calls, [
    [["user-42"], "snapshot"],
    [["alice", "user-42"], "member_joined"],
    [["alice", "bob", "user-42"], "member_joined"],
    [["alice", "bob"], "member_left"],
  ]);
  assert.deepEqual(sub.members, [alice, bob]);
});

test("member events arriving while the snapshot is in flight are applied after it", async () => {
  // GIVEN a room with Ada, whose presence reply the server holds back
  const t = await setup();
  t.server.members.set("presence-room", [ada]);
  t.server.hold.add("presence");
  const lists = [];
  const sub = t.client.subscribe("presence-room", () => {}, { onPresence: (members) => lists.push(ids(members)) });
  const ws = await openSession(t);
  // WHEN Alice joins and Ada leaves before the snapshot (taken earlier, with Ada only) arrives
  ws.receive(joined(alice));
  ws.receive(left(ada));
  assert.equal(sub.members, null);
  ws.reply(ws.lastSent("presence"), { type: "presence", channel: "presence-room", members: [ada] });
  await settle();
  // THEN the list is the snapshot with both changes applied
  assert.deepEqual(lists, [["alice"]]);
  assert.deepEqual(ids(sub.members), ["alice"]);
});

test("after a reconnect the member list is fetched again (changes while offline were missed)", async () => {
  // GIVEN a presence subscription that knew Ada, then lost its socket while Ada left and Bob joined
  const t = await setup();
  t.server.members.set("presence-room", [ada]);
  const sub = t.client.subscribe("presence-room", () => {}, { onPresence: () => {} });
  const first = await openSession(t);
  first.drop(1006);
  t.server.members.set("presence-room", [bob]);
  // WHEN it reconnects
  await t.clock.advance(t.states.at(-1).delay);
  await openSession(t);
  // THEN the list is the new snapshot
  assert.deepEqual(sub.members, [bob]);
  assert.equal(FakeWebSocket.instances.length, 2);
});

test("member_joined and member_left are also events on the client", async () => {
  // GIVEN an open client listening to member events
  const t = await setup();
  const events = [];
  t.client.on("member_joined", (e) => events.push(["joined", e.channel, e.member.userId]));
  t.client.on("member_left", (e) => events.push(["left", e.channel, e.member.userId]));
  const ws = await openSession(t);
  // WHEN the server announces a join and a leave
  ws.receive(joined(alice));
  ws.receive(left(alice));
  // THEN both are emitted with the channel and member
  assert.deepEqual(events, [
    ["joined", "presence-room", "alice"],
    ["left", "presence-room", "alice"],
  ]);
});

test("a full presence channel rejects the subscription with too_many_members", async () => {
  // GIVEN a server whose presence-room is full
  const t = await setup();
  t.server.refuse.set("presence-room", "too_many_members");
  const sub = t.client.subscribe("presence-room", () => {}, { onPresence: () => {} });
  // WHEN the session opens
  await openSession(t);
  // THEN ready rejects with the server's code and no presence was asked for
  await assert.rejects(sub.ready, { code: "too_many_members", channel: "presence-room" });
  assert.equal(FakeWebSocket.last.lastSent("presence"), undefined);
  assert.equal(t.client.state, "open");
});

test("a forbidden presence request surfaces the server's code", async () => {
  // GIVEN an open client, and a server that refuses presence on the room
  const t = await setup();
  t.server.hold.add("presence");
  const ws = await openSession(t);
  // WHEN the app asks who is there and the server answers forbidden
  const members = t.client.presence("presence-room");
  await settle();
  ws.reply(ws.lastSent("presence"), { type: "error", code: "forbidden", message: "no grant" });
  // THEN presence() rejects with forbidden, marked as coming from the server
  await assert.rejects(members, (err) => err.code === "forbidden" && err.fromServer === true);
  await serveAll(t.server, ws);
});

test("a second subscriber to a room already known gets the current list at once, without a new request", async () => {
  // GIVEN a presence subscription that knows Ada and Alice
  const t = await setup();
  t.server.members.set("presence-room", [ada, alice]);
  t.client.subscribe("presence-room", () => {}, { onPresence: () => {} });
  const ws = await openSession(t);
  const requests = ws.sent.filter((f) => f.action === "presence").length;
  // WHEN another part of the app subscribes to the same room with onPresence
  const lists = [];
  t.client.subscribe("presence-room", () => {}, {
    onPresence: (members, change) => lists.push([ids(members), change.type]),
  });
  await settle();
  // THEN it is called with the known list, and no presence request was sent
  assert.deepEqual(lists, [[["alice", "user-42"], "snapshot"]]);
  assert.equal(ws.sent.filter((f) => f.action === "presence").length, requests);
});

test("a throwing onPresence is reported and does not stop the others", async () => {
  // GIVEN two presence subscribers to one room, the first of which throws
  const t = await setup();
  const seen = [];
  t.client.subscribe("presence-room", () => {}, {
    onPresence: () => {
      throw new Error("boom");
    },
  });
  t.client.subscribe("presence-room", () => {}, { onPresence: (members) => seen.push(ids(members)) });
  // WHEN the snapshot arrives
  await openSession(t);
  // THEN the second still got it and the error names the channel
  assert.deepEqual(seen, [[]]);
  assert.equal(t.errors.at(-1).code, "handler_error");
  assert.equal(t.errors.at(-1).channel, "presence-room");
});

/** An open client with a presence subscription to presence-room whose snapshot is `members` at version `v`. */
async function room(members, v) {
  const t = await setup();
  t.server.members.set("presence-room", members);
  t.server.presenceVersions.set("presence-room", v);
  const calls = [];
  const sub = t.client.subscribe("presence-room", () => {}, {
    onPresence: (list, change) => calls.push([ids(list), change.type]),
  });
  const ws = await openSession(t);
  return { ...t, ws, sub, calls };
}

const at = (frame, v) => ({ ...frame, v });

test("a member_left older than the same user's member_joined does not remove the user", async () => {
  // GIVEN a room at version 4 where Ada and Alice are
  const t = await room([ada, alice], 4);
  // WHEN Alice left (v5) and came back (v6), but the join arrives before the leave
  t.ws.receive(at(joined(alice), 6));
  t.ws.receive(at(left(alice), 5));
  // THEN the changes were applied in version order, and Alice is present
  assert.deepEqual(ids(t.sub.members), ["alice", "user-42"]);
  assert.deepEqual(t.calls.slice(1), [
    [["user-42"], "member_left"],
    [["alice", "user-42"], "member_joined"],
  ]);
});

test("a member event at or below the version held is stale and ignored", async () => {
  // GIVEN a room at version 7 with Ada
  const t = await room([ada], 7);
  const events = [];
  t.client.on("member_left", (e) => events.push(e));
  // WHEN a member_left of Ada with v 7 arrives (the snapshot already counted it)
  t.ws.receive(at(left(ada), 7));
  // THEN Ada stays, and no event is emitted
  assert.deepEqual(ids(t.sub.members), ["user-42"]);
  assert.deepEqual(events, []);
});

test("when a presence version stays missing for the reorder window, the list is fetched again", async () => {
  // GIVEN a room at version 2 with Ada
  const t = await room([ada], 2);
  const requests = () => t.ws.sent.filter((f) => f.action === "presence").length;
  assert.equal(requests(), 1);
  // WHEN v4 (Bob joined) arrives and v3 (Alice joined) never does
  t.ws.receive(at(joined(bob), 4));
  t.server.members.set("presence-room", [ada, alice, bob]);
  t.server.presenceVersions.set("presence-room", 4);
  await t.clock.advance(999);
  assert.equal(requests(), 1);
  await t.clock.advance(1);
  await serveAll(t.server, t.ws);
  // THEN after the window one snapshot request was made, the list is the server's, and no more follow
  assert.equal(requests(), 2);
  assert.deepEqual(ids(t.sub.members), ["alice", "bob", "user-42"]);
  await t.clock.advance(10_000);
  await serveAll(t.server, t.ws);
  assert.equal(requests(), 2);
});

test("member events carry their presence version", async () => {
  // GIVEN a room at version 1
  const t = await room([], 1);
  const events = [];
  t.client.on("member_joined", (e) => events.push([e.member.userId, e.v]));
  // WHEN Alice joins at v2
  t.ws.receive(at(joined(alice), 2));
  // THEN the event says so
  assert.deepEqual(events, [["alice", 2]]);
});

test("a member event that the snapshot in flight already counts is not applied on top of it", async () => {
  // GIVEN a room whose presence reply is held, with Ada and Alice
  const t = await setup();
  t.server.hold.add("presence");
  const sub = t.client.subscribe("presence-room", () => {}, { onPresence: () => {} });
  const ws = await openSession(t);
  // WHEN Alice's leave (v4) arrives while the snapshot is in flight, and the snapshot, read after Alice
  // came back (v5), lists her
  ws.receive(at(left(alice), 4));
  ws.reply(ws.lastSent("presence"), { type: "presence", channel: "presence-room", members: [ada, alice], v: 5 });
  await settle();
  // THEN Alice is present: the leave was older than the snapshot
  assert.deepEqual(ids(sub.members), ["alice", "user-42"]);
});
