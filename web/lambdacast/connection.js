// The connection across sockets: attempts (token, handshake, connect timeout), the session set up on each
// socket (hello, resubscribes), reconnect with backoff, the heartbeat, and the state machine
// 'connecting' -> 'open' <-> 'reconnecting' -> 'closed'. Frames received go to the request they answer or
// to the channels.
import { backoffDelay } from "./backoff.js";
import { LambdacastError } from "./errors.js";
import { Heartbeat } from "./heartbeat.js";
import { OPEN } from "./protocol.js";
import { Requests } from "./requests.js";
import { redact, socketUrl } from "./url.js";

export class Connection {
  /**
   * @param {string} url ws:// or wss:// URL of the WebSocket API stage (checked already)
   * @param {object} ctx the client's shared parts: options, platform, emit, channels, presence, publishes
   */
  constructor(url, ctx) {
    this.url = url;
    this._ctx = ctx;
    /** @type {'connecting'|'open'|'reconnecting'|'closed'} */
    this.state = "connecting";
    /** Why the client closed itself (null after close() or while running). */
    this.error = null;
    this.connectionId = null;
    this.userId = null;
    this.limits = null;
    this.ws = null;
    this.connected = false; // the current socket is open
    this.sessionOpen = false; // hello and resubscribes done on the current socket
    this.generation = 0; // bumps with every socket; callbacks from older sockets are ignored
    this._everOpen = false;
    this._failures = 0; // consecutive attempts that did not reach a session
    this._retryIndex = 0;
    this._timers = { retry: null, connect: null };
    this._immediate = false; // the next reconnect was asked for (reconnect()): no delay, not a failure
    this.requests = new Requests(ctx.options, ctx.platform, () => (this.connected ? this.ws : null));
    this._heartbeat = new Heartbeat(
      ctx.options,
      ctx.platform,
      (frame, timeout) => this.requests.send(frame, timeout),
      (error) => this.lose(error),
    );
    this._onOnline = () => this.retryNow();
  }

  /** A session is open on a socket that still sends: requests and publishes can go out now. */
  get open() {
    return this.sessionOpen && this.ws?.readyState === OPEN;
  }

  /** Connect in the background (after the constructor returns, so the app can listen first). */
  start() {
    this._ctx.platform.onlineTarget.addEventListener?.("online", this._onOnline);
    queueMicrotask(() => {
      if (this.state === "closed") return;
      this._ctx.emit("state", "connecting", { attempt: 1 });
      this._attempt();
    });
  }

  /** Drop the current socket and connect again now (no delay, and not counted as a failure). */
  reconnect() {
    if (this._timers.retry !== null) return this.retryNow();
    this._immediate = true;
    this.lose(new LambdacastError("reconnect_requested", "the app asked for a new connection"));
    return undefined;
  }

  /** Skip the wait before the next attempt (the browser is back online). */
  retryNow() {
    if (this._timers.retry === null || this.state === "closed") return;
    this._clearTimer("retry");
    this._attempt();
  }

  async _attempt() {
    const { options, platform } = this._ctx;
    const gen = ++this.generation;
    this._timers.retry = null;
    this._timers.connect = platform.setTimeout(
      () =>
        this._attemptFailed(
          gen,
          new LambdacastError("connect_timeout", `no connection within ${options.connectTimeout} ms`),
        ),
      options.connectTimeout,
    );
    let url;
    try {
      url = await socketUrl(this.url, options);
    } catch (err) {
      this._attemptFailed(
        gen,
        new LambdacastError("token_error", `getToken failed: ${err?.message ?? err}`, { cause: err }),
      );
      return;
    }
    if (gen !== this.generation || this.state === "closed") return;
    let ws;
    try {
      ws = new platform.WebSocket(url, options.protocols);
    } catch (err) {
      this._attemptFailed(gen, new LambdacastError("connect_failed", `cannot open ${redact(url)}: ${err.message}`));
      return;
    }
    this.ws = ws;
    ws.onopen = () => ws === this.ws && this._onOpen(ws);
    ws.onmessage = (event) => ws === this.ws && this._receive(event.data);
    ws.onclose = (event) => ws === this.ws && this._onClose(event);
    ws.onerror = () => {}; // a close event always follows, with the code
  }

  _attemptFailed(gen, error) {
    if (gen !== this.generation || this.state === "closed") return;
    this.lose(error);
  }

