// SeqOrderer: one channel's messages in (epoch, seq) order, without duplicates. Pure: no timers, no requests.
import { DEFAULTS } from "./defaults.js";

const SKIPPED = Symbol("skipped"); // a seq known to exist that will never arrive here (own publish, no echo)
const MAX_MISSED_RANGES = 256; // reported gaps remembered per channel, so a late arrival is still delivered
const MAX_PAST_EPOCHS = 16; // epochs a channel left behind: their frames are stale

/**
 * Puts one channel's messages in seq order within its epoch, and drops true duplicates. Pure: no timers,
 * no requests; the client decides when to give up on a hole (after filling it from `history`).
 *
 * A channel's stream is `(epoch, seq)`: seqs go 1, 2, 3... within an epoch, and a new epoch (the channel's
 * counter was created again) starts over at 1. `last` is the highest seq delivered or accounted for in the
 * current epoch. A seq at or below `last` is delivered anyway (flagged `late: true`) when it lies in a gap
 * already reported; only a seq already delivered (or accounted for) in the same epoch is a duplicate.
 *
 * Every method returns `{deliver, gaps, ...}`: the messages to hand to the app in this order, the ranges
 * given up (`{from, to}`), and, when the stream restarted in a new epoch, `reset: true, epoch` plus `prior`,
 * the result of closing the old epoch (deliver it first).
 */
export class SeqOrderer {
  /** @param {{maxBuffered?: number}} [options] maxBuffered: held messages beyond which `overflowing` is true */
  constructor({ maxBuffered = DEFAULTS.reorderMaxBuffered } = {}) {
    this.maxBuffered = maxBuffered;
    /** The epoch of the stream (null until a frame or reply names one: servers before epochs never do). */
    this.epoch = null;
    /** Highest seq delivered or accounted for in `epoch`; null until the first `subscribed`. */
    this.last = null;
    /** Bumps on every restart, so the client can tell whether a reset was already applied. */
    this.generation = 0;
    this._held = new Map(); // seq -> message frame | SKIPPED, every key > last
    this._heldMessages = 0;
    this._missed = []; // [from, to] ranges reported as gaps, ascending and disjoint, all <= last
    this._past = []; // epochs this channel left behind
  }

  /** True when messages wait for a missing seq (the client then runs the reorder window). */
  get waiting() {
    return this.last !== null && this._heldMessages > 0;
  }

  /** True when more than maxBuffered messages wait: the client should not wait out the window. */
  get overflowing() {
    return this._heldMessages > this.maxBuffered;
  }

  /** The highest seq held (waiting for a seq before it), or null. */
  get highestHeld() {
    let highest = null;
    for (const key of this._held.keys()) if (highest === null || key > highest) highest = key;
    return highest;
  }

  /** The highest missing seq below the highest held one (the end of the holes), or null. */
  get highestMissing() {
    const top = this.highestHeld;
    if (top === null || this.last === null) return null;
    for (let seq = top - 1; seq > this.last; seq -= 1) if (!this._held.has(seq)) return seq;
    return null;
  }

  /** A message frame arrived (live, replayed or from `history`). */
  push(message) {
    const seq = message.seq;
    if (!Number.isSafeInteger(seq)) return result([message]);
    const epoch = message.epoch;
    if (typeof epoch === "string" && this.last !== null && epoch !== this.epoch) {
      if (this._past.includes(epoch)) return result([], [], { stale: true });
      // An epoch we never held is a newer one (the reply announcing it may still be on its way).
      const reset = this.restart(epoch);
      return { ...this.push(message), reset: true, epoch, prior: reset.prior };
    }
    if (this.last !== null && seq <= this.last) {
      if (this._unmiss(seq)) return result([{ ...message, late: true }], [], { late: true });
      return result([], [], { duplicate: true });
    }
    if (this._held.has(seq)) return result([], [], { duplicate: true });
    if (this.last !== null && seq === this.last + 1) {
      this.last = seq;
      return result([message, ...this._drain()]);
    }
    this._hold(seq, message);
    return result([]);
  }

  /**
   * A seq that will not arrive here (our own publish without echo): do not wait for it.
   * @param {number} seq
   * @param {string} [epoch] the ack's epoch: a seq of another epoch is ignored
   */
  skip(seq, epoch) {
    if (!Number.isSafeInteger(seq)) return result([]);
    if (typeof epoch === "string" && this.epoch !== null && epoch !== this.epoch) return result([]);
    if (this.last !== null && seq <= this.last) {
      this._unmiss(seq); // accounted for after all: a copy arriving later is a duplicate
      return result([]);
    }
    if (this._held.has(seq)) return result([]);
    if (this.last !== null && seq === this.last + 1) {
      this.last = seq;
      return result(this._drain());
    }
    this._hold(seq, SKIPPED);
    return result([]);
  }

