// lambdacast.js - the browser client for lambdacast (wire protocol v1).
// One dependency-free ES module: `import lambdacast from "./lambdacast.js"` from a <script type="module">.
// It adds what the raw WebSocket lacks: request/reply matching with timeouts, reconnect with
// exponential backoff and full jitter, a fresh token per attempt, resubscribe, a heartbeat,
// a bounded publish queue while offline, per-channel seq ordering with duplicate removal, recovery of
// missed messages on reconnect (`since`, then `history`), history, and presence with a live member list.
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
});

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

/**
 * Puts one channel's messages in seq order and drops duplicates. Pure: no timers; the client
 * calls flush() when a gap has been open for the reorder window.
 * Every method returns `{deliver: Message[], gaps: Array<{from, to}>, reset?: true}`.
 */
export class SeqOrderer {
  /** @param {{maxBuffered?: number}} [options] */
  constructor({ maxBuffered = DEFAULTS.reorderMaxBuffered } = {}) {
    this.maxBuffered = maxBuffered;
    /** Highest seq delivered or accounted for; null until the first `subscribed`. */
    this.last = null;
    this._held = new Map();
    this._heldMessages = 0;
    /** While true (a history backfill is running), holding more than maxBuffered does not give up on a gap. */
    this.paused = false;
  }

  /** True when messages are waiting for a missing seq (the client then runs the reorder timer). */
  get waiting() {
    return this.last !== null && this._heldMessages > 0;
  }

  /** A message frame arrived. */
  push(message) {
    const seq = message.seq;
    if (!Number.isSafeInteger(seq)) return result([message]);
    if ((this.last !== null && seq <= this.last) || this._held.has(seq)) return result([], [], { duplicate: true });
    if (this.last !== null && seq === this.last + 1) {
      this.last = seq;
      return result([message, ...this._drain()]);
    }
    this._hold(seq, message);
    return this.last !== null && !this.paused && this._held.size > this.maxBuffered ? this.flush() : result([]);
  }

  /** A seq that will not arrive here (our own publish without echo): do not wait for it. */
  skip(seq) {
    if (!Number.isSafeInteger(seq) || (this.last !== null && seq <= this.last) || this._held.has(seq)) {
      return result([]);
    }
    if (this.last !== null && seq === this.last + 1) {
      this.last = seq;
      return result(this._drain());
    }
    this._hold(seq, SKIPPED);
    return result([]);
  }

  /**
   * The server answered `subscribed` with the channel's latest seq.
   * @param {number} seq
   * @param {{recovered?: boolean, from?: number | null}} [options] recovered: the server replayed everything
   *   after our `since`; from: `last` when the subscribe was sent (messages received since then may be newer
   *   than `seq`; only a `seq` below `from` means the channel started over)
   */
  sync(seq, { recovered = false, from = null } = {}) {
    if (!Number.isSafeInteger(seq)) seq = this.last ?? 0;
    if (this.last === null) {
      // First subscribe: the stream starts after `seq`; anything held at or below it predates us.
      this.last = seq;
      this._dropThrough(seq);
      return result(this._drain());
    }
    if (seq < (from ?? this.last)) {
      // The channel's counter went backwards (e.g. a fresh local emulator): start a new stream.
      this._held.clear();
      this._heldMessages = 0;
      this.last = seq;
      return result([], [], { reset: true });
    }
    if (recovered) return result(this._drain());
    // Resubscribed without recovery: whatever is missing up to `seq` is not coming.
    const deliver = [];
    const gaps = [];
    for (const key of [...this._held.keys()].sort((a, b) => a - b)) {
      if (key > seq) break;
      this._take(key, deliver, gaps);
    }
    if (seq > this.last) gaps.push({ from: this.last + 1, to: seq });
    this.last = Math.max(this.last, seq);
    deliver.push(...this._drain());
    return result(deliver, gaps);
  }

  /** Give up waiting: deliver everything held, in order, and report the missing ranges. */
  flush() {
    const deliver = [];
    const gaps = [];
    for (const key of [...this._held.keys()].sort((a, b) => a - b)) this._take(key, deliver, gaps);
    return result(deliver, gaps);
  }

  _take(key, deliver, gaps) {
    if (this.last !== null && key > this.last + 1) gaps.push({ from: this.last + 1, to: key - 1 });
    const value = this._held.get(key);
    this._held.delete(key);
    if (value !== SKIPPED) {
      this._heldMessages -= 1;
      deliver.push(value);
    }
    this.last = key;
  }

  _hold(seq, value) {
    this._held.set(seq, value);
    if (value !== SKIPPED) this._heldMessages += 1;
  }

