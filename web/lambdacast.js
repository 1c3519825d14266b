// lambdacast.js - the browser client for lambdacast (wire protocol v1).
// One dependency-free ES module: `import lambdacast from "./lambdacast.js"` from a <script type="module">.
// It adds what the raw WebSocket lacks: request/reply matching with timeouts, reconnect with
// exponential backoff and full jitter, a fresh token per attempt, resubscribe, a heartbeat,
// a bounded publish queue while offline, idempotent publishes (a msgId kept across resends), per-channel
// (epoch, seq) ordering with duplicate removal, recovery of missed messages on reconnect (`since`, then
// `history`), live holes filled from `history`, and presence with a versioned live member list.
// Timers, the clock, randomness and the WebSocket class are injectable, so the logic runs in Node tests.

export const PROTOCOL_VERSION = 1;

/** Default options; every one can be overridden in `connect(url, options)`. */
export const DEFAULTS = Object.freeze({
  requestTimeout: 15_000, // ms to wait for the reply to a request (publish, subscribe, ...)
  connectTimeout: 10_000, // ms for getToken + the WebSocket handshake
  backoff: Object.freeze({ base: 1_000, factor: 2, cap: 10_000 }),
  maxConnectAttempts: 5, // consecutive failures before the first session -> 'closed' with an error
  maxReconnectAttempts: Infinity, // the same once a session has existed
  heartbeatIdle: 60_000, // ping after this long without receiving anything
  heartbeatTimeout: 10_000, // no pong within this -> the socket is dead, reconnect
  maxQueue: 100, // publishes waiting for a connection; beyond -> 'queue_full'
  reorderWindow: 1_000, // ms an out-of-order message waits for the ones before it
  reorderMaxBuffered: 100, // messages held per channel before giving up on a gap
  // API Gateway's frame quota. A browser sends each message as one frame, and API Gateway closes the socket
  // (1009) on a frame over 32 KB, so nothing bigger may ever be sent.
  maxFrameBytes: 32 * 1024,
  orderedPublish: true, // one publish in flight per channel, so a client's own messages keep their order
  recover: true, // resubscribe with `since` so the server replays what was missed while offline
  recoverLimit: 500, // when the replay is refused (gap > 100), fetch at most this many with `history`
  // A publish whose ack was lost with the socket is resent (same msgId) after the reconnect only within this
  // long of its first send: the server remembers a msgId for at least 5 minutes, so a later resend could
  // be numbered twice. Past it, the publish rejects with `connection_lost` (outcome unknown).
  resendWindow: 240_000,
});

/** Retries of a publish answered `internal_error` (not numbered, safe to resend with the same msgId). */
const PUBLISH_ERROR_RETRIES = 2;

/** Retries of a subscribe answered `internal_error` or `rate_limited` (subscribing is idempotent). */
const SUBSCRIBE_RETRIES = 3;

/** Member events held per presence channel while waiting for a missing version, before refetching at once. */
const MAX_PENDING_MEMBER_EVENTS = 100;