  /**
   * The `subscribed` reply named the channel's epoch: restart the stream when it is not ours.
   * @param {string | undefined} epoch
   * @param {{reset?: boolean, generation?: number}} [options] reset: the reply said `reset: true`;
   *   generation: `this.generation` when the subscribe was sent (a reset applied since then is not redone)
   */
  adopt(epoch, { reset = false, generation = this.generation } = {}) {
    if (typeof epoch !== "string") return result([]);
    if (this.last === null) {
      // First subscribe: frames held so far of another epoch belong to a counter that is gone.
      this.epoch = epoch;
      for (const [key, value] of [...this._held]) {
        if (value !== SKIPPED && typeof value.epoch === "string" && value.epoch !== epoch) this._unhold(key);
      }
      return result([]);
    }
    if (epoch !== this.epoch || (reset && generation === this.generation)) return this.restart(epoch);
    return result([]);
  }

  /**
   * The server answered `subscribed` with the channel's latest seq.
   * @param {number} seq
   * @param {{recovered?: boolean, from?: number | null, epoch?: string, reset?: boolean, generation?: number}}
   *   [options] recovered: the server replayed everything after our `since`; from: `last` when the subscribe
   *   was sent (only for servers without epochs: a `seq` below it means the channel started over);
   *   epoch, reset, generation: as for adopt()
   */
  sync(seq, { recovered = false, from = null, epoch, reset = false, generation = this.generation } = {}) {
    if (!Number.isSafeInteger(seq)) seq = this.last ?? 0;
    const restarted = this.adopt(epoch, { reset, generation });
    if (this.last === null) {
      // First subscribe: the stream starts after `seq`; anything held at or below it was published before.
      this.last = seq;
      for (const key of [...this._held.keys()]) if (key <= seq) this._unhold(key);
      return result(this._drain());
    }
    let outcome;
    if (typeof epoch !== "string" && seq < (from ?? this.last)) {
      // A server without epochs whose counter went backwards (e.g. a fresh local emulator): a new stream.
      outcome = this.restart(null);
      this.last = seq;
    } else {
      outcome = recovered ? result(this._drain()) : this.flush(seq);
    }
    return restarted.reset ? { ...outcome, reset: true, epoch: restarted.epoch, prior: restarted.prior } : outcome;
  }

  /**
   * Give up on every missing seq up to `upto` (default: all, up to the highest held): deliver what is
   * held in order and report the missing ranges (remembered, so a late arrival is still delivered).
   */
  flush(upto) {
    return this._giveUp(upto, false);
  }

  /** Move the start of the stream to `upto` without a gap (rewind: the older part was never asked for). */
  advance(upto) {
    return this._giveUp(upto, true);
  }

  /** Start over in a new epoch at seq 0; what the old epoch held is delivered first (`prior`). */
  restart(epoch) {
    const prior = this.last === null ? result([]) : this.flush();
    if (this.epoch !== null && this.epoch !== epoch) {
      this._past.push(this.epoch);
      if (this._past.length > MAX_PAST_EPOCHS) this._past.shift();
    }
    this.epoch = epoch;
    this.last = 0;
    this._held.clear();
    this._heldMessages = 0;
    this._missed = [];
    this.generation += 1;
    return result([], [], { reset: true, epoch, prior });
  }

  _giveUp(upto, quiet) {
    const deliver = [];
    const gaps = [];
    if (this.last === null) return result([]);
    if (upto === undefined || upto === null) upto = this.highestHeld ?? this.last;
    for (const key of [...this._held.keys()].sort((a, b) => a - b)) {
      if (key > upto + 1) break;
      this._take(key, deliver, quiet ? null : gaps);
    }
    if (upto > this.last) {
      if (!quiet) this._report(gaps, this.last + 1, upto);
      this.last = upto;
    }
    deliver.push(...this._drain());
    return result(deliver, gaps);
  }

  _take(key, deliver, gaps) {
    if (gaps !== null && key > this.last + 1) this._report(gaps, this.last + 1, key - 1);
    const value = this._held.get(key);
    this._unhold(key);
    if (value !== SKIPPED) deliver.push(value);
    this.last = key;
  }

  _report(gaps, from, to) {
    gaps.push({ from, to });
    const tail = this._missed.at(-1);
    if (tail && tail[1] + 1 >= from) tail[1] = Math.max(tail[1], to);
    else this._missed.push([from, to]);
    if (this._missed.length > MAX_MISSED_RANGES) this._missed.shift();
  }

  /** Remove `seq` from the reported gaps; true when it was in one. */
  _unmiss(seq) {
    const index = this._missed.findIndex(([from, to]) => from <= seq && seq <= to);
    if (index < 0) return false;
    const [from, to] = this._missed[index];
    const parts = [];
    if (from < seq) parts.push([from, seq - 1]);
    if (seq < to) parts.push([seq + 1, to]);
    this._missed.splice(index, 1, ...parts);
    return true;
  }

  _hold(seq, value) {
    this._held.set(seq, value);
    if (value !== SKIPPED) this._heldMessages += 1;
  }

  _unhold(seq) {
    const value = this._held.get(seq);
    if (!this._held.delete(seq)) return;
    if (value !== SKIPPED) this._heldMessages -= 1;
  }

  _drain() {
    const out = [];
    while (this._held.has(this.last + 1)) this._take(this.last + 1, out, null);
    return out;
  }
}

function result(deliver, gaps = [], extra = {}) {
  return { deliver, gaps, ...extra };
}
