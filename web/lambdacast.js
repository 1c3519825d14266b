// lambdacast.js - the browser client for lambdacast (wire protocol v1).
// Dependency-free ES modules: `import lambdacast from "./lambdacast.js"` from a <script type="module">; this
// entry point loads its parts from the lambdacast/ folder beside it (serve or copy both).
// It adds what the raw WebSocket lacks: request/reply matching with timeouts, reconnect with
// exponential backoff and full jitter, a fresh token per attempt, resubscribe, a heartbeat,
// a bounded publish queue while offline, idempotent publishes (a msgId kept across resends), per-channel
// (epoch, seq) ordering with duplicate removal, recovery of missed messages on reconnect (`since`, then
// `history`), live holes filled from `history`, and presence with a versioned live member list.
// Timers, the clock, randomness and the WebSocket class are injectable, so the logic runs in Node tests.
import { backoffDelay } from "./lambdacast/backoff.js";
import { Client, connect } from "./lambdacast/client.js";
import { DEFAULTS } from "./lambdacast/defaults.js";
import { LambdacastError } from "./lambdacast/errors.js";
import { SeqOrderer } from "./lambdacast/orderer.js";
import { CHANNEL_PATTERN, HISTORY_PAGE, PROTOCOL_VERSION } from "./lambdacast/protocol.js";

export {
  backoffDelay,
  CHANNEL_PATTERN,
  Client,
  connect,
  DEFAULTS,
  HISTORY_PAGE,
  LambdacastError,
  PROTOCOL_VERSION,
  SeqOrderer,
};

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
