// Test doubles for the client's injectable parts: a clock with timers, and a WebSocket class.
// No test lives here; the *.test.mjs files import these.
import { connect } from "../lambdacast.js";

/** Let every pending promise callback run (setImmediate runs after the microtask queue drains). */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Timers that only fire when the test advances time. */
export class FakeClock {
  constructor() {
    this.time = 0;
    this._timers = new Map();
    this._nextHandle = 1;
    this.now = () => this.time;
    this.timers = {
      setTimeout: (fn, ms) => {
        const handle = this._nextHandle++;
        this._timers.set(handle, { fn, at: this.time + Math.max(0, ms ?? 0), handle, ms });
        return handle;
      },
      clearTimeout: (handle) => {
        this._timers.delete(handle);
      },
    };
  }

  /** The delays (ms, as requested) of the timers still pending. */
  pendingDelays() {
    return [...this._timers.values()].map((t) => t.ms);
  }

  /** Move time forward, firing due timers in order and letting promises settle after each. */
  async advance(ms) {
    const target = this.time + ms;
    await settle();
    for (;;) {
      const due = [...this._timers.values()]
        .filter((t) => t.at <= target)
        .sort((a, b) => a.at - b.at || a.handle - b.handle);
      if (due.length === 0) break;
      const timer = due[0];
      this._timers.delete(timer.handle);
      this.time = timer.at;
      timer.fn();
      await settle();
    }
    this.time = target;
    await settle();
  }
}

/**
 * A WebSocket stand-in. Every instance is recorded in `FakeWebSocket.instances`; tests drive it with
 * accept() / reply() / drop() and read what the client sent from `sent` (parsed frames).
 */
export class FakeWebSocket {
  static instances = [];

  static reset() {
    FakeWebSocket.instances = [];
  }

  static get last() {
    return FakeWebSocket.instances.at(-1);
  }

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeWebSocket.instances.push(this);
  }

  send(text) {
    if (this.readyState !== 1) throw new Error("InvalidStateError: the socket is not open");
    this.sent.push(JSON.parse(text));
  }

  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  // ---- the server's side ----

  accept() {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(frame) {
    this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }

  /** The last frame sent with this action. */
  lastSent(action) {
    return this.sent.filter((f) => f.action === action).at(-1);
  }

  /** Answer a request frame: `reply(request, {type: "ack", ...})` echoes its id. */
  reply(request, frame) {
    this.receive({ ...frame, id: request.id });
  }

  /** The network or the server closes the socket. */
  drop(code = 1006, reason = "") {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }
}

/** A message frame as the server posts it. */
export function messageFrame(channel, seq, data = `m${seq}`) {
  return { type: "message", channel, seq, data, from: { connectionId: "x", userId: null }, ts: 0 };
}

/**
 * A scripted lambdacast server on top of FakeWebSocket: answers hello, subscribe (with `since`: replay or
 * `recovered: false`, like protocol v1), unsubscribe, ping, history and presence; tracks per-channel seq
 * and a message log; leaves publish to the test unless `autoAck` is set.
 */
export class FakeServer {
  constructor({ autoAck = false } = {}) {
    this.autoAck = autoAck;
    this.seq = new Map();
    this.log = new Map(); // channel -> message frames in seq order (what `history` and recovery read)
    this.retainedFrom = new Map(); // channel -> oldest seq still in the history (older ones expired)
    this.members = new Map(); // presence channel -> [{userId, info}]
    this.answered = new WeakMap();
    this.silent = false; // true: answer nothing (a half-open socket)
    this.hold = new Set(); // actions left unanswered (the test answers them with ws.reply)
    this.refuse = new Map(); // channel -> error code for subscribe
    this.requests = []; // every frame served, in order
    this.maxHistoryPage = Infinity; // messages per history reply before it is cut with `more` (size bound)
  }

  /** Someone else publishes: the message is numbered and stored, and posted to nobody. */
  published(channel, count = 1) {
    const frames = [];
    for (let i = 0; i < count; i += 1) {
      const seq = (this.seq.get(channel) ?? 0) + 1;
      this.seq.set(channel, seq);
      const frame = messageFrame(channel, seq);
      if (!this.log.has(channel)) this.log.set(channel, []);
      this.log.get(channel).push(frame);
      frames.push(frame);
    }
    return frames;
  }

