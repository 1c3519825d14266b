// Request/reply matching: every request gets an `id`; the reply with that id settles it, or a timeout does.
import { LambdacastError } from "./errors.js";
import { OPEN } from "./protocol.js";

export class Requests {
  /**
   * @param {object} options the client's options (requestTimeout, maxFrameBytes)
   * @param {ReturnType<import("./platform.js").platformOf>} platform timers
   * @param {() => WebSocket | null} socket the connected socket, or null while there is none
   */
  constructor(options, platform, socket) {
    this._options = options;
    this._platform = platform;
    this._socket = socket;
    this._pending = new Map(); // request id -> {resolve, reject, timer, action, channel}
    this._nextId = 0;
  }

  /** Send `frame` with a new id; resolves with the reply, rejects with the server's error or the client's. */
  send(frame, timeout = this._options.requestTimeout) {
    return new Promise((resolve, reject) => {
      const ws = this._socket();
      // A browser's send() on a CLOSING socket drops the data silently: treat it as gone.
      if (ws === null || ws.readyState !== OPEN) {
        reject(
          new LambdacastError("connection_lost", `not connected; ${frame.action} not sent`, { action: frame.action }),
        );
        return;
      }
      const text = JSON.stringify({ ...frame, id: String(this._nextId + 1) });
      const size = new TextEncoder().encode(text).length;
      if (size > this._options.maxFrameBytes) {
        // Sending it would get the socket closed (1009) by API Gateway: refuse it here, the socket untouched.
        reject(
          new LambdacastError(
            "too_large",
            `the ${frame.action} frame is ${size} bytes; API Gateway's frame limit is ${this._options.maxFrameBytes}`,
            { action: frame.action, channel: frame.channel },
          ),
        );
        return;
      }
      this._nextId += 1;
      const id = String(this._nextId);
      const timer = this._platform.setTimeout(() => {
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
        ws.send(text);
      } catch (err) {
        this._platform.clearTimeout(timer);
        this._pending.delete(id);
        reject(
          new LambdacastError("connection_lost", `could not send ${frame.action}: ${err.message}`, { cause: err }),
        );
      }
    });
  }

  /** Settle the request a received frame replies to; false when it replies to none (a pushed frame). */
  settle(frame) {
    const request = typeof frame.id === "string" ? this._pending.get(frame.id) : undefined;
    if (!request) return false;
    this._pending.delete(frame.id);
    this._platform.clearTimeout(request.timer);
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
    return true;
  }

  /** Reject every request waiting for a reply with a copy of `error` (the socket went, or the client closed). */
  rejectAll(error) {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const request of pending) {
      this._platform.clearTimeout(request.timer);
      request.reject(
        Object.assign(new LambdacastError(error.code, error.message), {
          action: request.action,
          channel: request.channel,
        }),
      );
    }
  }
}
