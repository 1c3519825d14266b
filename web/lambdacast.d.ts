// Type declarations for lambdacast.js, the browser client of lambdacast (wire protocol v1).

export declare const PROTOCOL_VERSION: 1;

/** Channel names the server accepts: 1-128 characters from A-Z a-z 0-9 _ - = @ , . ; : */
export declare const CHANNEL_PATTERN: RegExp;

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** Codes the server sends in `error` frames (docs/protocol.md). */
export type ServerErrorCode =
  | "invalid_json"
  | "invalid_frame"
  | "unknown_action"
  | "invalid_channel"
  | "not_subscribed"
  | "forbidden"
  | "too_many_members"
  | "rate_limited"
  | "too_large"
  | "too_many_channels"
  | "internal_error";

/** Codes the client raises itself. */
export type ClientErrorCode =
  | "invalid_url"
  | "insecure_url"
  | "invalid_channel"
  | "invalid_argument"
  | "invalid_frame"
  | "invalid_data"
  | "too_large"
  | "timeout"
  | "connection_lost"
  | "connect_failed"
  | "connect_timeout"
  | "token_error"
  | "heartbeat_timeout"
  | "reconnect_requested"
  | "queue_full"
  | "closed"
  | "unsubscribed"
  | "handler_error";

export interface BackoffPolicy {
  /** First retry ceiling, ms (default 1000). */
  base: number;
  /** Growth per failed attempt (default 2). */
  factor: number;
  /** Largest ceiling, ms (default 10000). */
  cap: number;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code?: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export interface ConnectOptions {
  /** WebSocket subprotocols offered in the handshake. */
  protocols?: string | string[];
  /** A fixed token, sent as the `token` query parameter. */
  token?: string;
  /** Called before every attempt (first connect and each reconnect) for a fresh token. */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** ms to wait for the reply to a request (default 15000). */
  requestTimeout?: number;
  /** ms for getToken plus the handshake (default 10000). */
  connectTimeout?: number;
  /** Reconnect backoff with full jitter (default 1 s base, x2, capped at 10 s). */
  backoff?: Partial<BackoffPolicy>;
  /** Failed attempts before the first session that close the client with `connect_failed` (default 5). */
  maxConnectAttempts?: number;
  /** The same once a session has existed (default Infinity). */
  maxReconnectAttempts?: number;
  /** ms without receiving anything before a ping (default 60000). */
  heartbeatIdle?: number;
  /** ms to wait for the pong before the socket counts as dead (default 10000). */
  heartbeatTimeout?: number;
  /** Publishes that may wait for a connection (default 100); beyond, publish rejects with `queue_full`. */
  maxQueue?: number;
  /** ms an out-of-order message waits for the ones before it (default 1000). */
  reorderWindow?: number;
  /** Messages held per channel before a gap is given up (default 100). */
  reorderMaxBuffered?: number;
  /**
   * Largest frame the client will send (default 32768, API Gateway's frame quota: a browser sends each message
   * as one frame and a bigger frame gets the socket closed with 1009). Bigger requests reject with `too_large`
   * without touching the socket.
   */
  maxFrameBytes?: number;
  /**
   * One publish in flight per channel (default true): API Gateway runs frames concurrently, so pipelined
   * publishes could take their seq in another order than they were made. False trades that for throughput.
   */
  orderedPublish?: boolean;
  /**
   * Recover missed messages on every reconnect (default true): resubscribe with `since` (the last seq seen),
   * so the server replays up to 100 messages before `subscribed`. False: a reconnect reports a 'gap' instead.
   */
  recover?: boolean;
  /**
   * When the server cannot replay (`recovered: false`: a gap over 100 messages, or older than the history
   * retention), fetch at most this many of the newest missed messages with `history` (default 500; 0: none).
   * What is still missing is reported once as a 'gap'.
   */
  recoverLimit?: number;
  /**
   * A publish whose socket died before its ack is resent (same msgId, so it is numbered at most once) after the
   * reconnect only within this many ms of its first send (default 240000, under the server's 5-minute msgId
   * memory); later it rejects with `connection_lost`, outcome unknown.
   */
  resendWindow?: number;
  /** Injectables, for tests. */
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocketLike;
  timers?: Timers;
  now?: () => number;
  random?: () => number;
  /** Source of the msgIds' random bytes (default crypto.getRandomValues). */
  getRandomValues?: (array: Uint8Array) => Uint8Array;
  /** Where the 'online' event comes from (default: globalThis, i.e. window). */
  onlineTarget?: Pick<EventTarget, "addEventListener" | "removeEventListener"> | Record<string, never>;
}

export declare const DEFAULTS: Readonly<
  Required<
    Omit<
      ConnectOptions,
      | "protocols"
      | "token"
      | "getToken"
      | "backoff"
      | "WebSocket"
      | "timers"
      | "now"
      | "random"
      | "getRandomValues"
      | "onlineTarget"
    >
  > & {
    backoff: Readonly<BackoffPolicy>;
  }
>;

/**
 * Who published, as the stack's `SenderIdentity` parameter allows: `user` (the default) gives only `userId`,
 * `connection` adds `connectionId`, `none` sends no `from` at all.
 */
export interface Sender {
  /** The publisher's user (the token's `sub`); null for an anonymous connection or a server-side publish. */
  userId: string | null;
  /** Only with SenderIdentity `connection`; null for a server-side (HTTP) publish. */
  connectionId?: string | null;
}

export interface Message<T = unknown> {
  type: "message";
  channel: string;
  /** Position in the channel's stream: 1, 2, 3... within `epoch`. */
  seq: number;
  /**
   * The channel counter's epoch: a new one (the counter was created again) restarts seq at 1, announced by
   * the 'reset' event. Absent only from servers that predate epochs.
   */
  epoch?: string;
  data: T;
  /** Absent when the stack's SenderIdentity is `none`. */
  from?: Sender;
  /** The publisher's msgId. */
  msgId?: string;
  /** Server time of the publish, ms since the epoch. */
  ts: number;
  /**
   * True for a message of a gap already reported on the 'gap' event that arrived after all: it comes after
   * newer messages, so place it by `seq` if order matters to you.
   */
  late?: true;
}

export interface Ack {
  channel: string;
  seq: number;
  epoch?: string;
  /** Connections the message was posted to (absent on a duplicate). */
  delivered?: number;
  /** The publish's msgId (the client's random one unless you gave yours). */
  msgId: string;
  /** True when the server had numbered this msgId already (a resend): `seq` is the original one. */
  duplicate: boolean;
}

/** A member of a presence- channel: a user (two tabs of one user are one member). */
export interface Member {
  userId: string;
  /** Display info from the token (its `name` claim), or null. */
  info: { name?: string; [key: string]: unknown } | null;
}

export type PresenceChange =
  { type: "snapshot" } | { type: "member_joined"; member: Member } | { type: "member_left"; member: Member };

export interface SubscribeOptions {
  /**
   * On the client's first subscribe to the channel, deliver up to this many earlier messages (from
   * `history`) before the live ones, in order, without duplicates (0-100, default 0).
   */
  rewind?: number;
  /**
   * presence- channels: called with the member list (sorted by userId) after each snapshot (on every
   * subscribe and resubscribe) and after each `member_joined` / `member_left`.
   */
  onPresence?: (members: Member[], change: PresenceChange) => void;
}

export interface Subscription {
  readonly channel: string;
  /**
   * Resolves when the server confirms; rejects with the server's code (`forbidden`, `too_many_members`...).
   * `internal_error` and `rate_limited` are retried up to 3 times first.
   */
  readonly ready: Promise<void>;
  /** presence- channels: the live member list (sorted by userId) once known; else null. */
  readonly members: Member[] | null;
  unsubscribe(): void;
}

export interface MemberEvent {
  channel: string;
  member: Member;
  /** The channel's presence version after this change (absent from servers before versions). */
  v?: number;
}

export interface Welcome {
  type: "welcome";
  connectionId: string;
  userId: string | null;
  protocol: number;
  limits: { maxDataBytes: number; maxChannels: number };
}

export interface StateInfo {
  /** Why the previous socket ended (on connecting/reconnecting/closed). */
  error?: LambdacastError | null;
  /** ms until the next attempt. */
  delay?: number;
  /** Number of the next attempt since the last session. */
  attempt?: number;
  connectionId?: string | null;
}

export interface Gap {
  channel: string;
  /**
   * First and last missing seq of the current epoch: not recovered by the replay, the history backfill or
   * the live hole fill (beyond `recoverLimit`, expired, or `recover` off). Reported once; a message of the
   * range that arrives later is still delivered, with `late: true`.
   */
  from: number;
  to: number;
}

export interface Reset {
  channel: string;
  /** The epoch the stream restarted in (seq 1 is its first message); null from a server without epochs. */
  epoch: string | null;
}

export interface ClientEvents {
  state: (state: ConnectionState, info: StateInfo) => void;
  error: (error: LambdacastError) => void;
  welcome: (welcome: Welcome) => void;
  gap: (gap: Gap) => void;
  /** The channel's counter was created again (a new epoch): its stream restarts at seq 1. */
  reset: (reset: Reset) => void;
  member_joined: (event: MemberEvent) => void;
  member_left: (event: MemberEvent) => void;
  frame: (frame: Record<string, unknown>) => void;
}

export declare class LambdacastError extends Error {
  constructor(code: string, message: string, details?: Record<string, unknown>);
  readonly code: ServerErrorCode | ClientErrorCode | (string & {});
  /** The channel concerned, when there is one. */
  readonly channel?: string;
  /** The request action that failed, when there is one. */
  readonly action?: string;
  /** The server's error frame, when the server sent this error. */
  readonly frame?: { type: "error"; code: string; message: string; id?: string };
  /** The WebSocket close code, for connection errors. */
  readonly closeCode?: number;
  /** The publish's msgId, when a publish failed (resend it with `{msgId}` to stay exactly-once). */
  readonly msgId?: string;
  /** True when the server sent this error. */
  readonly fromServer: boolean;
}

export declare class Client {
  constructor(url: string, options?: ConnectOptions);
  readonly url: string;
  readonly state: ConnectionState;
  /** Why the client closed itself; null while running or after close(). */
  readonly error: LambdacastError | null;
  readonly connectionId: string | null;
  readonly userId: string | null;
  readonly limits: Welcome["limits"] | null;
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): void;
  subscribe<T = unknown>(
    channel: string,
    onMessage: (message: Message<T>) => void,
    options?: SubscribeOptions,
  ): Subscription;
  /**
   * Publish with a msgId (random unless given, 1-64 characters) that the client keeps when it sends again:
   * after a reconnect that lost the ack (within `resendWindow`), after `rate_limited` (once its `retryAfterMs`
   * passed) and after `internal_error` (up to twice), all within `timeout`. Rejects with the server's code
   * (`not_subscribed`, `forbidden`, `rate_limited`, `too_large`...) or the client's, and the msgId.
   */
  publish(channel: string, data: unknown, options?: { echo?: boolean; timeout?: number; msgId?: string }): Promise<Ack>;
  /**
   * The newest stored messages of a channel in seq order: `limit` 1-100 (default 50), `before` a seq
   * (page back with the smallest seq held). Waits for the connection within `timeout`.
   */
  history<T = unknown>(
    channel: string,
    options?: { limit?: number; before?: number; timeout?: number },
  ): Promise<Message<T>[]>;
  /** Who is in a presence- channel now, sorted by userId. Waits for the connection within `timeout`. */
  presence(channel: string, options?: { timeout?: number }): Promise<Member[]>;
  /** Drop the socket and connect again now (getToken runs again, e.g. after sign-in); subscriptions recover. */
  reconnect(): void;
  /** Send a request the client has no method for (e.g. `history`); resolves with the reply frame. */
  request(
    frame: { action: string; [field: string]: unknown },
    options?: { timeout?: number },
  ): Promise<Record<string, unknown>>;
  close(): void;
}

