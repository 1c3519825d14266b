// The Client: the public API of a lambdacast connection, and the place its parts are put together.
import { Channels } from "./channels.js";
import { Connection } from "./connection.js";
import { DEFAULTS } from "./defaults.js";
import { Emitter } from "./emitter.js";
import { LambdacastError } from "./errors.js";
import { platformOf } from "./platform.js";
import { Presence } from "./presence.js";
import { CHANNEL_PATTERN, HISTORY_PAGE } from "./protocol.js";
import { PublishQueue } from "./publish-queue.js";
import { Recovery } from "./recovery.js";
import { checkUrl } from "./url.js";

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
    checkUrl(url, options);
    this.url = url;
    this.options = { ...DEFAULTS, ...options, backoff: { ...DEFAULTS.backoff, ...options.backoff } };
    this._events = new Emitter();
    // The parts reach each other through one shared context, because their work interlocks: a socket lost
    // pauses the channels and requeues the publishes, a publish's ack accounts for its seq in the channel's
    // orderer, a delivery starts the hole filling, a subscribe flushes the publishes waiting for it.
    const ctx = {
      options: this.options,
      platform: platformOf(options),
      emit: (event, ...args) => this._events.emit(event, ...args),
      request: (frame, timeout) => ctx.connection.requests.send(frame, timeout),
    };
    ctx.connection = new Connection(url, ctx);
    ctx.channels = new Channels(ctx);
    ctx.presence = new Presence(ctx);
    ctx.recovery = new Recovery(ctx);
    ctx.publishes = new PublishQueue(ctx);
    this._ctx = ctx;
    this._connection = ctx.connection;
    this._connection.start();
  }

  /** @type {'connecting'|'open'|'reconnecting'|'closed'} */
  get state() {
    return this._connection.state;
  }

  /** Why the client closed itself (null after close() or while running). */
  get error() {
    return this._connection.error;
  }

  get connectionId() {
    return this._connection.connectionId;
  }

  get userId() {
    return this._connection.userId;
  }

  get limits() {
    return this._connection.limits;
  }

  /**
   * Listen to an event. Returns a function that removes the listener.
   * @param {'state'|'error'|'welcome'|'gap'|'reset'|'member_joined'|'member_left'|'frame'} event
   * @param {Function} listener
   */
  on(event, listener) {
    return this._events.on(event, listener);
  }

  off(event, listener) {
    this._events.off(event, listener);
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
    return this._ctx.channels.subscribe(channel, onMessage, { rewind, onPresence });
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
    return this._ctx.publishes.publish(channel, data, { echo, timeout, msgId });
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
    if (!this._connection.sessionOpen) {
      return Promise.reject(
        new LambdacastError("connection_lost", `not connected (state ${this.state}); ${frame.action} not sent`),
      );
    }
    return this._ctx.request({ ...frame }, timeout);
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
    this._connection.reconnect();
  }

  /** Close for good: no reconnect; waiting requests and publishes reject with code 'closed'. */
  close() {
    if (this.state !== "closed") this._connection.shutdown(null);
  }

  /** A channel request (history, presence) sent once a session is open, within `timeout` ms in all. */
  _channelRequest(frame, timeout) {
    const platform = this._ctx.platform;
    if (this.state === "closed") return Promise.reject(new LambdacastError("closed", "this client is closed"));
    if (typeof frame.channel !== "string" || !CHANNEL_PATTERN.test(frame.channel)) {
      return Promise.reject(
        new LambdacastError("invalid_channel", `not a channel name: ${JSON.stringify(frame.channel)}`, {
          channel: frame.channel,
        }),
      );
    }
    if (this._connection.sessionOpen) return this._ctx.request(frame, timeout);
    const started = platform.now();
    return new Promise((resolve, reject) => {
      const stop = () => {
        platform.clearTimeout(timer);
        off();
      };
      const timer = platform.setTimeout(() => {
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
          this._ctx.request(frame, Math.max(1, timeout - (platform.now() - started))).then(resolve, reject);
        } else if (state === "closed") {
          stop();
          reject(info?.error ?? new LambdacastError("closed", "the client was closed"));
        }
      });
    });
  }
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
