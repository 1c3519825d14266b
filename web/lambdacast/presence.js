// Presence on presence- channels: the live member list (a snapshot, then member events applied in version
// order on top of it), and the onPresence handlers and member_joined / member_left events it feeds.
import { LambdacastError } from "./errors.js";

/** Member events held per presence channel while waiting for a missing version, before refetching at once. */
const MAX_PENDING_MEMBER_EVENTS = 100;

/** The presence state of a new presence- channel entry. */
export function presenceState() {
  return {
    members: null, // userId -> member, once the first snapshot arrived
    v: null, // the presence version of `members` (null: a server without versions)
    buffer: null, // member events held until the snapshot in flight arrives
    pending: new Map(), // v -> member event that came before the one it follows
    timer: null, // waiting for a missing version
    fetching: false,
    ticket: 0,
  };
}

/** A presence member map as a list sorted by userId. */
export function memberList(members) {
  return [...members.values()].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
}

/** The `member_joined` / `member_left` event of a frame: {channel, member} and the presence version `v`. */
function memberEvent(frame) {
  const event = { channel: frame.channel, member: frame.member };
  if (Number.isSafeInteger(frame.v)) event.v = frame.v;
  return event;
}

export class Presence {
  /** @param {object} ctx the client's shared parts: options, platform, emit, request, channels */
  constructor(ctx) {
    this._ctx = ctx;
  }

  /** Fetch the member list; member events arriving meanwhile are buffered and applied on top of it. */
  refresh(entry) {
    const state = entry.presence;
    const ticket = ++state.ticket; // only the latest snapshot request counts
    // Every member event received so far is in the snapshot asked for now (its change was committed before
    // it was posted, and the list is read after this request arrives): only later ones are applied on top.
    // That also drops held events that wait for a version this snapshot covers (or that never comes).
    state.buffer = [];
    state.pending.clear();
    state.fetching = true;
    if (state.timer !== null) this._ctx.platform.clearTimeout(state.timer);
    state.timer = null;
    this._ctx.request({ action: "presence", channel: entry.channel }).then(
      (reply) => {
        if (state.ticket !== ticket || !this._ctx.channels.holds(entry)) return;
        const members = new Map();
        for (const member of Array.isArray(reply.members) ? reply.members : []) {
          if (member && typeof member.userId === "string") members.set(member.userId, member);
        }
        const held = [...(state.buffer ?? []), ...state.pending.values()]; // all received after the request
        state.members = members;
        state.v = Number.isSafeInteger(reply.v) ? reply.v : null;
        state.buffer = null;
        state.pending.clear();
        state.fetching = false;
        // Versioned events in version order (those up to the snapshot's version are in it already);
        // events of a server without versions in arrival order, as before.
        const versioned = held.filter((f) => Number.isSafeInteger(f.v)).sort((a, b) => a.v - b.v);
        for (const frame of held) if (!Number.isSafeInteger(frame.v)) this._apply(entry, frame, false);
        for (const frame of versioned) this._accept(entry, frame, false);
        this._notify(entry, { type: "snapshot" });
      },
      (err) => {
        if (state.ticket !== ticket) return;
        state.fetching = false;
        state.buffer = null;
        if (err.fromServer) this._ctx.emit("error", err);
      },
    );
  }

  /** A member_joined / member_left frame pushed by the server. */
  onMember(frame) {
    if (typeof frame.channel !== "string" || !frame.member || typeof frame.member.userId !== "string") return;
    const entry = this._ctx.channels.get(frame.channel);
    const state = entry?.presence;
    if (!state) {
      this._ctx.emit(frame.type, memberEvent(frame));
      return;
    }
    if (state.buffer !== null)
      state.buffer.push(frame); // a snapshot is on its way: apply after it
    else if (state.members !== null) this._accept(entry, frame, true);
  }

  /** Stop waiting for versions and abandon the snapshot in flight (the socket went, or the channel did). */
  pause(entry) {
    const state = entry.presence;
    if (state.timer !== null) this._ctx.platform.clearTimeout(state.timer);
    state.timer = null;
    state.ticket += 1; // a snapshot in flight no longer counts
    state.fetching = false;
    state.buffer = null;
    state.pending.clear(); // the next snapshot covers them
  }

  /**
   * Apply a versioned member event in order: `v` <= the version held is stale (ignored), `v` = held + 1 is
   * applied (with any held events that follow it), a larger `v` waits for the missing ones for the reorder
   * window, then the list is fetched again.
   */
  _accept(entry, frame, notify) {
    const { options, platform } = this._ctx;
    const state = entry.presence;
    if (!Number.isSafeInteger(frame.v) || state.v === null) return this._apply(entry, frame, notify);
    if (frame.v <= state.v) return undefined;
    if (frame.v > state.v + 1) {
      state.pending.set(frame.v, frame);
      if (state.pending.size > MAX_PENDING_MEMBER_EVENTS) this._gap(entry);
      else if (state.timer === null) {
        state.timer = platform.setTimeout(() => {
          state.timer = null;
          this._gap(entry);
        }, options.reorderWindow);
      }
      return undefined;
    }
    this._apply(entry, frame, notify);
    state.v = frame.v;
    while (state.pending.has(state.v + 1)) {
      const next = state.pending.get(state.v + 1);
      state.pending.delete(state.v + 1);
      this._apply(entry, next, notify);
      state.v = next.v;
    }
    if (state.pending.size === 0 && state.timer !== null) {
      platform.clearTimeout(state.timer);
      state.timer = null;
    }
    return undefined;
  }

  /** A presence version is missing for good: fetch the list again (held events are applied on top). */
  _gap(entry) {
    const state = entry.presence;
    if (state.fetching || !entry.subscribed || !this._ctx.channels.holds(entry)) return;
    this.refresh(entry);
  }

  _apply(entry, frame, notify) {
    const members = entry.presence.members;
    if (frame.type === "member_joined") members.set(frame.member.userId, frame.member);
    else members.delete(frame.member.userId);
    this._ctx.emit(frame.type, memberEvent(frame));
    if (notify) this._notify(entry, { type: frame.type, member: frame.member });
  }

  _notify(entry, change) {
    const list = memberList(entry.presence.members);
    for (const handler of [...entry.handlers]) this.call(entry, handler, list, change);
  }

  /** Call one subscriber's onPresence; a handler that throws becomes a `handler_error` on 'error'. */
  call(entry, handler, list, change) {
    if (!handler.onPresence) return;
    try {
      handler.onPresence(list, change);
    } catch (err) {
      this._ctx.emit(
        "error",
        new LambdacastError("handler_error", `onPresence for ${entry.channel} threw: ${err?.message ?? err}`, {
          channel: entry.channel,
          cause: err,
        }),
      );
    }
  }
}
