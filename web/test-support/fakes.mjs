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

/** The epoch every channel of a FakeServer starts in. */
export const FIRST_EPOCH = "e1";

/** A message frame as the server posts it. */
export function messageFrame(channel, seq, data = `m${seq}`, epoch = FIRST_EPOCH) {
  return { type: "message", channel, seq, epoch, data, from: { userId: null }, ts: 0 };
}

/**
 * A scripted lambdacast server on top of FakeWebSocket: answers hello, subscribe (with `since` and `epoch`:
 * replay or `recovered: false`, or a replay of the new epoch with `reset: true`, like protocol v1), unsubscribe,
 * ping, history and presence (with its version `v`); tracks per-channel epoch, seq and a message log; leaves
 * publish to the test unless `autoAck` is set (then a repeated msgId gets the original seq, `duplicate: true`).
 */
export class FakeServer {
  constructor({ autoAck = false } = {}) {
    this.autoAck = autoAck;
    this.epochs = new Map(); // channel -> its epoch (FIRST_EPOCH until restart())
    this.restarts = 0;
    this.numbered = new Map(); // channel -> Map(msgId -> seq), for idempotent publish
    this.following = new WeakMap(); // ws -> Set of channels it is subscribed to
    this.presenceVersions = new Map(); // presence channel -> v of `members`
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

  epoch(channel) {
    return this.epochs.get(channel) ?? FIRST_EPOCH;
  }

  /** The channel's counter is created again (a restarted `make dev`, a new table): a new epoch, from seq 0. */
  restart(channel) {
    this.restarts += 1;
    this.epochs.set(channel, `e${this.restarts + 1}`);
    this.seq.delete(channel);
    this.log.delete(channel);
    this.retainedFrom.delete(channel);
    this.numbered.delete(channel);
  }

  /** Someone else publishes: the message is numbered and stored, and posted to nobody. */
  published(channel, count = 1) {
    const frames = [];
    for (let i = 0; i < count; i += 1) frames.push(this._number(channel, `m${(this.seq.get(channel) ?? 0) + 1}`));
    return frames;
  }

  _number(channel, data, msgId) {
    const seq = (this.seq.get(channel) ?? 0) + 1;
    this.seq.set(channel, seq);
    const frame = messageFrame(channel, seq, data, this.epoch(channel));
    if (msgId !== undefined) {
      frame.msgId = msgId;
      if (!this.numbered.has(channel)) this.numbered.set(channel, new Map());
      this.numbered.get(channel).set(msgId, seq);
    }
    if (!this.log.has(channel)) this.log.set(channel, []);
    this.log.get(channel).push(frame);
    return frame;
  }

  _retained(channel) {
    const from = this.retainedFrom.get(channel) ?? 1;
    return (this.log.get(channel) ?? []).filter((m) => m.seq >= from);
  }

  _subscribe(ws, f) {
    const seq = this.seq.get(f.channel) ?? 0;
    const epoch = this.epoch(f.channel);
    if (!this.following.has(ws)) this.following.set(ws, new Set());
    const already = this.following.get(ws).has(f.channel);
    this.following.get(ws).add(f.channel);
    const reply = { type: "subscribed", channel: f.channel, seq, epoch };
    if (f.since === undefined) return ws.reply(f, reply);
    if (already) return ws.reply(f, { ...reply, recovered: false }); // it received everything live
    if (f.epoch !== epoch) {
      // The client missed the whole current epoch: replay it from seq 1, within 100 messages.
      const replay = this._retained(f.channel).slice(0, 100);
      for (const m of replay) ws.receive(m);
      const recovered = seq === 0 || (replay.length === seq && replay[0].seq === 1);
      return ws.reply(f, { ...reply, recovered, reset: true });
    }
    const missed = this._retained(f.channel).filter((m) => m.seq > f.since);
    const recovered =
      f.since === seq || (f.since < seq && seq - f.since <= 100 && missed.length > 0 && missed[0].seq === f.since + 1);
    if (recovered) for (const m of missed) ws.receive(m);
    ws.reply(f, { ...reply, recovered });
  }

  _history(ws, f) {
    const before = f.before ?? Infinity;
    const older = this._retained(f.channel).filter((m) => m.seq < before);
    const page = older.slice(-(f.limit ?? 50));
    const reply = { type: "history", channel: f.channel, epoch: this.epoch(f.channel) };
    if (page.length <= this.maxHistoryPage) return ws.reply(f, { ...reply, messages: page });
    const cut = page.slice(-this.maxHistoryPage); // the server keeps the newest that fit one post
    ws.reply(f, { ...reply, more: true, before: cut[0].seq, messages: cut });
  }

  _publish(ws, f) {
    const epoch = this.epoch(f.channel);
    const known = f.msgId === undefined ? undefined : this.numbered.get(f.channel)?.get(f.msgId);
    if (known !== undefined) {
      return ws.reply(f, { type: "ack", channel: f.channel, seq: known, epoch, msgId: f.msgId, duplicate: true });
    }
    const frame = this._number(f.channel, f.data, f.msgId);
    const ack = { type: "ack", channel: f.channel, seq: frame.seq, epoch, delivered: 1 };
    ws.reply(f, f.msgId === undefined ? ack : { ...ack, msgId: f.msgId });
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
        this.following.get(ws)?.delete(f.channel);
        ws.reply(f, { type: "unsubscribed", channel: f.channel });
      } else if (f.action === "history") {
        this._history(ws, f);
      } else if (f.action === "presence") {
        ws.reply(f, {
          type: "presence",
          channel: f.channel,
          members: this.members.get(f.channel) ?? [],
          v: this.presenceVersions.get(f.channel) ?? 0,
        });
      } else if (f.action === "ping") {
        ws.reply(f, { type: "pong", ts: 0 });
      } else if (f.action === "publish" && this.autoAck) {
        this._publish(ws, f);
      }
    }
  }
}

/** A getRandomValues that counts: the msgIds of one client are 00..01, 00..02, ... (predictable in tests). */
export function countingRandomValues() {
  let count = 0;
  return (array) => {
    count += 1;
    array.fill(0);
    for (let i = array.length - 1, n = count; i >= 0 && n > 0; i -= 1, n = Math.floor(n / 256)) array[i] = n % 256;
    return array;
  };
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
    getRandomValues: countingRandomValues(),
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