/** A new msgId: 128 random bits as 32 hex characters. */
function newMsgId(getRandomValues) {
  const bytes = getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The server's largest `history` page (and `limit` maximum). */
export const HISTORY_PAGE = 100;

/** Channel names the server accepts (protocol v1). */
export const CHANNEL_PATTERN = /^[A-Za-z0-9_\-=@,.;:]{1,128}$/;

const OPEN = 1; // WebSocket.OPEN

/** Every failure this library reports: `code` is the server's error code or one of the client's own. */
export class LambdacastError extends Error {
  /**
   * @param {string} code machine-readable reason
   * @param {string} message a sentence for humans
   * @param {object} [details] extra fields: channel, action, frame (the server's error frame), cause
   */
  constructor(code, message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "LambdacastError";
    this.code = code;
    for (const [key, value] of Object.entries(details)) if (key !== "cause") this[key] = value;
  }

  /** True when the server sent this error (an `error` frame), false for client-side failures. */
  get fromServer() {
    return this.frame !== undefined;
  }
}

/**
 * The delay before retry number `attempt` (0-based): full jitter, random in [0, min(cap, base * factor^attempt)).
 * @param {number} attempt
 * @param {{base: number, factor: number, cap: number}} [policy]
 * @param {() => number} [random] uniform in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, policy = DEFAULTS.backoff, random = Math.random) {
  const ceiling = Math.min(policy.cap, policy.base * policy.factor ** attempt);
  return Math.floor(random() * ceiling);
}

const SKIPPED = Symbol("skipped"); // a seq known to exist that will never arrive here (own publish, no echo)
const MAX_MISSED_RANGES = 256; // reported gaps remembered per channel, so a late arrival is still delivered
const MAX_PAST_EPOCHS = 16; // epochs a channel left behind: their frames are stale

/**
 * Puts one channel's messages in seq order within its epoch, and drops true duplicates. Pure: no timers,
 * no requests; the client decides when to give up on a hole (after filling it from `history`).
 *
 * A channel's stream is `(epoch, seq)`: seqs go 1, 2, 3... within an epoch, and a new epoch (the channel's
 * counter was created again) starts over at 1. `last` is the highest seq delivered or accounted for in the
 * current epoch. A seq at or below `last` is delivered anyway (flagged `late: true`) when it lies in a gap
 * already reported; only a seq already delivered (or accounted for) in the same epoch is a duplicate.
 *
 * Every method returns `{deliver, gaps, ...}`: the messages to hand to the app in this order, the ranges
 * given up (`{from, to}`), and, when the stream restarted in a new epoch, `reset: true, epoch` plus `prior`,
 * the result of closing the old epoch (deliver it first).
 */
export class SeqOrderer {
  /** @param {{maxBuffered?: number}} [options] maxBuffered: held messages beyond which `overflowing` is true */
  constructor({ maxBuffered = DEFAULTS.reorderMaxBuffered } = {}) {
    this.maxBuffered = maxBuffered;
    /** The epoch of the stream (null until a frame or reply names one: servers before epochs never do). */
    this.epoch = null;
    /** Highest seq delivered or accounted for in `epoch`; null until the first `subscribed`. */
    this.last = null;
    /** Bumps on every restart, so the client can tell whether a reset was already applied. */
    this.generation = 0;
    this._held = new Map(); // seq -> message frame | SKIPPED, every key > last
    this._heldMessages = 0;
    this._missed = []; // [from, to] ranges reported as gaps, ascending and disjoint, all <= last
    this._past = []; // epochs this channel left behind
  }

  /** True when messages wait for a missing seq (the client then runs the reorder window). */
  get waiting() {
    return this.last !== null && this._heldMessages > 0;
  }

  /** True when more than maxBuffered messages wait: the client should not wait out the window. */
  get overflowing() {
    return this._heldMessages > this.maxBuffered;
  }

  /** The highest seq held (waiting for a seq before it), or null. */
  get highestHeld() {
    let highest = null;
    for (const key of this._held.keys()) if (highest === null || key > highest) highest = key;
    return highest;
  }

  /** The highest missing seq below the highest held one (the end of the holes), or null. */
  get highestMissing() {
    const top = this.highestHeld;
    if (top === null || this.last === null) return null;
    for (let seq = top - 1; seq > this.last; seq -= 1) if (!this._held.has(seq)) return seq;
    return null;
  }

  /** A message frame arrived (live, replayed or from `history`). */
  push(message) {
    const seq = message.seq;
    if (!Number.isSafeInteger(seq)) return result([message]);
    const epoch = message.epoch;
    if (typeof epoch === "string" && this.last !== null && epoch !== this.epoch) {
      if (this._past.includes(epoch)) return result([], [], { stale: true });
      // An epoch we never held is a newer one (the reply announcing it may still be on its way).
      const reset = this.restart(epoch);
      return { ...this.push(message), reset: true, epoch, prior: reset.prior };
    }
    if (this.last !== null && seq <= this.last) {
      if (this._unmiss(seq)) return result([{ ...message, late: true }], [], { late: true });
      return result([], [], { duplicate: true });
    }
    if (this._held.has(seq)) return result([], [], { duplicate: true });
    if (this.last !== null && seq === this.last + 1) {
      this.last = seq;
      return result([message, ...this._drain()]);
    }
    this._hold(seq, message);
    return result([]);
  }

  /**
   * A seq that will not arrive here (our own publish without echo): do not wait for it.
   * @param {number} seq
   * @param {string} [epoch] the ack's epoch: a seq of another epoch is ignored
   */
  skip(seq, epoch) {
    if (!Number.isSafeInteger(seq)) return result([]);
    if (typeof epoch === "string" && this.epoch !== null && epoch !== this.epoch) return result([]);
    if (this.last !== null && seq <= this.last) {
      this._unmiss(seq); // accounted for after all: a copy arriving later is a duplicate
      return result([]);
    }
    if (this._held.has(seq)) return result([]);
    if (this.last !== null && seq === this.last + 1) {
      this.last = seq;
      return result(this._drain());
    }
    this._hold(seq, SKIPPED);
    return result([]);
  }

  /**
   * The `subscribed` reply named the channel's epoch: restart the stream when it is not ours.
   * @param {string | undefined} epoch
   * @param {{reset?: boolean, generation?: number}} [options] reset: the reply said `reset: true`;
   *   generation: `this.generation` when the subscribe was sent (a reset applied since then is not redone)
   */
  adopt(epoch, { reset = false, generation = this.generation } = {}) {
    if (typeof epoch !== "string") return result([]);
    if (this.last === null) {
      // First subscribe: frames held so far of another epoch belong to a counter that is gone.
      this.epoch = epoch;
      for (const [key, value] of [...this._held]) {
        if (value !== SKIPPED && typeof value.epoch === "string" && value.epoch !== epoch) this._unhold(key);
      }
      return result([]);
    }
    if (epoch !== this.epoch || (reset && generation === this.generation)) return this.restart(epoch);
    return result([]);
  }

  /**
   * The server answered `subscribed` with the channel's latest seq.
   * @param {number} seq
   * @param {{recovered?: boolean, from?: number | null, epoch?: string, reset?: boolean, generation?: number}}
   *   [options] recovered: the server replayed everything after our `since`; from: `last` when the subscribe
   *   was sent (only for servers without epochs: a `seq` below it means the channel started over);
   *   epoch, reset, generation: as for adopt()
   */
  sync(seq, { recovered = false, from = null, epoch, reset = false, generation = this.generation } = {}) {
    if (!Number.isSafeInteger(seq)) seq = this.last ?? 0;
    const restarted = this.adopt(epoch, { reset, generation });
    if (this.last === null) {
      // First subscribe: the stream starts after `seq`; anything held at or below it was published before.
      this.last = seq;
      for (const key of [...this._held.keys()]) if (key <= seq) this._unhold(key);
      return result(this._drain());
    }
    let outcome;
    if (typeof epoch !== "string" && seq < (from ?? this.last)) {
      // A server without epochs whose counter went backwards (e.g. a fresh local emulator): a new stream.
      outcome = this.restart(null);
      this.last = seq;
    } else {
      outcome = recovered ? result(this._drain()) : this.flush(seq);
    }
    return restarted.reset ? { ...outcome, reset: true, epoch: restarted.epoch, prior: restarted.prior } : outcome;
  }

  /**
   * Give up on every missing seq up to `upto` (default: all, up to the highest held): deliver what is
   * held in order and report the missing ranges (remembered, so a late arrival is still delivered).
   */
  flush(upto) {
    return this._giveUp(upto, false);
  }

  /** Move the start of the stream to `upto` without a gap (rewind: the older part was never asked for). */
  advance(upto) {
    return this._giveUp(upto, true);
  }

  /** Start over in a new epoch at seq 0; what the old epoch held is delivered first (`prior`). */
  restart(epoch) {
    const prior = this.last === null ? result([]) : this.flush();
    if (this.epoch !== null && this.epoch !== epoch) {
      this._past.push(this.epoch);
      if (this._past.length > MAX_PAST_EPOCHS) this._past.shift();
    }
    this.epoch = epoch;
    this.last = 0;
    this._held.clear();
    this._heldMessages = 0;
    this._missed = [];
    this.generation += 1;
    return result([], [], { reset: true, epoch, prior });
  }

  _giveUp(upto, quiet) {
    const deliver = [];
    const gaps = [];
    if (this.last === null) return result([]);
    if (upto === undefined || upto === null) upto = this.highestHeld ?? this.last;
    for (const key of [...this._held.keys()].sort((a, b) => a - b)) {
      if (key > upto + 1) break;
      this._take(key, deliver, quiet ? null : gaps);
    }
    if (upto > this.last) {
      if (!quiet) this._report(gaps, this.last + 1, upto);
      this.last = upto;
    }
    deliver.push(...this._drain());
    return result(deliver, gaps);
  }

  _take(key, deliver, gaps) {
    if (gaps !== null && key > this.last + 1) this._report(gaps, this.last + 1, key - 1);
    const value = this._held.get(key);
    this._unhold(key);
    if (value !== SKIPPED) deliver.push(value);
    this.last = key;
  }

  _report(gaps, from, to) {
    gaps.push({ from, to });
    const tail = this._missed.at(-1);
    if (tail && tail[1] + 1 >= from) tail[1] = Math.max(tail[1], to);
    else this._missed.push([from, to]);
    if (this._missed.length > MAX_MISSED_RANGES) this._missed.shift();
  }

  /** Remove `seq` from the reported gaps; true when it was in one. */
  _unmiss(seq) {
    const index = this._missed.findIndex(([from, to]) => from <= seq && seq <= to);
    if (index < 0) return false;
    const [from, to] = this._missed[index];
    const parts = [];
    if (from < seq) parts.push([from, seq - 1]);
    if (seq < to) parts.push([seq + 1, to]);
    this._missed.splice(index, 1, ...parts);
    return true;
  }

  _hold(seq, value) {
    this._held.set(seq, value);
    if (value !== SKIPPED) this._heldMessages += 1;
  }

  _unhold(seq) {
    const value = this._held.get(seq);
    if (!this._held.delete(seq)) return;
    if (value !== SKIPPED) this._heldMessages -= 1;
  }

  _drain() {
    const out = [];
    while (this._held.has(this.last + 1)) this._take(this.last + 1, out, null);
    return out;
  }
}

function result(deliver, gaps = [], extra = {}) {
  return { deliver, gaps, ...extra };
}

/** A presence member map as a list sorted by userId. */
function memberList(members) {
  return [...members.values()].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
}

/** The `member_joined` / `member_left` event of a frame: {channel, member} and the presence version `v`. */
function memberEvent(frame) {
  const event = { channel: frame.channel, member: frame.member };
  if (Number.isSafeInteger(frame.v)) event.v = frame.v;
  return event;
}

function deferred() {
  const d = {};
  d.promise = new Promise((resolve, reject) => Object.assign(d, { resolve, reject }));
  d.promise.catch(() => {}); // the caller may never await it; do not report it as unhandled
  return d;
}

function redact(url) {
  return url.replace(/([?&]token=)[^&#]*/, "$1***");
}

/**
 * A lambdacast connection: survives drops, keeps its subscriptions, queues publishes while offline.
 * States: 'connecting' -> 'open' <-> 'reconnecting' -> 'closed'.
 * Events: 'state' (state, info), 'error' (LambdacastError), 'welcome' (frame), 'gap' ({channel, from, to}),
 * 'reset' ({channel, epoch}), 'member_joined' / 'member_left' ({channel, member, v}), 'frame' (every frame
 * received, for extensions).
 *
 * Recovery: every resubscribe carries `since` and `epoch` (the last seq seen and its epoch), and the server
 * replays up to 100 missed messages before `subscribed`. When it cannot (`recovered: false`: a longer gap, or
 * older than the history retention), the client pages back through `history` for the newest `recoverLimit`
 * missed messages; what is still missing (older than that, or expired) is reported once as a 'gap'. When the
 * channel's epoch changed (its counter was created again), the stream restarts at seq 1 of the new epoch
 * ('reset') and the new epoch's messages are recovered the same way. A hole in the live stream is filled from
 * `history` before it is reported. Either way the messages reach onMessage in seq order, without duplicates,
 * before any newer one; a message of an already reported gap that arrives later is delivered with `late: true`.
 */
export class Client {
  /**
   * @param {string} url ws:// or wss:// URL of the WebSocket API stage
   * @param {object} [options] see DEFAULTS and lambdacast.d.ts
   */
  constructor(url, options = {}) {
    let parsed;
    try {
      parsed = new URL(url);
    } catch {
      throw new LambdacastError("invalid_url", `not a URL: ${JSON.stringify(String(url))}`);
    }
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
      throw new LambdacastError("invalid_url", `the URL must start with ws:// or wss://, got ${parsed.protocol}//`);
    }
    refuseTokenInClear(parsed, options);
    this.url = url;
    this.options = { ...DEFAULTS, ...options, backoff: { ...DEFAULTS.backoff, ...options.backoff } };
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    const timers = options.timers ?? globalThis;
    this._setTimeout = (fn, ms) => timers.setTimeout(fn, ms);
    this._clearTimeout = (handle) => timers.clearTimeout(handle);
    this._now = options.now ?? Date.now;
    this._random = options.random ?? Math.random;
    this._getRandomValues =
      options.getRandomValues ??
      (globalThis.crypto?.getRandomValues
        ? (array) => globalThis.crypto.getRandomValues(array)
        : (array) => array.map(() => Math.floor(Math.random() * 256)));

    /** @type {'connecting'|'open'|'reconnecting'|'closed'} */
    this.state = "connecting";
    /** Why the client closed itself (null after close() or while running). */
    this.error = null;
    this.connectionId = null;
    this.userId = null;
    this.limits = null;

    this._listeners = new Map();
    this._channels = new Map(); // name -> channel entry
    this._pending = new Map(); // request id -> {resolve, reject, timer}
    this._queue = []; // publishes waiting to be sent
    this._publishing = new Map(); // channel -> the publish in flight or waiting to retry (orderedPublish)
    this._publishCount = 0; // numbers publishes, so resent ones keep their place in the queue
    this._quiet = new Set(); // msgIds of our unsettled publishes without echo: not delivered back to us
    this._retrying = new Set(); // publishes waiting out retryAfterMs or a backoff before their next send
    this._nextId = 0;
    this._ws = null;
    this._connected = false; // the current socket is open
    this._sessionOpen = false; // hello and resubscribes done on the current socket
    this._everOpen = false;
    this._failures = 0; // consecutive attempts that did not reach a session
    this._retryIndex = 0;
    this._socketGen = 0; // bumps with every socket; callbacks from older sockets are ignored
    this._timers = { retry: null, connect: null, heartbeat: null };
    this._lastReceived = 0;
    this._immediate = false; // the next reconnect was asked for (reconnect()): no delay, not a failure

    this._onlineTarget = options.onlineTarget ?? globalThis;
    this._onOnline = () => this._retryNow();
    this._onlineTarget.addEventListener?.("online", this._onOnline);
    queueMicrotask(() => {
      if (this.state === "closed") return;
      this._emit("state", "connecting", { attempt: 1 });
      this._attempt();
    });
  }

  /**
   * Listen to an event. Returns a function that removes the listener.
   * @param {'state'|'error'|'welcome'|'gap'|'member_joined'|'member_left'|'frame'} event
   * @param {Function} listener
   */
  on(event, listener) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(listener);
    return () => this.off(event, listener);
  }

  off(event, listener) {
    this._listeners.get(event)?.delete(listener);
  }

  /**
   * Receive the messages of a channel, in seq order, without duplicates, across reconnects.
   * @param {string} channel
   * @param {(message: {channel: string, seq: number, epoch?: string, data: unknown, from?: object, msgId?: string,
   *   ts: number, late?: true}) => void} onMessage called in (epoch, seq) order; `late` marks a message of a gap
   *   already reported
   * @param {{rewind?: number, onPresence?: (members: object[], change: object) => void}} [options]
   *   rewind: on the client's first subscribe to the channel, deliver up to this many earlier messages first
   *   (from `history`, at most 100). onPresence: for presence- channels, called with the member list
   *   (sorted by userId) after each snapshot and each `member_joined` / `member_left`.
   * @returns {{channel: string, ready: Promise<void>, unsubscribe: () => void, members: object[] | null}}
   */
  subscribe(channel, onMessage, { rewind = 0, onPresence } = {}) {
    if (this.state === "closed") throw new LambdacastError("closed", "this client is closed", { channel });
    if (typeof channel !== "string" || !CHANNEL_PATTERN.test(channel)) {
      throw new LambdacastError(
        "invalid_channel",
        `channel names are 1-128 characters from A-Z a-z 0-9 _ - = @ , . ; : (got ${JSON.stringify(channel)})`,
        { channel },
      );
    }
    if (typeof onMessage !== "function") throw new TypeError("onMessage must be a function");
    if (onPresence !== undefined && typeof onPresence !== "function") {
      throw new TypeError("onPresence must be a function");
    }
    if (!Number.isSafeInteger(rewind) || rewind < 0 || rewind > HISTORY_PAGE) {
      throw new LambdacastError("invalid_argument", `rewind must be an integer from 0 to ${HISTORY_PAGE}`, {
        channel,
      });
    }
    let entry = this._channels.get(channel);
    if (!entry) {
      entry = {
        channel,
        handlers: new Set(),
        orderer: new SeqOrderer({ maxBuffered: this.options.reorderMaxBuffered }),
        subscribed: false, // the server has confirmed it on the current socket
        op: null, // the subscribe/unsubscribe request in flight (one at a time per channel)
        waiters: [],
        retries: 0, // transient refusals of the current subscribe
        gapTimer: null,
        rewind: 0, // earlier messages to fetch on the first subscribe
        backfilling: false, // a history backfill is running: do not give up on gaps meanwhile
        filling: false, // a live hole is being fetched from history
        presence: channel.startsWith("presence-")
          ? {
              members: null, // userId -> member, once the first snapshot arrived
              v: null, // the presence version of `members` (null: a server without versions)
              buffer: null, // member events held until the snapshot in flight arrives
              pending: new Map(), // v -> member event that came before the one it follows
              timer: null, // waiting for a missing version
              fetching: false,
              ticket: 0,
            }
          : null,
      };
      this._channels.set(channel, entry);
    }
    if (entry.orderer.last === null) entry.rewind = Math.max(entry.rewind, rewind);
    const handler = { onMessage, onPresence };
    entry.handlers.add(handler);
    if (onPresence && entry.presence?.members) {
      // A later subscriber to a room already known: give it the current list without a new request.
      queueMicrotask(() => {
        if (!entry.handlers.has(handler) || !entry.presence.members) return;
        this._callPresence(entry, handler, memberList(entry.presence.members), { type: "snapshot" });
      });
    }
    const ready = deferred();
    if (entry.subscribed && !entry.op && this._sessionOpen) ready.resolve();
    else entry.waiters.push(ready);
    this._kick(entry);
    return {
      channel,
      ready: ready.promise,
      unsubscribe: () => {
        if (entry.handlers.delete(handler)) this._kick(entry);
      },
      /** The presence channel's members (sorted by userId) once known, else null. */
      get members() {
        return entry.presence?.members ? memberList(entry.presence.members) : null;
      },
    };
  }

  /**
   * Publish `data` (any JSON value) to a channel this client is subscribed to.
   * Every publish carries a `msgId` (random unless given), kept when the client sends it again: after a
   * reconnect that lost the ack (within `resendWindow`), after `rate_limited` (once `retryAfterMs` passed) and
   * after `internal_error` (up to twice), so it is numbered at most once. Resolves with the server's ack;
   * rejects with a LambdacastError carrying the server's `code` and the `msgId`.
   * @param {string} channel
   * @param {unknown} data
   * @param {{echo?: boolean, timeout?: number, msgId?: string}} [options] echo: deliver it to this client too;
   *   timeout: ms for the ack, retries included; msgId: 1-64 characters, to resend a publish yourself
   * @returns {Promise<{channel: string, seq: number, epoch?: string, delivered?: number, msgId: string,
   *   duplicate: boolean}>}
   */
  publish(channel, data, { echo = false, timeout = this.options.requestTimeout, msgId } = {}) {
    if (this.state === "closed") {
      return Promise.reject(new LambdacastError("closed", "this client is closed", { channel }));
    }
    if (msgId === undefined) msgId = newMsgId(this._getRandomValues);
    else if (typeof msgId !== "string" || msgId.length < 1 || msgId.length > 64) {
      return Promise.reject(
        new LambdacastError("invalid_argument", "msgId must be a string of 1 to 64 characters", { channel }),
      );
    }
    let size;
    try {
      const text = JSON.stringify({ action: "publish", channel, data, echo, msgId, id: "0".repeat(64) });
      if (data === undefined || text === undefined) throw new TypeError("undefined is not JSON");
      size = new TextEncoder().encode(text).length;
    } catch (err) {
      return Promise.reject(
        new LambdacastError("invalid_data", `data must be a JSON value: ${err.message}`, { channel, cause: err }),
      );
    }
    if (size > this.options.maxFrameBytes) {
      return Promise.reject(
        new LambdacastError(
          "too_large",
          `the publish frame is ${size} bytes; API Gateway's frame limit is ${this.options.maxFrameBytes}`,
          { channel },
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const item = {
        n: ++this._publishCount,
        channel,
        data,
        echo: echo === true,
        timeout,
        msgId,
        resolve,
        reject,
        firstSentAt: null, // when it was first sent (a resend is safe only within resendWindow of it)
        deadline: null, // retries on the current connection end here
        errors: 0, // internal_error answers so far
        timer: null, // the retry waiting out retryAfterMs / a backoff
      };
      if (!this._canPublish(channel) && this._queue.length >= this.options.maxQueue) {
        return reject(
          new LambdacastError(
            "queue_full",
            `${this._queue.length} publishes are already waiting for the connection (maxQueue ${this.options.maxQueue})`,
            { channel, msgId },
          ),
        );
      }
      if (!item.echo) this._quiet.add(msgId);
      if (this._canPublish(channel)) this._sendPublish(item);
      else this._queue.push(item);
    });
  }

  /**
   * Send a request the client has no method for (e.g. `history` or `presence`) and resolve with the
   * server's reply frame. Rejects with the server's code, `timeout`, or `connection_lost` when no session is open.
   * @param {{action: string} & Record<string, unknown>} frame without an `id`: the client assigns it
   * @param {{timeout?: number}} [options]
   * @returns {Promise<Record<string, unknown>>}
   */
  request(frame, { timeout = this.options.requestTimeout } = {}) {
    if (this.state === "closed") return Promise.reject(new LambdacastError("closed", "this client is closed"));
    if (frame === null || typeof frame !== "object" || typeof frame.action !== "string" || "id" in frame) {
      return Promise.reject(
        new LambdacastError("invalid_frame", "a request is an object with a string action and no id"),
      );
    }
    if (!this._sessionOpen) {
      return Promise.reject(
        new LambdacastError("connection_lost", `not connected (state ${this.state}); ${frame.action} not sent`),
      );
    }
    return this._request({ ...frame }, timeout);
  }

  /**
   * The newest stored messages of a channel, in seq order (page back with `before` = the smallest seq held).
   * Waits for the connection (within the timeout) when it is not open.
   * @param {string} channel
   * @param {{limit?: number, before?: number, timeout?: number}} [options] limit 1-100 (default 50)
   * @returns {Promise<object[]>} message frames, as subscribers received them
   */
  history(channel, { limit, before, timeout = this.options.requestTimeout } = {}) {
    const frame = { action: "history", channel };
    if (limit !== undefined) {
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > HISTORY_PAGE) {
        return Promise.reject(
          new LambdacastError("invalid_argument", `limit must be an integer from 1 to ${HISTORY_PAGE}`, { channel }),
        );
      }
      frame.limit = limit;
    }
    if (before !== undefined) {
      if (!Number.isSafeInteger(before) || before < 1) {
        return Promise.reject(
          new LambdacastError("invalid_argument", "before must be an integer of at least 1", { channel }),
        );
      }
      frame.before = before;
    }
    return this._channelRequest(frame, timeout).then((reply) =>
      (Array.isArray(reply.messages) ? reply.messages : []).map((m) =>
        m && m.epoch === undefined && typeof reply.epoch === "string" ? { ...m, epoch: reply.epoch } : m,
      ),
    );
  }

  /**
   * Who is in a presence- channel now (members are users: two tabs of one user are one member).
   * Waits for the connection (within the timeout) when it is not open.
   * @param {string} channel
   * @param {{timeout?: number}} [options]
   * @returns {Promise<Array<{userId: string, info: object | null}>>} sorted by userId
   */
  presence(channel, { timeout = this.options.requestTimeout } = {}) {
    if (typeof channel !== "string" || !channel.startsWith("presence-")) {
      return Promise.reject(
        new LambdacastError("invalid_channel", `presence needs a presence- channel (got ${JSON.stringify(channel)})`, {
          channel,
        }),
      );
    }
    return this._channelRequest({ action: "presence", channel }, timeout).then((reply) =>
      Array.isArray(reply.members) ? reply.members : [],
    );
  }

  /**
   * Drop the current socket and connect again now (e.g. after sign-in, so `getToken` supplies the new token).
   * Subscriptions are kept and recovered like after any reconnect.
   */
  reconnect() {
    if (this.state === "closed") throw new LambdacastError("closed", "this client is closed");
    if (this._timers.retry !== null) return this._retryNow();
    this._immediate = true;
    this._lose(new LambdacastError("reconnect_requested", "the app asked for a new connection"));
  }

  /** A channel request (history, presence) sent once a session is open, within `timeout` ms in all. */
  _channelRequest(frame, timeout) {
    if (this.state === "closed") return Promise.reject(new LambdacastError("closed", "this client is closed"));
    if (typeof frame.channel !== "string" || !CHANNEL_PATTERN.test(frame.channel)) {
      return Promise.reject(
        new LambdacastError("invalid_channel", `not a channel name: ${JSON.stringify(frame.channel)}`, {
          channel: frame.channel,
        }),
      );
    }
    if (this._sessionOpen) return this._request(frame, timeout);
    const started = this._now();
    return new Promise((resolve, reject) => {
      const stop = () => {
        this._clearTimeout(timer);
        off();
      };
      const timer = this._setTimeout(() => {
        off();
        reject(
          new LambdacastError("timeout", `not connected within ${timeout} ms; ${frame.action} not sent`, {
            action: frame.action,
            channel: frame.channel,
          }),
        );
      }, timeout);
      const off = this.on("state", (state, info) => {
        if (state === "open") {
          stop();
          this._request(frame, Math.max(1, timeout - (this._now() - started))).then(resolve, reject);
        } else if (state === "closed") {
          stop();
          reject(info?.error ?? new LambdacastError("closed", "the client was closed"));
        }
      });
    });
  }

  /** Close for good: no reconnect; waiting requests and publishes reject with code 'closed'. */
  close() {
    if (this.state !== "closed") this._shutdown(null);
  }

  // ---- connection lifecycle -------------------------------------------------------------

  async _attempt() {
    const gen = ++this._socketGen;
    this._timers.retry = null;
    this._timers.connect = this._setTimeout(
      () =>
        this._attemptFailed(
          gen,
          new LambdacastError("connect_timeout", `no connection within ${this.options.connectTimeout} ms`),
        ),
      this.options.connectTimeout,
    );
    let url;
    try {
      url = await this._socketUrl();
    } catch (err) {
      this._attemptFailed(
        gen,
        new LambdacastError("token_error", `getToken failed: ${err?.message ?? err}`, { cause: err }),
      );
      return;
    }
    if (gen !== this._socketGen || this.state === "closed") return;
    let ws;
    try {
      ws = new this._WebSocket(url, this.options.protocols);
    } catch (err) {
      this._attemptFailed(gen, new LambdacastError("connect_failed", `cannot open ${redact(url)}: ${err.message}`));
      return;
    }
    this._ws = ws;
    ws.onopen = () => ws === this._ws && this._onOpen(ws);
    ws.onmessage = (event) => ws === this._ws && this._onText(event.data);
    ws.onclose = (event) => ws === this._ws && this._onClose(event);
    ws.onerror = () => {}; // a close event always follows, with the code
  }

  async _socketUrl() {
    const token = this.options.getToken ? await this.options.getToken() : this.options.token;
    if (token === undefined || token === null || token === "") return this.url;
    if (typeof token !== "string") throw new TypeError("the token must be a string");
    const url = new URL(this.url);
    url.searchParams.set("token", token);
    return url.toString();
  }

  _attemptFailed(gen, error) {
    if (gen !== this._socketGen || this.state === "closed") return;
    this._lose(error);
  }

  _onOpen(ws) {
    this._clearTimer("connect");
    this._connected = true;
    this._lastReceived = this._now();
    this._armHeartbeat();
    const gen = this._socketGen;
    const hello = this._request({ action: "hello" }).then(
      (welcome) => {
        this.connectionId = welcome.connectionId ?? null;
        this.userId = welcome.userId ?? null;
        this.limits = welcome.limits ?? null;
        this._emit("welcome", welcome);
      },
      (err) => {
        if (!err.fromServer) throw err; // a server without `hello` is fine; a dead socket is not
      },
    );
    const resubscribes = [...this._channels.values()].map((entry) => this._sync(entry));
    Promise.all([hello, ...resubscribes]).then(
      () => {
        if (gen !== this._socketGen || ws !== this._ws) return;
        this._sessionOpen = true;
        this._everOpen = true;
        this._failures = 0;
        this._retryIndex = 0;
        this._setState("open", { connectionId: this.connectionId });
        this._flushQueue();
      },
      (err) => {
        if (gen === this._socketGen && ws === this._ws) this._lose(err);
      },
    );
  }

  _onClose(event) {
    const code = event?.code ?? 1006;
    const reason = event?.reason ? ` (${event.reason})` : "";
    const what = this._connected ? "the connection closed" : `could not connect to ${this.url}`;
    const errorCode = this._connected ? "connection_lost" : "connect_failed";
    this._lose(new LambdacastError(errorCode, `${what} (close code ${code}${reason})`, { closeCode: code }));
  }

  /** The current socket is gone (closed, dead or failed): clean up and schedule the next attempt. */
  _lose(error) {
    const ws = this._ws;
    const hadSession = this._sessionOpen;
    this._socketGen += 1;
    this._ws = null;
    this._connected = false;
    this._sessionOpen = false;
    this._clearTimer("connect");
    this._clearTimer("heartbeat");
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(4000, "lambdacast: reconnecting");
      } catch {
        // already closing
      }
    }
    for (const entry of this._channels.values()) {
      entry.subscribed = false;
      entry.op = null;
      this._pauseChannel(entry); // what is held waits for the resubscribe, whose `since` recovers the holes
    }
    this._publishing.clear();
    const retrying = [...this._retrying];
    this._retrying.clear();
    for (const item of retrying) {
      this._clearTimeout(item.timer);
      item.timer = null;
      this._requeuePublish(item);
    }
    this._rejectPending(
      new LambdacastError("connection_lost", `the connection was lost under the request: ${error.message}`),
    );
    if (this.state === "closed") return;
    const requested = this._immediate;
    this._immediate = false;
    if (!hadSession && !requested) this._failures += 1;
    if (!requested) this._emit("error", error);
    const limit = this._everOpen ? this.options.maxReconnectAttempts : this.options.maxConnectAttempts;
    if (this._failures >= limit) {
      const attempts = `${this._failures} failed attempt${this._failures === 1 ? "" : "s"}`;
      const last =
        error.closeCode === undefined
          ? `${error.code}: ${error.message}`
          : `${error.code}, close code ${error.closeCode}`;
      const message = `gave up after ${attempts} to connect to ${this.url} (last error: ${last})`;
      this._shutdown(new LambdacastError("connect_failed", message, { cause: error }));
      return;
    }
    const delay = requested ? 0 : backoffDelay(this._retryIndex, this.options.backoff, this._random);
    if (!requested) this._retryIndex += 1;
    this._setState(this._everOpen ? "reconnecting" : "connecting", { error, delay, attempt: this._failures + 1 });
    this._timers.retry = this._setTimeout(() => this._attempt(), delay);
  }

  _retryNow() {
    if (this._timers.retry === null || this.state === "closed") return;
    this._clearTimer("retry");
    this._attempt();
  }

  _shutdown(error) {
    this.error = error;
    this.state = "closed";
    this._onlineTarget.removeEventListener?.("online", this._onOnline);
    for (const name of Object.keys(this._timers)) this._clearTimer(name);
    const ws = this._ws;
    this._ws = null;
    this._socketGen += 1;
    this._connected = false;
    this._sessionOpen = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000, "lambdacast: closed");
      } catch {
        // already closing
      }
    }
    const closed = error ?? new LambdacastError("closed", "the client was closed");
    this._rejectPending(closed);
    const unsent = [...this._queue.splice(0), ...this._retrying];
    this._retrying.clear();
    this._publishing.clear();
    for (const item of unsent) {
      this._failPublish(item, new LambdacastError(closed.code, closed.message, { channel: item.channel }));
    }
    for (const entry of this._channels.values()) {
      this._pauseChannel(entry);
      for (const waiter of entry.waiters.splice(0)) waiter.reject(closed);
    }
    this._channels.clear();
    this._emit("state", "closed", { error });
    if (error) this._emit("error", error);
  }

  _setState(state, info = {}) {
    const changed = state !== this.state;
    this.state = state;
    if (changed || state !== "open") this._emit("state", state, info);
  }

  _clearTimer(name) {
    if (this._timers[name] !== null) this._clearTimeout(this._timers[name]);
    this._timers[name] = null;
  }

  // ---- heartbeat ----------------------------------------------------------------------------

  _armHeartbeat(delay = this.options.heartbeatIdle) {
    this._clearTimer("heartbeat");
    this._timers.heartbeat = this._setTimeout(() => this._heartbeat(), delay);
  }

  _heartbeat() {
    this._timers.heartbeat = null;
    const idle = this._now() - this._lastReceived;
    if (idle < this.options.heartbeatIdle) return this._armHeartbeat(this.options.heartbeatIdle - idle);
    const gen = this._socketGen;
    this._request({ action: "ping" }, this.options.heartbeatTimeout).then(
      () => gen === this._socketGen && this._armHeartbeat(),
      (err) => {
        if (gen !== this._socketGen) return;
        if (err.fromServer) return this._armHeartbeat();
        this._lose(
          new LambdacastError(
            "heartbeat_timeout",
            `no pong within ${this.options.heartbeatTimeout} ms: the connection is dead`,
          ),
        );
      },
    );
  }

  // ---- requests and frames ----------------------------------------------------------------

  _request(frame, timeout = this.options.requestTimeout) {
    return new Promise((resolve, reject) => {
      // A browser's send() on a CLOSING socket drops the data silently: treat it as gone.
      if (!this._connected || this._ws.readyState !== OPEN) {
        reject(
          new LambdacastError("connection_lost", `not connected; ${frame.action} not sent`, { action: frame.action }),
        );
        return;
      }
      const text = JSON.stringify({ ...frame, id: String(this._nextId + 1) });
      const size = new TextEncoder().encode(text).length;
      if (size > this.options.maxFrameBytes) {
        // Sending it would get the socket closed (1009) by API Gateway: refuse it here, the socket untouched.
        reject(
          new LambdacastError(
            "too_large",
            `the ${frame.action} frame is ${size} bytes; API Gateway's frame limit is ${this.options.maxFrameBytes}`,
            { action: frame.action, channel: frame.channel },
          ),
        );
        return;
      }
      this._nextId += 1;
      const id = String(this._nextId);
      const timer = this._setTimeout(() => {
        this._pending.delete(id);
        reject(
          new LambdacastError("timeout", `no reply to ${frame.action} within ${timeout} ms`, {
            action: frame.action,
            channel: frame.channel,
          }),
        );
      }, timeout);
      this._pending.set(id, { resolve, reject, timer, action: frame.action, channel: frame.channel });
      try {
        this._ws.send(text);
      } catch (err) {
        this._clearTimeout(timer);
        this._pending.delete(id);
        reject(
          new LambdacastError("connection_lost", `could not send ${frame.action}: ${err.message}`, { cause: err }),
        );
      }
    });
  }

  _rejectPending(error) {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const request of pending) {
      this._clearTimeout(request.timer);
      request.reject(
        Object.assign(new LambdacastError(error.code, error.message), {
          action: request.action,
          channel: request.channel,
        }),
      );
    }
  }

  _onText(text) {
    this._lastReceived = this._now();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      this._emit("error", new LambdacastError("invalid_json", "the server sent a frame that is not JSON"));
      return;
    }
    if (frame === null || typeof frame !== "object") return;
    this._emit("frame", frame);
    const request = typeof frame.id === "string" ? this._pending.get(frame.id) : undefined;
    if (request) {
      this._pending.delete(frame.id);
      this._clearTimeout(request.timer);
      if (frame.type === "error") {
        request.reject(
          new LambdacastError(frame.code ?? "error", frame.message ?? "the server refused the request", {
            frame,
            action: request.action,
            channel: request.channel,
          }),
        );
      } else {
        request.resolve(frame);
      }
      return;
    }
    if (frame.type === "message") this._onMessage(frame);
    else if (frame.type === "member_joined" || frame.type === "member_left") this._onMember(frame);
    else if (frame.type === "error" && frame.id === undefined) {
      this._emit("error", new LambdacastError(frame.code ?? "error", frame.message ?? "server error", { frame }));
    }
  }

  // ---- channels -----------------------------------------------------------------------------

  /** Bring the server's view of one channel in line with ours; returns when settled. */
  _sync(entry) {
    if (!this._connected || this._channels.get(entry.channel) !== entry) return Promise.resolve();
    if (entry.op) return entry.op;
    const want = entry.handlers.size > 0;
    const gen = this._socketGen;
    if (want && !entry.subscribed) {
      const frame = { action: "subscribe", channel: entry.channel };
      const orderer = entry.orderer;
      const from = orderer.last;
      const generation = orderer.generation;
      if (this.options.recover && from !== null) {
        frame.since = from;
        if (orderer.epoch !== null) frame.epoch = orderer.epoch;
      }
      // Member events before the snapshot that follows `subscribed` are in it: hold them off the old list.
      if (entry.presence) entry.presence.buffer = [];
      entry.op = this._request(frame).then(
        async (reply) => {
          if (gen !== this._socketGen) return undefined;
          // A new epoch first (unless its frames already restarted the stream), so the catch-up works in it.
          this._deliver(entry, orderer.adopt(reply.epoch, { reset: reply.reset === true, generation }));
          await this._catchUp(entry, frame.since, reply, gen);
          if (gen !== this._socketGen) return undefined;
          entry.op = null;
          entry.subscribed = true;
          entry.retries = 0;
          this._deliver(
            entry,
            orderer.sync(reply.seq, { recovered: reply.recovered === true, from, epoch: reply.epoch }),
          );
          for (const waiter of entry.waiters.splice(0)) waiter.resolve();
          if (entry.presence) this._refreshPresence(entry);
          this._flushQueue();
          return this._sync(entry);
        },
        (err) => {
          if (gen !== this._socketGen) return undefined;
          entry.op = null;
          if (!err.fromServer) throw err;
          const delay = entry.retries < SUBSCRIBE_RETRIES ? this._retryDelay(err, entry.retries) : null;
          if (delay === null) {
            entry.retries = 0;
            this._failChannel(entry, err);
            return undefined;
          }
          // A transient refusal changed nothing on the server: subscribe again (ready stays pending), without
          // holding back the session (other channels, the 'open' state) meanwhile.
          entry.retries += 1;
          entry.op = new Promise((resolve) => this._setTimeout(resolve, delay)).then(() => {
            if (gen !== this._socketGen) return undefined;
            entry.op = null;
            return this._sync(entry);
          });
          entry.op.catch((retryError) => gen === this._socketGen && this._lose(retryError));
          return undefined;
        },
      );
      return entry.op;
    }
    if (!want && entry.subscribed) {
      entry.op = this._request({ action: "unsubscribe", channel: entry.channel }).then(
        () => {
          if (gen !== this._socketGen) return undefined;
          entry.op = null;
          entry.subscribed = false;
          return this._sync(entry);
        },
        (err) => {
          if (gen !== this._socketGen) return undefined;
          entry.op = null;
          if (!err.fromServer) throw err;
          entry.subscribed = false; // the server does not consider us subscribed either way
          return this._sync(entry);
        },
      );
      return entry.op;
    }
    if (!want) this._dropChannel(entry);
    return Promise.resolve();
  }

  /** A subscribe/unsubscribe outside session setup: a timeout leaves the server's state unknown -> reconnect. */
  _kick(entry) {
    if (!this._connected) {
      if (entry.handlers.size === 0) this._dropChannel(entry);
      return;
    }
    const gen = this._socketGen;
    this._sync(entry).catch((err) => {
      if (gen === this._socketGen) this._lose(err);
    });
  }

  _dropChannel(entry) {
    if (this._channels.get(entry.channel) !== entry) return;
    this._channels.delete(entry.channel);
    this._pauseChannel(entry);
    const gone = new LambdacastError("unsubscribed", "unsubscribed before the server confirmed", {
      channel: entry.channel,
    });
    for (const waiter of entry.waiters.splice(0)) waiter.reject(gone);
  }

  _failChannel(entry, error) {
    entry.handlers.clear();
    if (this._channels.get(entry.channel) === entry) this._channels.delete(entry.channel);
    this._pauseChannel(entry);
    for (const waiter of entry.waiters.splice(0)) waiter.reject(error);
    this._emit("error", error);
  }

  /** Stop a channel's timers and abandon its fetches (the socket went, or the channel did). */
  _pauseChannel(entry) {
    if (entry.gapTimer !== null) this._clearTimeout(entry.gapTimer);
    entry.gapTimer = null;
    entry.filling = false;
    entry.backfilling = false;
    const state = entry.presence;
    if (state) {
      if (state.timer !== null) this._clearTimeout(state.timer);
      state.timer = null;
      state.ticket += 1; // a snapshot in flight no longer counts
      state.fetching = false;
      state.buffer = null;
      state.pending.clear(); // the next snapshot covers them
    }
  }

  /**
   * After `subscribed`, before the channel counts as live: fetch with `history` what the server did not
   * replay (`recovered: false` after `since`, or after a reset to a new epoch), or the `rewind` earlier
   * messages of a first subscribe.
   */
  async _catchUp(entry, since, reply, gen) {
    const seq = reply.seq;
    const orderer = entry.orderer;
    if (!Number.isSafeInteger(seq)) return;
    if (since !== undefined) {
      // orderer.last, not since: after a reset it is 0 of the new epoch, and replayed frames may have moved it.
      if (reply.recovered === false && seq > orderer.last && this.options.recoverLimit > 0) {
        await this._backfill(entry, Math.max(orderer.last, seq - this.options.recoverLimit), seq, gen);
      }
    } else if (entry.rewind > 0 && orderer.last === null && seq > 0) {
      // A first subscribe: the stream starts after seq - rewind; the older part is not a gap.
      this._deliver(entry, orderer.sync(Math.max(0, seq - entry.rewind), { epoch: reply.epoch }));
      await this._backfill(entry, orderer.last, seq, gen, { quiet: true });
    }
  }

  /**
   * Page back through `history` for the messages after `from` up to `upto`, and deliver them in order.
   * A missing older part is a gap (reported unless quiet); the caller's sync(upto) reports any later hole.
   */
  async _backfill(entry, from, upto, gen, { quiet = false } = {}) {
    const orderer = entry.orderer;
    const generation = orderer.generation;
    const pages = [];
    let before = upto + 1;
    entry.backfilling = true;
    this._settleHoles(entry);
    try {
      while (before > from + 1) {
        const limit = Math.min(HISTORY_PAGE, before - from - 1);
        const reply = await this._request({ action: "history", channel: entry.channel, limit, before });
        if (gen !== this._socketGen) return;
        if (orderer.generation !== generation) break; // a new epoch began meanwhile: these pages are stale
        const page = this._historyPage(entry, reply, from, before);
        if (page.length === 0) break;
        pages.unshift(page);
        before = page[0].seq;
        // A short page means the history has nothing older (expired or never stored), unless the
        // server cut the page to fit one post and says there is `more`.
        if (page.length < limit && reply.more !== true) break;
      }
    } catch (err) {
      if (gen !== this._socketGen) return;
      entry.backfilling = false;
      if (!err.fromServer) throw err; // the connection went: the next reconnect recovers again
      this._emit("error", err); // e.g. forbidden: what is missing is reported as a gap below
    }
    entry.backfilling = false;
    if (orderer.generation !== generation) return;
    const messages = pages.flat();
    const start = messages.length > 0 ? messages[0].seq : upto + 1;
    if (orderer.last !== null && start - 1 > orderer.last) {
      this._deliver(entry, quiet ? orderer.advance(start - 1) : orderer.flush(start - 1));
    }
    for (const message of messages) this._push(entry, message);
  }

  /** The messages of a `history` reply with from < seq < before, in seq order, when of the stream's epoch. */
  _historyPage(entry, reply, from, before) {
    const epoch = entry.orderer.epoch;
    if (typeof reply.epoch === "string" && epoch !== null && reply.epoch !== epoch) return [];
    return (Array.isArray(reply.messages) ? reply.messages : [])
      .filter((m) => m && Number.isSafeInteger(m.seq) && m.seq > from && m.seq < before)
      .map((m) => (m.epoch === undefined && typeof reply.epoch === "string" ? { ...m, epoch: reply.epoch } : m))
      .sort((a, b) => a.seq - b.seq);
  }

  /**
   * Run the reorder window for a channel's live stream: while messages wait for a missing seq, wait
   * `reorderWindow` (or not at all when more than reorderMaxBuffered wait), then fill the hole from history.
   * Not while the channel is (re)subscribing or catching up: the replay and backfill deal with holes then.
   */
  _settleHoles(entry) {
    const live = entry.subscribed && !entry.op && !entry.backfilling && !entry.filling && this._connected;
    if (!live || !entry.orderer.waiting) {
      if (entry.gapTimer !== null) this._clearTimeout(entry.gapTimer);
      entry.gapTimer = null;
      return;
    }
    if (entry.orderer.overflowing) {
      if (entry.gapTimer !== null) this._clearTimeout(entry.gapTimer);
      entry.gapTimer = null;
      this._fillHoles(entry);
    } else if (entry.gapTimer === null) {
      entry.gapTimer = this._setTimeout(() => {
        entry.gapTimer = null;
        this._fillHoles(entry);
      }, this.options.reorderWindow);
    }
  }

  /**
   * A live hole outlived the reorder window: ask `history` for the missing seqs (one request, at most one
   * page, from the oldest missing seq), deliver what it has, and report the rest of the hole as a gap.
   * Holes that open meanwhile get their own window, so each hole costs at most one request.
   */
  async _fillHoles(entry) {
    const orderer = entry.orderer;
    if (!orderer.waiting || entry.filling || !this._connected) return;
    const gen = this._socketGen;
    const generation = orderer.generation;
    const top = orderer.highestHeld; // the holes end below it
    const from = orderer.last;
    const missing = orderer.highestMissing;
    if (missing === null) return;
    const to = Math.min(missing, from + HISTORY_PAGE);
    entry.filling = true;
    let page = [];
    try {
      const reply = await this._request({
        action: "history",
        channel: entry.channel,
        limit: to - from,
        before: to + 1,
      });
      if (gen !== this._socketGen || orderer.generation !== generation || !entry.filling) return;
      page = this._historyPage(entry, reply, from, to + 1);
    } catch (err) {
      if (gen !== this._socketGen || orderer.generation !== generation || !entry.filling) return;
      if (!err.fromServer && err.code === "connection_lost") return; // the resubscribe's `since` recovers it
      this._emit("error", err); // refused or timed out: the hole is reported as a gap below
    }
    for (const message of page) this._push(entry, message);
    entry.filling = false;
    this._deliver(entry, orderer.flush(top - 1));
  }

  /** Fetch the member list; member events arriving meanwhile are buffered and applied on top of it. */
  _refreshPresence(entry) {
    const state = entry.presence;
    const ticket = ++state.ticket; // only the latest snapshot request counts
    // Every member event received so far is in the snapshot asked for now (its change was committed before
    // it was posted, and the list is read after this request arrives): only later ones are applied on top.
    // That also drops held events that wait for a version this snapshot covers (or that never comes).
    state.buffer = [];
    state.pending.clear();
    state.fetching = true;
    if (state.timer !== null) this._clearTimeout(state.timer);
    state.timer = null;
    this._request({ action: "presence", channel: entry.channel }).then(
      (reply) => {
        if (state.ticket !== ticket || this._channels.get(entry.channel) !== entry) return;
        const members = new Map();
        for (const member of Array.isArray(reply.members) ? reply.members : []) {
          if (member && typeof member.userId === "string") members.set(member.userId, member);
        }
        const held = [...(state.buffer ?? []), ...state.pending.values()]; // all received after the request
        state.members = members;
        state.v = Number.isSafeInteger(reply.v) ? reply.v : null;
        state.buffer = null;
        state.pending.clear();
        state.fetching = false;
        // Versioned events in version order (those up to the snapshot's version are in it already);
        // events of a server without versions in arrival order, as before.
        const versioned = held.filter((f) => Number.isSafeInteger(f.v)).sort((a, b) => a.v - b.v);
        for (const frame of held) if (!Number.isSafeInteger(frame.v)) this._applyMember(entry, frame, false);
        for (const frame of versioned) this._acceptMember(entry, frame, false);
        this._notifyPresence(entry, { type: "snapshot" });
      },
      (err) => {
        if (state.ticket !== ticket) return;
        state.fetching = false;
        state.buffer = null;
        if (err.fromServer) this._emit("error", err);
      },
    );
  }

  _onMember(frame) {
    if (typeof frame.channel !== "string" || !frame.member || typeof frame.member.userId !== "string") return;
    const entry = this._channels.get(frame.channel);
    const state = entry?.presence;
    if (!state) {
      this._emit(frame.type, memberEvent(frame));
      return;
    }
    if (state.buffer !== null)
      state.buffer.push(frame); // a snapshot is on its way: apply after it
    else if (state.members !== null) this._acceptMember(entry, frame, true);
  }

  /**
   * Apply a versioned member event in order: `v` <= the version held is stale (ignored), `v` = held + 1 is
   * applied (with any held events that follow it), a larger `v` waits for the missing ones for the reorder
   * window, then the list is fetched again.
   */
  _acceptMember(entry, frame, notify) {
    const state = entry.presence;
    if (!Number.isSafeInteger(frame.v) || state.v === null) return this._applyMember(entry, frame, notify);
    if (frame.v <= state.v) return undefined;
    if (frame.v > state.v + 1) {
      state.pending.set(frame.v, frame);
      if (state.pending.size > MAX_PENDING_MEMBER_EVENTS) this._presenceGap(entry);
      else if (state.timer === null) {
        state.timer = this._setTimeout(() => {
          state.timer = null;
          this._presenceGap(entry);
        }, this.options.reorderWindow);
      }
      return undefined;
    }
    this._applyMember(entry, frame, notify);
    state.v = frame.v;
    while (state.pending.has(state.v + 1)) {
      const next = state.pending.get(state.v + 1);
      state.pending.delete(state.v + 1);
      this._applyMember(entry, next, notify);
      state.v = next.v;
    }
    if (state.pending.size === 0 && state.timer !== null) {
      this._clearTimeout(state.timer);
      state.timer = null;
    }
    return undefined;
  }

  /** A presence version is missing for good: fetch the list again (held events are applied on top). */
  _presenceGap(entry) {
    const state = entry.presence;
    if (state.fetching || !entry.subscribed || this._channels.get(entry.channel) !== entry) return;
    this._refreshPresence(entry);
  }

  _applyMember(entry, frame, notify) {
    const members = entry.presence.members;
    if (frame.type === "member_joined") members.set(frame.member.userId, frame.member);
    else members.delete(frame.member.userId);
    this._emit(frame.type, memberEvent(frame));
    if (notify) this._notifyPresence(entry, { type: frame.type, member: frame.member });
  }

  _notifyPresence(entry, change) {
    const list = memberList(entry.presence.members);
    for (const handler of [...entry.handlers]) this._callPresence(entry, handler, list, change);
  }

  _callPresence(entry, handler, list, change) {
    if (!handler.onPresence) return;
    try {
      handler.onPresence(list, change);
    } catch (err) {
      this._emit(
        "error",
        new LambdacastError("handler_error", `onPresence for ${entry.channel} threw: ${err?.message ?? err}`, {
          channel: entry.channel,
          cause: err,
        }),
      );
    }
  }

  _onMessage(frame) {
    const entry = this._channels.get(frame.channel);
    if (!entry || entry.handlers.size === 0) return; // a late message after unsubscribe
    this._push(entry, frame);
  }

  /** One message frame (live, replayed or from history) into the channel's orderer. */
  _push(entry, message) {
    // Our own publish without echo, replayed or in a history page: account for it, do not deliver it.
    if (typeof message.msgId === "string" && this._quiet.has(message.msgId)) {
      this._deliver(entry, entry.orderer.skip(message.seq, message.epoch));
    } else {
      this._deliver(entry, entry.orderer.push(message));
    }
  }

  _deliver(entry, { deliver, gaps, reset, epoch, prior }) {
    if (prior) this._deliver(entry, prior);
    if (reset) this._emit("reset", { channel: entry.channel, epoch });
    for (const gap of gaps) this._emit("gap", { channel: entry.channel, ...gap });
    const current = entry.orderer.epoch;
    for (const frame of deliver) {
      const message = frame.epoch === undefined && current !== null ? { ...frame, epoch: current } : frame;
      for (const handler of [...entry.handlers]) {
        try {
          handler.onMessage(message);
        } catch (err) {
          this._emit(
            "error",
            new LambdacastError("handler_error", `onMessage for ${entry.channel} threw: ${err?.message ?? err}`, {
              channel: entry.channel,
              cause: err,
            }),
          );
        }
      }
    }
    this._settleHoles(entry);
  }

  // ---- publish queue ------------------------------------------------------------------------

  _canPublish(channel) {
    if (!this._sessionOpen || this._ws.readyState !== OPEN) return false;
    if (this.options.orderedPublish && this._publishing.has(channel)) return false;
    const entry = this._channels.get(channel);
    return !entry || (entry.subscribed && !entry.op) || entry.handlers.size === 0;
  }

  _flushQueue() {
    if (!this._sessionOpen) return;
    const waiting = this._queue;
    this._queue = [];
    for (const item of waiting) {
      if (this._canPublish(item.channel)) this._sendPublish(item);
      else this._queue.push(item);
    }
  }

  /**
   * Send one publish. API Gateway runs $default invocations concurrently, so two publishes in flight
   * on one channel can take their seq in either order: with orderedPublish the next waits for this ack.
   */
  _sendPublish(item) {
    const now = this._now();
    if (item.firstSentAt !== null && now - item.firstSentAt > this.options.resendWindow) {
      // The server may have forgotten its msgId by now: resending could number it twice.
      this._failPublish(
        item,
        new LambdacastError(
          "connection_lost",
          `the connection was lost before the ack and ${now - item.firstSentAt} ms have passed since the publish was sent ` +
            `(resendWindow ${this.options.resendWindow} ms): it may or may not have been published`,
          { action: "publish", channel: item.channel },
        ),
      );
      return;
    }
    item.firstSentAt ??= now;
    item.deadline ??= now + item.timeout;
    const frame = { action: "publish", channel: item.channel, data: item.data, msgId: item.msgId };
    if (item.echo) frame.echo = true;
    this._publishing.set(item.channel, item);
    this._request(frame, Math.max(1, item.deadline - now)).then(
      (ack) => {
        const entry = this._channels.get(item.channel);
        if (!item.echo && entry) this._deliver(entry, entry.orderer.skip(ack.seq, ack.epoch));
        const outcome = { channel: ack.channel ?? item.channel, seq: ack.seq };
        if (ack.epoch !== undefined) outcome.epoch = ack.epoch;
        if (ack.delivered !== undefined) outcome.delivered = ack.delivered;
        outcome.msgId = item.msgId;
        outcome.duplicate = ack.duplicate === true;
        this._settlePublish(item);
        item.resolve(outcome);
      },
      (err) => this._publishFailed(item, err),
    );
  }

  /**
   * How long to wait before sending a refused request again, or null when it must not be: `rate_limited`
   * after its `retryAfterMs`, `internal_error` (the server changed nothing) after the reconnect backoff.
   */
  _retryDelay(err, attempt) {
    const retryAfter = err.frame?.retryAfterMs;
    if (err.code === "rate_limited" && Number.isSafeInteger(retryAfter) && retryAfter >= 0) return retryAfter;
    if (err.code === "internal_error") return backoffDelay(attempt, this.options.backoff, this._random);
    return null;
  }

  /** A publish attempt failed: resend it (same msgId) when that is safe and there is time, else reject. */
  _publishFailed(item, err) {
    if (!err.fromServer && err.code === "connection_lost") return this._requeuePublish(item);
    // internal_error means not numbered; the msgId makes the resend safe even if it was.
    const errorsLeft = err.code !== "internal_error" || item.errors < PUBLISH_ERROR_RETRIES;
    const delay = err.fromServer && errorsLeft ? this._retryDelay(err, item.errors) : null;
    if (delay === null || this._now() + delay >= item.deadline) return this._failPublish(item, err);
    if (err.code === "internal_error") item.errors += 1;
    this._retrying.add(item);
    item.timer = this._setTimeout(() => {
      item.timer = null;
      if (!this._retrying.delete(item)) return; // the connection went meanwhile: requeued
      if (this._sessionOpen && this._ws?.readyState === OPEN) this._sendPublish(item);
      else this._requeuePublish(item);
    }, delay);
  }

  /** Put a publish back in the queue, in its original place: it goes out again after the reconnect. */
  _requeuePublish(item) {
    this._releasePublishSlot(item);
    if (this.state === "closed") {
      const why = this.error ?? { code: "closed", message: "the client was closed" };
      return this._failPublish(item, new LambdacastError(why.code, why.message, { channel: item.channel }));
    }
    item.deadline = null;
    const at = this._queue.findIndex((queued) => queued.n > item.n);
    this._queue.splice(at < 0 ? this._queue.length : at, 0, item);
    this._flushQueue();
  }

  _failPublish(item, err) {
    if (item.timer !== null) this._clearTimeout(item.timer);
    item.timer = null;
    this._retrying.delete(item);
    this._settlePublish(item);
    if (err instanceof LambdacastError) {
      err.msgId = item.msgId;
      err.channel ??= item.channel;
    }
    item.reject(err);
  }

  _settlePublish(item) {
    this._quiet.delete(item.msgId);
    this._releasePublishSlot(item);
  }

  _releasePublishSlot(item) {
    if (this._publishing.get(item.channel) !== item) return;
    this._publishing.delete(item.channel);
    this._flushQueue();
  }

  _emit(event, ...args) {
    for (const listener of [...(this._listeners.get(event) ?? [])]) {
      try {
        listener(...args);
      } catch (err) {
        console.error(`lambdacast: a '${event}' listener threw`, err);
      }
    }
  }
}

