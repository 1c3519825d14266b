// The heartbeat: a `ping` after heartbeatIdle ms without receiving anything; no `pong` within
// heartbeatTimeout means the socket is dead (half-open TCP), so the connection replaces it.
import { LambdacastError } from "./errors.js";

export class Heartbeat {
  /**
   * @param {object} options the client's options (heartbeatIdle, heartbeatTimeout)
   * @param {ReturnType<import("./platform.js").platformOf>} platform timers and clock
   * @param {(frame: object, timeout: number) => Promise<object>} request sends a request on the socket
   * @param {(error: LambdacastError) => void} dead called when no pong came
   */
  constructor(options, platform, request, dead) {
    this._options = options;
    this._platform = platform;
    this._request = request;
    this._dead = dead;
    this._timer = null;
    this._lastReceived = 0;
    this._generation = 0; // bumps on stop(): the answer to a ping of a socket gone is ignored
  }

  /** A socket opened: it counts as just heard from. */
  start() {
    this.received();
    this._arm();
  }

  /** Something arrived on the socket. */
  received() {
    this._lastReceived = this._platform.now();
  }

  /** The socket went: no more pings for it. */
  stop() {
    this._generation += 1;
    this._clear();
  }

  _clear() {
    if (this._timer !== null) this._platform.clearTimeout(this._timer);
    this._timer = null;
  }

  _arm(delay = this._options.heartbeatIdle) {
    this._clear();
    this._timer = this._platform.setTimeout(() => this._beat(), delay);
  }

  _beat() {
    this._timer = null;
    const idle = this._platform.now() - this._lastReceived;
    if (idle < this._options.heartbeatIdle) return this._arm(this._options.heartbeatIdle - idle);
    const generation = this._generation;
    this._request({ action: "ping" }, this._options.heartbeatTimeout).then(
      () => generation === this._generation && this._arm(),
      (err) => {
        if (generation !== this._generation) return;
        if (err.fromServer) return this._arm();
        this._dead(
          new LambdacastError(
            "heartbeat_timeout",
            `no pong within ${this._options.heartbeatTimeout} ms: the connection is dead`,
          ),
        );
      },
    );
    return undefined;
  }
}
