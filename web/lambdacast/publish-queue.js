// Publishes: the bounded queue while offline, one publish in flight per channel (orderedPublish), and
// resends with the same msgId (after a lost ack within resendWindow, after rate_limited / internal_error),
// so a publish is numbered at most once.
import { retryDelay } from "./backoff.js";
import { LambdacastError } from "./errors.js";

/** Retries of a publish answered `internal_error` (not numbered, safe to resend with the same msgId). */
const PUBLISH_ERROR_RETRIES = 2;

/** A new msgId: 128 random bits as 32 hex characters. */
function newMsgId(getRandomValues) {
  const bytes = getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class PublishQueue {
  /** @param {object} ctx the client's shared parts: options, platform, request, connection, channels */
  constructor(ctx) {
    this._ctx = ctx;
    this._queue = []; // publishes waiting to be sent
    this._publishing = new Map(); // channel -> the publish in flight or waiting to retry (orderedPublish)
    this._count = 0; // numbers publishes, so resent ones keep their place in the queue
    this._quiet = new Set(); // msgIds of our unsettled publishes without echo: not delivered back to us
    this._retrying = new Set(); // publishes waiting out retryAfterMs or a backoff before their next send
  }

  /** True for the msgId of our own unsettled publish without echo: it is not delivered back to us. */
  isQuiet(msgId) {
    return this._quiet.has(msgId);
  }

  /** Client.publish() once the client is known to be running: see there. */
  publish(channel, data, { echo, timeout, msgId }) {
    const options = this._ctx.options;
    if (msgId === undefined) msgId = newMsgId(this._ctx.platform.getRandomValues);
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
    if (size > options.maxFrameBytes) {
      return Promise.reject(
        new LambdacastError(
          "too_large",
          `the publish frame is ${size} bytes; API Gateway's frame limit is ${options.maxFrameBytes}`,
          { channel },
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const item = {
        n: ++this._count,
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
      if (!this._canSend(channel) && this._queue.length >= options.maxQueue) {
        return reject(
          new LambdacastError(
            "queue_full",
            `${this._queue.length} publishes are already waiting for the connection (maxQueue ${options.maxQueue})`,
            { channel, msgId },
          ),
        );
      }
      if (!item.echo) this._quiet.add(msgId);
      if (this._canSend(channel)) this._send(item);
      else this._queue.push(item);
      return undefined;
    });
  }

  /** Send what waits and may go now (a session opened, a channel got subscribed, a slot freed). */
  flush() {
    if (!this._ctx.connection.sessionOpen) return;
    const waiting = this._queue;
    this._queue = [];
    for (const item of waiting) {
      if (this._canSend(item.channel)) this._send(item);
      else this._queue.push(item);
    }
  }

  /** The socket went: what was in flight or waiting to retry goes back to the queue, for the next session. */
  socketLost() {
    this._publishing.clear();
    const retrying = [...this._retrying];
    this._retrying.clear();
    for (const item of retrying) {
      this._ctx.platform.clearTimeout(item.timer);
      item.timer = null;
      this._requeue(item);
    }
  }

  /** The client closed: every publish not yet acked rejects with `closed` (its code and message). */
  shutdown(closed) {
    const unsent = [...this._queue.splice(0), ...this._retrying];
    this._retrying.clear();
    this._publishing.clear();
    for (const item of unsent) {
      this._fail(item, new LambdacastError(closed.code, closed.message, { channel: item.channel }));
    }
  }

  _canSend(channel) {
    if (!this._ctx.connection.open) return false;
    if (this._ctx.options.orderedPublish && this._publishing.has(channel)) return false;
    const entry = this._ctx.channels.get(channel);
    return !entry || (entry.subscribed && !entry.op) || entry.handlers.size === 0;
  }

  /**
   * Send one publish. API Gateway runs $default invocations concurrently, so two publishes in flight
   * on one channel can take their seq in either order: with orderedPublish the next waits for this ack.
   */
  _send(item) {
    const { options, platform, channels } = this._ctx;
    const now = platform.now();
    if (item.firstSentAt !== null && now - item.firstSentAt > options.resendWindow) {
      // The server may have forgotten its msgId by now: resending could number it twice.
      this._fail(
        item,
        new LambdacastError(
          "connection_lost",
          `the connection was lost before the ack and ${now - item.firstSentAt} ms have passed since the publish was sent ` +
            `(resendWindow ${options.resendWindow} ms): it may or may not have been published`,
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
    this._ctx.request(frame, Math.max(1, item.deadline - now)).then(
      (ack) => {
        const entry = channels.get(item.channel);
        if (!item.echo && entry) channels.deliver(entry, entry.orderer.skip(ack.seq, ack.epoch));
        const outcome = { channel: ack.channel ?? item.channel, seq: ack.seq };
        if (ack.epoch !== undefined) outcome.epoch = ack.epoch;
        if (ack.delivered !== undefined) outcome.delivered = ack.delivered;
        outcome.msgId = item.msgId;
        outcome.duplicate = ack.duplicate === true;
        this._settle(item);
        item.resolve(outcome);
      },
      (err) => this._failed(item, err),
    );
  }

  /** A publish attempt failed: resend it (same msgId) when that is safe and there is time, else reject. */
  _failed(item, err) {
    const { options, platform, connection } = this._ctx;
    if (!err.fromServer && err.code === "connection_lost") return this._requeue(item);
    // internal_error means not numbered; the msgId makes the resend safe even if it was.
    const errorsLeft = err.code !== "internal_error" || item.errors < PUBLISH_ERROR_RETRIES;
    const delay = err.fromServer && errorsLeft ? retryDelay(err, item.errors, options.backoff, platform.random) : null;
    if (delay === null || platform.now() + delay >= item.deadline) return this._fail(item, err);
    if (err.code === "internal_error") item.errors += 1;
    this._retrying.add(item);
    item.timer = platform.setTimeout(() => {
      item.timer = null;
      if (!this._retrying.delete(item)) return; // the connection went meanwhile: requeued
      if (connection.open) this._send(item);
      else this._requeue(item);
    }, delay);
    return undefined;
  }

  /** Put a publish back in the queue, in its original place: it goes out again after the reconnect. */
  _requeue(item) {
    const connection = this._ctx.connection;
    this._release(item);
    if (connection.state === "closed") {
      const why = connection.error ?? { code: "closed", message: "the client was closed" };
      return this._fail(item, new LambdacastError(why.code, why.message, { channel: item.channel }));
    }
    item.deadline = null;
    const at = this._queue.findIndex((queued) => queued.n > item.n);
    this._queue.splice(at < 0 ? this._queue.length : at, 0, item);
    this.flush();
    return undefined;
  }

  _fail(item, err) {
    if (item.timer !== null) this._ctx.platform.clearTimeout(item.timer);
    item.timer = null;
    this._retrying.delete(item);
    this._settle(item);
    if (err instanceof LambdacastError) {
      err.msgId = item.msgId;
      err.channel ??= item.channel;
    }
    item.reject(err);
  }

  _settle(item) {
    this._quiet.delete(item.msgId);
    this._release(item);
  }

  _release(item) {
    if (this._publishing.get(item.channel) !== item) return;
    this._publishing.delete(item.channel);
    this.flush();
  }
}
