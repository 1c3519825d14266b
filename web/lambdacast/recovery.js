// Recovery of what a channel's stream missed, from `history`: after a resubscribe the server could not
// replay, the `rewind` of a first subscribe, and holes in the live stream that outlive the reorder window.
import { HISTORY_PAGE } from "./protocol.js";

export class Recovery {
  /** @param {object} ctx the client's shared parts: options, platform, emit, request, connection, channels */
  constructor(ctx) {
    this._ctx = ctx;
  }

  /**
   * After `subscribed`, before the channel counts as live: fetch with `history` what the server did not
   * replay (`recovered: false` after `since`, or after a reset to a new epoch), or the `rewind` earlier
   * messages of a first subscribe.
   */
  async catchUp(entry, since, reply, gen) {
    const options = this._ctx.options;
    const seq = reply.seq;
    const orderer = entry.orderer;
    if (!Number.isSafeInteger(seq)) return;
    if (since !== undefined) {
      // orderer.last, not since: after a reset it is 0 of the new epoch, and replayed frames may have moved it.
      if (reply.recovered === false && seq > orderer.last && options.recoverLimit > 0) {
        await this._backfill(entry, Math.max(orderer.last, seq - options.recoverLimit), seq, gen);
      }
    } else if (entry.rewind > 0 && orderer.last === null && seq > 0) {
      // A first subscribe: the stream starts after seq - rewind; the older part is not a gap.
      this._ctx.channels.deliver(entry, orderer.sync(Math.max(0, seq - entry.rewind), { epoch: reply.epoch }));
      await this._backfill(entry, orderer.last, seq, gen, { quiet: true });
    }
  }

  /**
   * Run the reorder window for a channel's live stream: while messages wait for a missing seq, wait
   * `reorderWindow` (or not at all when more than reorderMaxBuffered wait), then fill the hole from history.
   * Not while the channel is (re)subscribing or catching up: the replay and backfill deal with holes then.
   */
  settleHoles(entry) {
    const { connection, options, platform } = this._ctx;
    const live = entry.subscribed && !entry.op && !entry.backfilling && !entry.filling && connection.connected;
    if (!live || !entry.orderer.waiting) {
      if (entry.gapTimer !== null) platform.clearTimeout(entry.gapTimer);
      entry.gapTimer = null;
      return;
    }
    if (entry.orderer.overflowing) {
      if (entry.gapTimer !== null) platform.clearTimeout(entry.gapTimer);
      entry.gapTimer = null;
      this._fillHoles(entry);
    } else if (entry.gapTimer === null) {
      entry.gapTimer = platform.setTimeout(() => {
        entry.gapTimer = null;
        this._fillHoles(entry);
      }, options.reorderWindow);
    }
  }

  /**
   * Page back through `history` for the messages after `from` up to `upto`, and deliver them in order.
   * A missing older part is a gap (reported unless quiet); the caller's sync(upto) reports any later hole.
   */
  async _backfill(entry, from, upto, gen, { quiet = false } = {}) {
    const { connection, channels } = this._ctx;
    const orderer = entry.orderer;
    const generation = orderer.generation;
    const pages = [];
    let before = upto + 1;
    entry.backfilling = true;
    this.settleHoles(entry);
    try {
      while (before > from + 1) {
        const limit = Math.min(HISTORY_PAGE, before - from - 1);
        const reply = await this._ctx.request({ action: "history", channel: entry.channel, limit, before });
        if (gen !== connection.generation) return;
        if (orderer.generation !== generation) break; // a new epoch began meanwhile: these pages are stale
        const page = historyPage(entry, reply, from, before);
        if (page.length === 0) break;
        pages.unshift(page);
        before = page[0].seq;
        // A short page means the history has nothing older (expired or never stored), unless the
        // server cut the page to fit one post and says there is `more`.
        if (page.length < limit && reply.more !== true) break;
      }
    } catch (err) {
      if (gen !== connection.generation) return;
      entry.backfilling = false;
      if (!err.fromServer) throw err; // the connection went: the next reconnect recovers again
      this._ctx.emit("error", err); // e.g. forbidden: what is missing is reported as a gap below
    }
    entry.backfilling = false;
    if (orderer.generation !== generation) return;
    const messages = pages.flat();
    const start = messages.length > 0 ? messages[0].seq : upto + 1;
    if (orderer.last !== null && start - 1 > orderer.last) {
      channels.deliver(entry, quiet ? orderer.advance(start - 1) : orderer.flush(start - 1));
    }
    for (const message of messages) channels.push(entry, message);
  }

  /**
   * A live hole outlived the reorder window: ask `history` for the missing seqs (one request, at most one
   * page, from the oldest missing seq), deliver what it has, and report the rest of the hole as a gap.
   * Holes that open meanwhile get their own window, so each hole costs at most one request.
   */
  async _fillHoles(entry) {
    const { connection, channels } = this._ctx;
    const orderer = entry.orderer;
    if (!orderer.waiting || entry.filling || !connection.connected) return;
    const gen = connection.generation;
    const generation = orderer.generation;
    const top = orderer.highestHeld; // the holes end below it
    const from = orderer.last;
    const missing = orderer.highestMissing;
    if (missing === null) return;
    const to = Math.min(missing, from + HISTORY_PAGE);
    entry.filling = true;
    let page = [];
    try {
      const reply = await this._ctx.request({
        action: "history",
        channel: entry.channel,
        limit: to - from,
        before: to + 1,
      });
      if (gen !== connection.generation || orderer.generation !== generation || !entry.filling) return;
      page = historyPage(entry, reply, from, to + 1);
    } catch (err) {
      if (gen !== connection.generation || orderer.generation !== generation || !entry.filling) return;
      if (!err.fromServer && err.code === "connection_lost") return; // the resubscribe's `since` recovers it
      this._ctx.emit("error", err); // refused or timed out: the hole is reported as a gap below
    }
    for (const message of page) channels.push(entry, message);
    entry.filling = false;
    channels.deliver(entry, orderer.flush(top - 1));
  }
}

/** The messages of a `history` reply with from < seq < before, in seq order, when of the stream's epoch. */
function historyPage(entry, reply, from, before) {
  const epoch = entry.orderer.epoch;
  if (typeof reply.epoch === "string" && epoch !== null && reply.epoch !== epoch) return [];
  return (Array.isArray(reply.messages) ? reply.messages : [])
    .filter((m) => m && Number.isSafeInteger(m.seq) && m.seq > from && m.seq < before)
    .map((m) => (m.epoch === undefined && typeof reply.epoch === "string" ? { ...m, epoch: reply.epoch } : m))
    .sort((a, b) => a.seq - b.seq);
}