/** Delay before retry number `attempt` (0-based): random in [0, min(cap, base * factor^attempt)). */
export declare function backoffDelay(attempt: number, policy?: BackoffPolicy, random?: () => number): number;

export interface OrderResult {
  /** Hand these to the app, in this order (after `prior`'s). */
  deliver: Message[];
  /** Ranges given up, to report. */
  gaps: Array<{ from: number; to: number }>;
  duplicate?: true;
  /** The frame's epoch is one the channel left behind: dropped. */
  stale?: true;
  /** The message is of a gap already reported. */
  late?: true;
  /** The stream restarted in `epoch`; `prior` closes the old epoch (deliver it first). */
  reset?: true;
  epoch?: string | null;
  prior?: OrderResult;
}

/** One channel's (epoch, seq) ordering and duplicate removal (pure: no timers, no requests; used by Client). */
export declare class SeqOrderer {
  constructor(options?: { maxBuffered?: number });
  readonly epoch: string | null;
  readonly last: number | null;
  /** Bumps on every restart. */
  readonly generation: number;
  readonly waiting: boolean;
  /** More than maxBuffered messages wait for a missing seq. */
  readonly overflowing: boolean;
  readonly highestHeld: number | null;
  readonly highestMissing: number | null;
  push(message: Message): OrderResult;
  skip(seq: number, epoch?: string): OrderResult;
  adopt(epoch: string | undefined, options?: { reset?: boolean; generation?: number }): OrderResult;
  sync(
    seq: number,
    options?: { recovered?: boolean; from?: number | null; epoch?: string; reset?: boolean; generation?: number },
  ): OrderResult;
  /** Give up on the missing seqs up to `upto` (default all held): deliver what is held, report the rest. */
  flush(upto?: number): OrderResult;
  /** Move the stream's start to `upto` without reporting a gap. */
  advance(upto: number): OrderResult;
  restart(epoch: string | null): OrderResult;
}

/** The largest `history` page the server returns (and the `limit` maximum): 100. */
export declare const HISTORY_PAGE: 100;

/** Open a lambdacast connection; it connects in the background. */
export declare function connect(url: string, options?: ConnectOptions): Client;

declare const lambdacast: {
  readonly connect: typeof connect;
  readonly Client: typeof Client;
  readonly LambdacastError: typeof LambdacastError;
  readonly SeqOrderer: typeof SeqOrderer;
  readonly backoffDelay: typeof backoffDelay;
  readonly DEFAULTS: typeof DEFAULTS;
  readonly HISTORY_PAGE: typeof HISTORY_PAGE;
  readonly PROTOCOL_VERSION: typeof PROTOCOL_VERSION;
};
export default lambdacast;
