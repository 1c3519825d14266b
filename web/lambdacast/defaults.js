// The client's default options.

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