  _drain() {
    const out = [];
    while (this._held.has(this.last + 1)) this._take(this.last + 1, out, []);
    return out;
  }

  _dropThrough(seq) {
    for (const [key, value] of this._held) {
      if (key > seq) continue;
      this._held.delete(key);
      if (value !== SKIPPED) this._heldMessages -= 1;
    }
  }
}

function result(deliver, gaps = [], extra = {}) {
  return { deliver, gaps, ...extra };
}

/** A presence member map as a list sorted by userId. */
function memberList(members) {
  return [...members.values()].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
}

/** Apply a `member_joined` / `member_left` frame to a member map (idempotent). */
function applyMemberChange(members, frame) {
  if (frame.type === "member_joined") members.set(frame.member.userId, frame.member);
  else members.delete(frame.member.userId);
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
 * 'member_joined' / 'member_left' ({channel, member}), 'frame' (every frame received, for extensions).
 *
 * Recovery: every resubscribe carries `since` (the last seq seen), and the server replays up to 100 missed
 * messages before `subscribed`. When it cannot (`recovered: false`: a longer gap, or older than the history
 * retention), the client pages back through `history` for the newest `recoverLimit` missed messages; what is
 * still missing (older than that, or expired) is reported once as a 'gap'. Either way the messages reach
 * onMessage in seq order, without duplicates, before any newer one.
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
    this._publishing = new Map(); // channel -> the publish in flight (orderedPublish)
    this._nextId = 0;
    this._ws = null;
    this._connected = false; // the current socket is open
    this._sessionOpen = false; // hello and resubscribes done on the current socket
    this._everOpen = false;
    this._failures = 0; // consecutive attempts that did not reach a session
    this._retryIndex = 0;
    this._epoch = 0; // bumps with every socket; callbacks from older sockets are ignored
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
   * @param {(message: {channel: string, seq: number, data: unknown, from: object, ts: number}) => void} onMessage
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
        gapTimer: null,
        rewind: 0, // earlier messages to fetch on the first subscribe
        backfilling: false, // a history backfill is running: do not give up on gaps meanwhile
        presence: channel.startsWith("presence-") ? { members: null, buffer: null, ticket: 0 } : null,
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
   * Resolves with the server's ack; rejects with a LambdacastError carrying the server's `code`.
   * @param {string} channel
   * @param {unknown} data
   * @param {{echo?: boolean, timeout?: number}} [options] echo: deliver it to this client too
   * @returns {Promise<{channel: string, seq: number, delivered: number}>}
   */
  publish(channel, data, { echo = false, timeout = this.options.requestTimeout } = {}) {
    if (this.state === "closed") {
      return Promise.reject(new LambdacastError("closed", "this client is closed", { channel }));
    }
    let size;
    try {
      const text = JSON.stringify({ action: "publish", channel, data, echo, id: "0".repeat(64) });
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
      const item = { channel, data, echo: echo === true, timeout, resolve, reject };
      if (this._canPublish(channel)) return this._sendPublish(item);
      if (this._queue.length >= this.options.maxQueue) {
        return reject(
          new LambdacastError(
            "queue_full",
            `${this._queue.length} publishes are already waiting for the connection (maxQueue ${this.options.maxQueue})`,
            { channel },
          ),
        );
      }
      this._queue.push(item);
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
    return this._channelRequest(frame, timeout).then((reply) => (Array.isArray(reply.messages) ? reply.messages : []));
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
    const epoch = ++this._epoch;
    this._timers.retry = null;
    this._timers.connect = this._setTimeout(
      () =>
        this._attemptFailed(
          epoch,
          new LambdacastError("connect_timeout", `no connection within ${this.options.connectTimeout} ms`),
        ),
      this.options.connectTimeout,
    );
    let url;
    try {
      url = await this._socketUrl();
    } catch (err) {
      this._attemptFailed(
        epoch,
        new LambdacastError("token_error", `getToken failed: ${err?.message ?? err}`, { cause: err }),
      );
      return;
    }
    if (epoch !== this._epoch || this.state === "closed") return;
    let ws;
    try {
      ws = new this._WebSocket(url, this.options.protocols);
    } catch (err) {
      this._attemptFailed(epoch, new LambdacastError("connect_failed", `cannot open ${redact(url)}: ${err.message}`));
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

  _attemptFailed(epoch, error) {
    if (epoch !== this._epoch || this.state === "closed") return;
    this._lose(error);
  }

  _onOpen(ws) {
    this._clearTimer("connect");
    this._connected = true;
    this._lastReceived = this._now();
    this._armHeartbeat();
    const epoch = this._epoch;
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
        if (epoch !== this._epoch || ws !== this._ws) return;
        this._sessionOpen = true;
        this._everOpen = true;
        this._failures = 0;
        this._retryIndex = 0;
        this._setState("open", { connectionId: this.connectionId });
        this._flushQueue();
      },
      (err) => {
        if (epoch === this._epoch && ws === this._ws) this._lose(err);
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
    this._epoch += 1;
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
    }
    this._publishing.clear();
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
    this._epoch += 1;
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
    for (const item of this._queue.splice(0)) item.reject(closed);
    this._publishing.clear();
    for (const entry of this._channels.values()) {
      if (entry.gapTimer !== null) this._clearTimeout(entry.gapTimer);
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
    const epoch = this._epoch;
    this._request({ action: "ping" }, this.options.heartbeatTimeout).then(
      () => epoch === this._epoch && this._armHeartbeat(),
      (err) => {
        if (epoch !== this._epoch) return;
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
    const epoch = this._epoch;
    if (want && !entry.subscribed) {
      const frame = { action: "subscribe", channel: entry.channel };
      const from = entry.orderer.last;
      if (this.options.recover && from !== null) frame.since = from;
      entry.op = this._request(frame).then(
        async (reply) => {
          if (epoch !== this._epoch) return undefined;
          await this._catchUp(entry, frame.since, reply, epoch);
          if (epoch !== this._epoch) return undefined;
          entry.op = null;
          entry.subscribed = true;
          this._deliver(entry, entry.orderer.sync(reply.seq, { recovered: reply.recovered === true, from }));
          for (const waiter of entry.waiters.splice(0)) waiter.resolve();
          if (entry.presence) this._refreshPresence(entry);
          this._flushQueue();
          return this._sync(entry);
        },
        (err) => {
          if (epoch !== this._epoch) return undefined;
          entry.op = null;
          if (!err.fromServer) throw err;
          this._failChannel(entry, err);
          return undefined;
        },
      );
      return entry.op;
    }
    if (!want && entry.subscribed) {
      entry.op = this._request({ action: "unsubscribe", channel: entry.channel }).then(
        () => {
          if (epoch !== this._epoch) return undefined;
          entry.op = null;
          entry.subscribed = false;
          return this._sync(entry);
        },
        (err) => {
          if (epoch !== this._epoch) return undefined;
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
    const epoch = this._epoch;
    this._sync(entry).catch((err) => {
      if (epoch === this._epoch) this._lose(err);
    });
  }

  _dropChannel(entry) {
    if (this._channels.get(entry.channel) !== entry) return;
    this._channels.delete(entry.channel);
    if (entry.gapTimer !== null) this._clearTimeout(entry.gapTimer);
    const gone = new LambdacastError("unsubscribed", "unsubscribed before the server confirmed", {
      channel: entry.channel,
    });
    for (const waiter of entry.waiters.splice(0)) waiter.reject(gone);
  }

  _failChannel(entry, error) {
    entry.handlers.clear();
    if (this._channels.get(entry.channel) === entry) this._channels.delete(entry.channel);
    if (entry.gapTimer !== null) this._clearTimeout(entry.gapTimer);
    for (const waiter of entry.waiters.splice(0)) waiter.reject(error);
    this._emit("error", error);
  }

  /**
   * After `subscribed`, before the channel counts as live: fetch with `history` what the server did not
   * replay (`recovered: false` after `since`), or the `rewind` earlier messages of a first subscribe.
   */
  async _catchUp(entry, since, reply, epoch) {
    const seq = reply.seq;
    if (!Number.isSafeInteger(seq)) return;
    if (since !== undefined) {
      if (reply.recovered === false && seq > since && this.options.recoverLimit > 0) {
        await this._backfill(entry, Math.max(since, seq - this.options.recoverLimit), seq, epoch);
      }
    } else if (entry.rewind > 0 && entry.orderer.last === null && seq > 0) {
      // A first subscribe: the stream starts after seq - rewind; the older part is not a gap.
      this._deliver(entry, entry.orderer.sync(Math.max(0, seq - entry.rewind)));
      await this._backfill(entry, entry.orderer.last, seq, epoch, { quiet: true });
    }
  }

  /**
   * Page back through `history` for the messages after `from` up to `upto`, and deliver them in order.
   * A missing older part is a gap (reported unless quiet); the caller's sync(upto) reports any later hole.
   */
  async _backfill(entry, from, upto, epoch, { quiet = false } = {}) {
    const pages = [];
    let before = upto + 1;
    entry.backfilling = true;
    entry.orderer.paused = true;
    if (entry.gapTimer !== null) this._clearTimeout(entry.gapTimer);
    entry.gapTimer = null;
    try {
      while (before > from + 1) {
        const limit = Math.min(HISTORY_PAGE, before - from - 1);
        const reply = await this._request({ action: "history", channel: entry.channel, limit, before });
        if (epoch !== this._epoch) return;
        const page = (Array.isArray(reply.messages) ? reply.messages : [])
          .filter((m) => m && Number.isSafeInteger(m.seq) && m.seq > from && m.seq < before)
          .sort((a, b) => a.seq - b.seq);
        if (page.length === 0) break;
        pages.unshift(page);
        before = page[0].seq;
        // A short page means the history has nothing older (expired or never stored), unless the
        // server cut the page to fit one post and says there is `more`.
        if (page.length < limit && reply.more !== true) break;
      }
    } catch (err) {
      if (!err.fromServer) throw err; // the connection went: the next reconnect recovers again
      this._emit("error", err); // e.g. forbidden: what is missing is reported as a gap below
    } finally {
      entry.backfilling = false;
      entry.orderer.paused = false;
    }
    const messages = pages.flat();
    const start = messages.length > 0 ? messages[0].seq : upto + 1;
    const last = entry.orderer.last;
    if (last !== null && start - 1 > last) {
      const skipped = entry.orderer.sync(start - 1);
      this._deliver(entry, quiet ? { ...skipped, gaps: [] } : skipped);
    }
    for (const message of messages) this._deliver(entry, entry.orderer.push(message));
  }

  /** Fetch the member list; member events arriving meanwhile are buffered and applied on top of it. */
  _refreshPresence(entry) {
    const state = entry.presence;
    const ticket = ++state.ticket; // only the latest snapshot request counts
    state.buffer = [];
    this._request({ action: "presence", channel: entry.channel }).then(
      (reply) => {
        if (state.ticket !== ticket || this._channels.get(entry.channel) !== entry) return;
        const members = new Map();
        for (const member of Array.isArray(reply.members) ? reply.members : []) {
          if (member && typeof member.userId === "string") members.set(member.userId, member);
        }
        const buffered = state.buffer ?? [];
        state.members = members;
        state.buffer = null;
        for (const frame of buffered) applyMemberChange(members, frame);
        this._notifyPresence(entry, { type: "snapshot" });
      },
      (err) => {
        if (state.ticket !== ticket) return;
        state.buffer = null;
        if (err.fromServer) this._emit("error", err);
      },
    );
  }

  _onMember(frame) {
    if (typeof frame.channel !== "string" || !frame.member || typeof frame.member.userId !== "string") return;
    const event = { channel: frame.channel, member: frame.member };
    this._emit(frame.type, event);
    const state = this._channels.get(frame.channel)?.presence;
    if (!state) return;
    if (state.buffer !== null)
      state.buffer.push(frame); // a snapshot is on its way: apply after it
    else if (state.members !== null) {
      applyMemberChange(state.members, frame);
      this._notifyPresence(this._channels.get(frame.channel), { type: frame.type, member: frame.member });
    }
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
    this._deliver(entry, entry.orderer.push(frame));
  }

  _deliver(entry, { deliver, gaps, reset }) {
    if (reset) this._emit("gap", { channel: entry.channel, from: null, to: null, reset: true });
    for (const gap of gaps) this._emit("gap", { channel: entry.channel, ...gap });
    for (const message of deliver) {
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
    if (entry.backfilling) return; // the backfill decides about gaps when it ends
    if (entry.orderer.waiting && entry.gapTimer === null) {
      entry.gapTimer = this._setTimeout(() => {
        entry.gapTimer = null;
        this._deliver(entry, entry.orderer.flush());
      }, this.options.reorderWindow);
    } else if (!entry.orderer.waiting && entry.gapTimer !== null) {
      this._clearTimeout(entry.gapTimer);
      entry.gapTimer = null;
    }
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
    const frame = { action: "publish", channel: item.channel, data: item.data };
    if (item.echo) frame.echo = true;
    this._publishing.set(item.channel, item);
    const settled = () => {
      if (this._publishing.get(item.channel) !== item) return;
      this._publishing.delete(item.channel);
      this._flushQueue();
    };
    this._request(frame, item.timeout).then(
      (ack) => {
        const entry = this._channels.get(item.channel);
        if (!item.echo && entry) this._deliver(entry, entry.orderer.skip(ack.seq));
        item.resolve({ channel: ack.channel ?? item.channel, seq: ack.seq, delivered: ack.delivered });
        settled();
      },
      (err) => {
        item.reject(err);
        settled();
      },
    );
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
