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
  /** Injectables, for tests. */
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocketLike;
  timers?: Timers;
  now?: () => number;
  random?: () => number;
  /** Where the 'online' event comes from (default: globalThis, i.e. window). */
  onlineTarget?: Pick<EventTarget, "addEventListener" | "removeEventListener"> | Record<string, never>;
}

export declare const DEFAULTS: Readonly<
  Required<
    Omit<
      ConnectOptions,
      "protocols" | "token" | "getToken" | "backoff" | "WebSocket" | "timers" | "now" | "random" | "onlineTarget"
    >
  > & {
    backoff: Readonly<BackoffPolicy>;
  }
>;

export interface Sender {
  /** null for a server-side (HTTP) publish. */
  connectionId: string | null;
  userId: string | null;
}

export interface Message<T = unknown> {
  type: "message";
  channel: string;
  seq: number;
  data: T;
  from: Sender;
  /** Server time of the publish, ms since the epoch. */
  ts: number;
}

export interface Ack {
  channel: string;
  seq: number;
  /** Connections the message was posted to. */
  delivered: number;
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
  /** Resolves when the server confirms; rejects with the server's code (`forbidden`, `too_many_members`...). */
  readonly ready: Promise<void>;
  /** presence- channels: the live member list (sorted by userId) once known; else null. */
  readonly members: Member[] | null;
  unsubscribe(): void;
}

export interface MemberEvent {
  channel: string;
  member: Member;
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
   * First and last missing seq (not recovered by the replay or the history backfill: beyond `recoverLimit`,
   * expired, or `recover` off); null with `reset` when the channel's counter started over.
   */
  from: number | null;
  to: number | null;
  reset?: true;
}

export interface ClientEvents {
  state: (state: ConnectionState, info: StateInfo) => void;
  error: (error: LambdacastError) => void;
  welcome: (welcome: Welcome) => void;
  gap: (gap: Gap) => void;
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
  /** Publish; rejects with the server's code (`not_subscribed`, `forbidden`, `rate_limited`, `too_large`...). */
  publish(channel: string, data: unknown, options?: { echo?: boolean; timeout?: number }): Promise<Ack>;
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
  deliver: Message[];
  gaps: Array<{ from: number; to: number }>;
  duplicate?: true;
  reset?: true;
}

/** One channel's seq ordering and duplicate removal (pure; used by Client). */
export declare class SeqOrderer {
  constructor(options?: { maxBuffered?: number });
  readonly last: number | null;
  readonly waiting: boolean;
  push(message: Message): OrderResult;
  skip(seq: number): OrderResult;
  /** True during a history backfill: holding more than maxBuffered does not give up on a gap. */
  paused: boolean;
  sync(seq: number, options?: { recovered?: boolean; from?: number | null }): OrderResult;
  flush(): OrderResult;
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