/** Hosts where ws:// never leaves the machine. */
const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * A token travels in the URL (browsers cannot set WebSocket headers): over ws:// anyone on the network path
 * reads it. So a token (the `token` or `getToken` option, or `?token=` in the URL) needs wss://, except to
 * this machine.
 */
function refuseTokenInClear(parsed, options) {
  const token = parsed.searchParams.has("token") || Boolean(options.token) || typeof options.getToken === "function";
  if (!token || parsed.protocol !== "ws:" || LOCAL_HOSTS.has(parsed.hostname)) return;
  throw new LambdacastError(
    "insecure_url",
    `refusing to send a token over ws:// to ${parsed.host}: use wss:// (ws:// is for localhost, 127.0.0.1 and ::1 only)`,
  );
}

/**
 * Open a lambdacast connection. It connects in the background; listen with `client.on('state', fn)`.
 * @param {string} url the stack's WebSocketURL (wss://...)
 * @param {object} [options] token | getToken, protocols, timeouts, backoff, ... (see lambdacast.d.ts)
 * @returns {Client}
 */
export function connect(url, options = {}) {
  return new Client(url, options);
}

const lambdacast = Object.freeze({
  connect,
  Client,
  LambdacastError,
  SeqOrderer,
  backoffDelay,
  DEFAULTS,
  HISTORY_PAGE,
  PROTOCOL_VERSION,
});
export default lambdacast;
