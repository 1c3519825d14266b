// The client's channels: one entry per channel (its handlers, its SeqOrderer, its subscribe state), kept in
// line with the server's view across sockets, and the delivery of each channel's messages in order.
import { retryDelay } from "./backoff.js";
import { LambdacastError } from "./errors.js";
import { SeqOrderer } from "./orderer.js";
import { memberList, presenceState } from "./presence.js";
import { CHANNEL_PATTERN, HISTORY_PAGE } from "./protocol.js";

/** Retries of a subscribe answered `internal_error` or `rate_limited` (subscribing is idempotent). */
const SUBSCRIBE_RETRIES = 3;

export class Channels {
  /** @param {object} ctx the client's shared parts: options, platform, emit, request, connection, ... */
  constructor(ctx) {
    this._ctx = ctx;
    this._entries = new Map(); // name -> channel entry
  }

  /** The entry of a channel the client holds, or undefined. */
  get(channel) {
    return this._entries.get(channel);
  }

  /** True while `entry` is the channel's current entry (not dropped, failed or replaced). */
  holds(entry) {
    return this._entries.get(entry.channel) === entry;
  }

  /** Client.subscribe() once the client is known to be running: see there. */
  subscribe(channel, onMessage, { rewind, onPresence }) {
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
    let entry = this._entries.get(channel);
    if (!entry) {
      entry = {
        channel,
        handlers: new Set(),
        orderer: new SeqOrderer({ maxBuffered: this._ctx.options.reorderMaxBuffered }),
        subscribed: false, // the server has confirmed it on the current socket
        op: null, // the subscribe/unsubscribe request in flight (one at a time per channel)
        waiters: [],
        retries: 0, // transient refusals of the current subscribe
        gapTimer: null,
        rewind: 0, // earlier messages to fetch on the first subscribe
        backfilling: false, // a history backfill is running: do not give up on gaps meanwhile
        filling: false, // a live hole is being fetched from history
        presence: channel.startsWith("presence-") ? presenceState() : null,
      };
      this._entries.set(channel, entry);
    }
    if (entry.orderer.last === null) entry.rewind = Math.max(entry.rewind, rewind);
    const handler = { onMessage, onPresence };
    entry.handlers.add(handler);
    if (onPresence && entry.presence?.members) {
      // A later subscriber to a room already known: give it the current list without a new request.
      queueMicrotask(() => {
        if (!entry.handlers.has(handler) || !entry.presence.members) return;
        this._ctx.presence.call(entry, handler, memberList(entry.presence.members), { type: "snapshot" });
      });
    }
    const ready = deferred();
    if (entry.subscribed && !entry.op && this._ctx.connection.sessionOpen) ready.resolve();
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

  /** A new socket is open: subscribe every channel again; the promises settle when each is in line. */
  resubscribeAll() {
    return [...this._entries.values()].map((entry) => this._sync(entry));
  }

  /** The socket went: nothing is subscribed on the next one yet. */
  socketLost() {
    for (const entry of this._entries.values()) {
      entry.subscribed = false;
      entry.op = null;
      this.pause(entry); // what is held waits for the resubscribe, whose `since` recovers the holes
    }
  }

  /** The client closed: every `ready` still waiting rejects with `closed`. */
  shutdown(closed) {
    for (const entry of this._entries.values()) {
      this.pause(entry);
      for (const waiter of entry.waiters.splice(0)) waiter.reject(closed);
    }
    this._entries.clear();
  }

  /** Bring the server's view of one channel in line with ours; returns when settled. */
  _sync(entry) {
    const { connection, options, platform } = this._ctx;
    if (!connection.connected || !this.holds(entry)) return Promise.resolve();
    if (entry.op) return entry.op;
    const want = entry.handlers.size > 0;
    const gen = connection.generation;
    if (want && !entry.subscribed) {
      const frame = { action: "subscribe", channel: entry.channel };
      const orderer = entry.orderer;
      const from = orderer.last;
      const generation = orderer.generation;
      if (options.recover && from !== null) {
        frame.since = from;
        if (orderer.epoch !== null) frame.epoch = orderer.epoch;
      }
      // Member events before the snapshot that follows `subscribed` are in it: hold them off the old list.
      if (entry.presence) entry.presence.buffer = [];
      entry.op = this._ctx.request(frame).then(
        async (reply) => {
          if (gen !== connection.generation) return undefined;
          // A new epoch first (unless its frames already restarted the stream), so the catch-up works in it.
          this.deliver(entry, orderer.adopt(reply.epoch, { reset: reply.reset === true, generation }));
          await this._ctx.recovery.catchUp(entry, frame.since, reply, gen);
          if (gen !== connection.generation) return undefined;
          entry.op = null;
          entry.subscribed = true;
          entry.retries = 0;
          this.deliver(
            entry,
            orderer.sync(reply.seq, { recovered: reply.recovered === true, from, epoch: reply.epoch }),
          );
          for (const waiter of entry.waiters.splice(0)) waiter.resolve();
          if (entry.presence) this._ctx.presence.refresh(entry);
          this._ctx.publishes.flush();
          return this._sync(entry);
        },
        (err) => {
          if (gen !== connection.generation) return undefined;
          entry.op = null;
          if (!err.fromServer) throw err;
          const delay =
            entry.retries < SUBSCRIBE_RETRIES ? retryDelay(err, entry.retries, options.backoff, platform.random) : null;
          if (delay === null) {
            entry.retries = 0;
            this._fail(entry, err);
            return undefined;
          }
          // A transient refusal changed nothing on the server: subscribe again (ready stays pending), without
          // holding back the session (other channels, the 'open' state) meanwhile.
          entry.retries += 1;
          entry.op = new Promise((resolve) => platform.setTimeout(resolve, delay)).then(() => {
            if (gen !== connection.generation) return undefined;
            entry.op = null;
            return this._sync(entry);
          });
          entry.op.catch((retryError) => gen === connection.generation && connection.lose(retryError));
          return undefined;
        },
      );
      return entry.op;
    }
    if (!want && entry.subscribed) {
      entry.op = this._ctx.request({ action: "unsubscribe", channel: entry.channel }).then(
        () => {
          if (gen !== connection.generation) return undefined;
          entry.op = null;
          entry.subscribed = false;
          return this._sync(entry);
        },
        (err) => {
          if (gen !== connection.generation) return undefined;
          entry.op = null;
          if (!err.fromServer) throw err;
          entry.subscribed = false; // the server does not consider us subscribed either way
          return this._sync(entry);
        },
      );
      return entry.op;
    }
    if (!want) this._drop(entry);
    return Promise.resolve();
  }

  /** A subscribe/unsubscribe outside session setup: a timeout leaves the server's state unknown -> reconnect. */
  _kick(entry) {
    const connection = this._ctx.connection;
    if (!connection.connected) {
      if (entry.handlers.size === 0) this._drop(entry);
      return;
    }
    const gen = connection.generation;
    this._sync(entry).catch((err) => {
      if (gen === connection.generation) connection.lose(err);
    });
  }

  _drop(entry) {
    if (!this.holds(entry)) return;
    this._entries.delete(entry.channel);
    this.pause(entry);
    const gone = new LambdacastError("unsubscribed", "unsubscribed before the server confirmed", {
      channel: entry.channel,
    });
    for (const waiter of entry.waiters.splice(0)) waiter.reject(gone);
  }

  _fail(entry, error) {
    entry.handlers.clear();
    if (this.holds(entry)) this._entries.delete(entry.channel);
    this.pause(entry);
    for (const waiter of entry.waiters.splice(0)) waiter.reject(error);
    this._ctx.emit("error", error);
  }

  /** Stop a channel's timers and abandon its fetches (the socket went, or the channel did). */
  pause(entry) {
    if (entry.gapTimer !== null) this._ctx.platform.clearTimeout(entry.gapTimer);
    entry.gapTimer = null;
    entry.filling = false;
    entry.backfilling = false;
    if (entry.presence) this._ctx.presence.pause(entry);
  }

  /** A message frame pushed by the server. */
  onMessage(frame) {
    const entry = this._entries.get(frame.channel);
    if (!entry || entry.handlers.size === 0) return; // a late message after unsubscribe
    this.push(entry, frame);
  }

  /** One message frame (live, replayed or from history) into the channel's orderer. */
  push(entry, message) {
    // Our own publish without echo, replayed or in a history page: account for it, do not deliver it.
    if (typeof message.msgId === "string" && this._ctx.publishes.isQuiet(message.msgId)) {
      this.deliver(entry, entry.orderer.skip(message.seq, message.epoch));
    } else {
      this.deliver(entry, entry.orderer.push(message));
    }
  }

  /** Hand what the orderer released to the app: resets and gaps as events, messages to every onMessage. */
  deliver(entry, { deliver, gaps, reset, epoch, prior }) {
    const emit = this._ctx.emit;
    if (prior) this.deliver(entry, prior);
    if (reset) emit("reset", { channel: entry.channel, epoch });
    for (const gap of gaps) emit("gap", { channel: entry.channel, ...gap });
    const current = entry.orderer.epoch;
    for (const frame of deliver) {
      const message = frame.epoch === undefined && current !== null ? { ...frame, epoch: current } : frame;
      for (const handler of [...entry.handlers]) {
        try {
          handler.onMessage(message);
        } catch (err) {
          emit(
            "error",
            new LambdacastError("handler_error", `onMessage for ${entry.channel} threw: ${err?.message ?? err}`, {
              channel: entry.channel,
              cause: err,
            }),
          );
        }
      }
    }
    this._ctx.recovery.settleHoles(entry);
  }
}

function deferred() {
  const d = {};
  d.promise = new Promise((resolve, reject) => Object.assign(d, { resolve, reject }));
  d.promise.catch(() => {}); // the caller may never await it; do not report it as unhandled
  return d;
}