  _onOpen(ws) {
    this._clearTimer("connect");
    this.connected = true;
    this._heartbeat.start();
    const gen = this.generation;
    const hello = this.requests.send({ action: "hello" }).then(
      (welcome) => {
        this.connectionId = welcome.connectionId ?? null;
        this.userId = welcome.userId ?? null;
        this.limits = welcome.limits ?? null;
        this._ctx.emit("welcome", welcome);
      },
      (err) => {
        if (!err.fromServer) throw err; // a server without `hello` is fine; a dead socket is not
      },
    );
    const resubscribes = this._ctx.channels.resubscribeAll();
    Promise.all([hello, ...resubscribes]).then(
      () => {
        if (gen !== this.generation || ws !== this.ws) return;
        this.sessionOpen = true;
        this._everOpen = true;
        this._failures = 0;
        this._retryIndex = 0;
        this._setState("open", { connectionId: this.connectionId });
        this._ctx.publishes.flush();
      },
      (err) => {
        if (gen === this.generation && ws === this.ws) this.lose(err);
      },
    );
  }

  _receive(text) {
    this._heartbeat.received();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      this._ctx.emit("error", new LambdacastError("invalid_json", "the server sent a frame that is not JSON"));
      return;
    }
    if (frame === null || typeof frame !== "object") return;
    this._ctx.emit("frame", frame);
    if (this.requests.settle(frame)) return;
    if (frame.type === "message") this._ctx.channels.onMessage(frame);
    else if (frame.type === "member_joined" || frame.type === "member_left") this._ctx.presence.onMember(frame);
    else if (frame.type === "error" && frame.id === undefined) {
      this._ctx.emit("error", new LambdacastError(frame.code ?? "error", frame.message ?? "server error", { frame }));
    }
  }

  _onClose(event) {
    const code = event?.code ?? 1006;
    const reason = event?.reason ? ` (${event.reason})` : "";
    const what = this.connected ? "the connection closed" : `could not connect to ${this.url}`;
    const errorCode = this.connected ? "connection_lost" : "connect_failed";
    this.lose(new LambdacastError(errorCode, `${what} (close code ${code}${reason})`, { closeCode: code }));
  }

  /** The current socket is gone (closed, dead or failed): clean up and schedule the next attempt. */
  lose(error) {
    const { options, platform } = this._ctx;
    const ws = this.ws;
    const hadSession = this.sessionOpen;
    this.generation += 1;
    this.ws = null;
    this.connected = false;
    this.sessionOpen = false;
    this._clearTimer("connect");
    this._heartbeat.stop();
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(4000, "lambdacast: reconnecting");
      } catch {
        // already closing
      }
    }
    this._ctx.channels.socketLost();
    this._ctx.publishes.socketLost();
    this.requests.rejectAll(
      new LambdacastError("connection_lost", `the connection was lost under the request: ${error.message}`),
    );
    if (this.state === "closed") return;
    const requested = this._immediate;
    this._immediate = false;
    if (!hadSession && !requested) this._failures += 1;
    if (!requested) this._ctx.emit("error", error);
    const limit = this._everOpen ? options.maxReconnectAttempts : options.maxConnectAttempts;
    if (this._failures >= limit) {
      const attempts = `${this._failures} failed attempt${this._failures === 1 ? "" : "s"}`;
      const last =
        error.closeCode === undefined
          ? `${error.code}: ${error.message}`
          : `${error.code}, close code ${error.closeCode}`;
      const message = `gave up after ${attempts} to connect to ${this.url} (last error: ${last})`;
      this.shutdown(new LambdacastError("connect_failed", message, { cause: error }));
      return;
    }
    const delay = requested ? 0 : backoffDelay(this._retryIndex, options.backoff, platform.random);
    if (!requested) this._retryIndex += 1;
    this._setState(this._everOpen ? "reconnecting" : "connecting", { error, delay, attempt: this._failures + 1 });
    this._timers.retry = platform.setTimeout(() => this._attempt(), delay);
  }

  /** Close for good with `error` (null: the app closed it): everything waiting rejects. */
  shutdown(error) {
    this.error = error;
    this.state = "closed";
    this._ctx.platform.onlineTarget.removeEventListener?.("online", this._onOnline);
    this._clearTimer("retry");
    this._clearTimer("connect");
    this._heartbeat.stop();
    const ws = this.ws;
    this.ws = null;
    this.generation += 1;
    this.connected = false;
    this.sessionOpen = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000, "lambdacast: closed");
      } catch {
        // already closing
      }
    }
    const closed = error ?? new LambdacastError("closed", "the client was closed");
    this.requests.rejectAll(closed);
    this._ctx.publishes.shutdown(closed);
    this._ctx.channels.shutdown(closed);
    this._ctx.emit("state", "closed", { error });
    if (error) this._ctx.emit("error", error);
  }

  _setState(state, info = {}) {
    const changed = state !== this.state;
    this.state = state;
    if (changed || state !== "open") this._ctx.emit("state", state, info);
  }

  _clearTimer(name) {
    if (this._timers[name] !== null) this._ctx.platform.clearTimeout(this._timers[name]);
    this._timers[name] = null;
  }
}