  _retained(channel) {
    const from = this.retainedFrom.get(channel) ?? 1;
    return (this.log.get(channel) ?? []).filter((m) => m.seq >= from);
  }

  _subscribe(ws, f) {
    const seq = this.seq.get(f.channel) ?? 0;
    if (f.since === undefined) return ws.reply(f, { type: "subscribed", channel: f.channel, seq });
    const missed = this._retained(f.channel).filter((m) => m.seq > f.since);
    const recovered =
      f.since === seq || (f.since < seq && seq - f.since <= 100 && missed.length > 0 && missed[0].seq === f.since + 1);
    if (recovered) for (const m of missed) ws.receive(m);
    ws.reply(f, { type: "subscribed", channel: f.channel, seq, recovered });
  }

  _history(ws, f) {
    const before = f.before ?? Infinity;
    const older = this._retained(f.channel).filter((m) => m.seq < before);
    const page = older.slice(-(f.limit ?? 50));
    if (page.length <= this.maxHistoryPage) return ws.reply(f, { type: "history", channel: f.channel, messages: page });
    const cut = page.slice(-this.maxHistoryPage); // the server keeps the newest that fit one post
    ws.reply(f, { type: "history", channel: f.channel, more: true, before: cut[0].seq, messages: cut });
  }

  /** Answer every unanswered request on `ws` (call after settle()). */
  serve(ws) {
    if (this.silent) return;
    const done = this.answered.get(ws) ?? 0;
    const todo = ws.sent.slice(done);
    this.answered.set(ws, ws.sent.length);
    for (const f of todo) {
      this.requests.push(f);
      if (this.hold.has(f.action)) continue;
      if (f.action === "hello") {
        ws.reply(f, {
          type: "welcome",
          connectionId: `conn-${FakeWebSocket.instances.indexOf(ws)}`,
          userId: null,
          protocol: 1,
          limits: { maxDataBytes: 32768, maxChannels: 100 },
        });
      } else if (f.action === "subscribe") {
        const code = this.refuse.get(f.channel);
        if (code) ws.reply(f, { type: "error", code, message: `subscribe refused: ${code}` });
        else this._subscribe(ws, f);
      } else if (f.action === "unsubscribe") {
        ws.reply(f, { type: "unsubscribed", channel: f.channel });
      } else if (f.action === "history") {
        this._history(ws, f);
      } else if (f.action === "presence") {
        ws.reply(f, { type: "presence", channel: f.channel, members: this.members.get(f.channel) ?? [] });
      } else if (f.action === "ping") {
        ws.reply(f, { type: "pong", ts: 0 });
      } else if (f.action === "publish" && this.autoAck) {
        const seq = (this.seq.get(f.channel) ?? 0) + 1;
        this.seq.set(f.channel, seq);
        ws.reply(f, { type: "ack", channel: f.channel, seq, delivered: 1 });
      }
    }
  }
}

/**
 * A client wired to the fakes. Returns the client, the clock, the scripted server and
 * the recorded 'state' and 'error' events.
 */
export async function setup({ client: clientOptions = {}, server: serverOptions = {} } = {}) {
  FakeWebSocket.reset();
  const clock = new FakeClock();
  const server = new FakeServer(serverOptions);
  const client = connect("ws://127.0.0.1:9/dev", {
    WebSocket: FakeWebSocket,
    timers: clock.timers,
    now: clock.now,
    random: () => 0.5,
    onlineTarget: {},
    ...clientOptions,
  });
  const states = [];
  const errors = [];
  client.on("state", (state, info) => states.push({ state, ...info }));
  client.on("error", (err) => errors.push(err));
  return { client, clock, server, states, errors };
}

/** Accept the newest socket and let the server answer the session setup (hello + resubscribes). */
export async function openSession({ server }) {
  await settle();
  const ws = FakeWebSocket.last;
  ws.accept();
  await settle();
  await serveAll(server, ws);
  return ws;
}

/** Let the server answer until the client sends nothing more (e.g. the history pages of a recovery). */
export async function serveAll(server, ws) {
  for (let round = 0; round < 50; round += 1) {
    const before = ws.sent.length;
    server.serve(ws);
    await settle();
    if (ws.sent.length === before) return;
  }
  throw new Error("the client kept sending requests after 50 rounds");
}
