// Per-channel ordering: messages in seq order within a window, duplicates dropped, gaps reported.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SeqOrderer } from "../lambdacast.js";

const msg = (seq) => ({ type: "message", channel: "lobby", seq, data: `m${seq}` });
const seqs = (result) => result.deliver.map((m) => m.seq);

function synced(last = 0, options) {
  const orderer = new SeqOrderer(options);
  orderer.sync(last);
  return orderer;
}

test("in-order messages are delivered at once", () => {
  // GIVEN a channel subscribed at seq 0
  const orderer = synced(0);
  // WHEN seq 1 then 2 arrive
  // THEN each is delivered immediately and nothing waits
  assert.deepEqual(seqs(orderer.push(msg(1))), [1]);
  assert.deepEqual(seqs(orderer.push(msg(2))), [2]);
  assert.equal(orderer.waiting, false);
});

test("a message that arrives early waits for the ones before it", () => {
  // GIVEN a channel subscribed at seq 0
  const orderer = synced(0);
  // WHEN seq 3 and 2 arrive before 1
  const early = [orderer.push(msg(3)), orderer.push(msg(2))];
  // THEN nothing is delivered and the orderer waits for the gap
  assert.deepEqual(early.map(seqs), [[], []]);
  assert.equal(orderer.waiting, true);
  // AND when 1 arrives, 1, 2, 3 are delivered in order
  assert.deepEqual(seqs(orderer.push(msg(1))), [1, 2, 3]);
  assert.equal(orderer.waiting, false);
});

test("duplicates of delivered or held messages are dropped", () => {
  // GIVEN seq 1 delivered and seq 3 held
  const orderer = synced(0);
  orderer.push(msg(1));
  orderer.push(msg(3));
  // WHEN 1 and 3 arrive again
  const again = [orderer.push(msg(1)), orderer.push(msg(3))];
  // THEN both are reported as duplicates and nothing is delivered
  assert.deepEqual(
    again.map((r) => [r.duplicate, seqs(r)]),
    [
      [true, []],
      [true, []],
    ],
  );
  // AND the held 3 is delivered once when 2 arrives
  assert.deepEqual(seqs(orderer.push(msg(2))), [2, 3]);
});

test("flush gives up on a gap: delivers what is held in order and reports the missing range", () => {
  // GIVEN 5 and 4 held while 2 and 3 never arrive
  const orderer = synced(1);
  orderer.push(msg(5));
  orderer.push(msg(4));
  // WHEN the reorder window runs out
  const flushed = orderer.flush();
  // THEN 4 and 5 are delivered and 2-3 reported missing
  assert.deepEqual(seqs(flushed), [4, 5]);
  assert.deepEqual(flushed.gaps, [{ from: 2, to: 3 }]);
  // AND a straggler 3 arriving later is still delivered, flagged late (a reported gap is not a loss)
  const straggler = orderer.push(msg(3));
  assert.deepEqual([seqs(straggler), straggler.deliver[0].late], [[3], true]);
});

test("holding more than maxBuffered messages says so, and gives up on nothing by itself", () => {
  // GIVEN room for two held messages
  const orderer = synced(0, { maxBuffered: 2 });
  orderer.push(msg(2));
  orderer.push(msg(3));
  assert.equal(orderer.overflowing, false);
  // WHEN a third early message arrives
  const result = orderer.push(msg(4));
  // THEN nothing is delivered nor reported (the client fills the hole from history first), and it overflows
  assert.deepEqual([seqs(result), result.gaps], [[], []]);
  assert.equal(orderer.overflowing, true);
  // AND giving up delivers 2-4 and reports 1
  const flushed = orderer.flush();
  assert.deepEqual([seqs(flushed), flushed.gaps], [[2, 3, 4], [{ from: 1, to: 1 }]]);
});

test("a skipped seq (own publish without echo) does not hold later messages back", () => {
  // GIVEN a channel at seq 4 whose seq 5 is our own publish, not echoed
  const orderer = synced(4);
  // WHEN seq 6 arrives before the ack for 5, then the ack marks 5 as skipped
  assert.deepEqual(seqs(orderer.push(msg(6))), []);
  const afterSkip = orderer.skip(5);
  // THEN 6 is delivered without waiting and no gap is reported
  assert.deepEqual(seqs(afterSkip), [6]);
  assert.deepEqual(afterSkip.gaps, []);
});

test("before the first subscribed reply, messages wait and those at or below its seq are dropped", () => {
  // GIVEN a fresh orderer that has not heard `subscribed` yet
  const orderer = new SeqOrderer();
  // WHEN seq 7 and 8 arrive, then `subscribed` says the channel was at 7
  orderer.push(msg(8));
  orderer.push(msg(7));
  assert.equal(orderer.waiting, false);
  const result = orderer.sync(7);
  // THEN only 8 (published after the subscription) is delivered
  assert.deepEqual(seqs(result), [8]);
});

test("resubscribing without recovery reports what was missed while away", () => {
  // GIVEN seq 1-3 delivered, then a reconnect during which 4-6 were published
  const orderer = synced(0);
  for (const s of [1, 2, 3]) orderer.push(msg(s));
  orderer.push(msg(7)); // published after the new subscription, arrived before its reply
  // WHEN `subscribed` answers seq 6
  const result = orderer.sync(6);
  // THEN 4-6 are reported as a gap and 7 is delivered
  assert.deepEqual(result.gaps, [{ from: 4, to: 6 }]);
  assert.deepEqual(seqs(result), [7]);
});

test("resubscribing with recovery keeps the replayed messages in order", () => {
  // GIVEN seq 1 delivered, then replayed 3 and 2 arrive after a reconnect
  const orderer = synced(0);
  orderer.push(msg(1));
  const replayed = [orderer.push(msg(3)), orderer.push(msg(2))];
  // WHEN `subscribed` answers recovered at seq 3
  const result = orderer.sync(3, { recovered: true });
  // THEN 2 and 3 came out in order, with no gap
  assert.deepEqual(replayed.map(seqs), [[], [2, 3]]);
  assert.deepEqual([seqs(result), result.gaps], [[], []]);
});

test("a channel whose seq went backwards starts a new stream", () => {
  // GIVEN a channel delivered up to 9 (e.g. before the local emulator restarted)
  const orderer = synced(9);
  // WHEN the resubscribe answers seq 2
  const result = orderer.sync(2);
  // THEN a reset is reported and seq 3 is delivered instead of dropped as a duplicate
  assert.equal(result.reset, true);
  assert.deepEqual(seqs(orderer.push(msg(3))), [3]);
});

test("a live message newer than the resubscribe's seq, received before its reply, is not a restart", () => {
  // GIVEN seq 1-3 delivered; the resubscribe is sent with since 3; 4 and 5 arrive live before the reply
  const orderer = synced(0);
  for (const s of [1, 2, 3]) orderer.push(msg(s));
  const live = [orderer.push(msg(4)), orderer.push(msg(5))];
  // WHEN `subscribed` answers seq 4 (read before 5 was published)
  const result = orderer.sync(4, { recovered: true, from: 3 });
  // THEN no reset and no gap: 4 and 5 were delivered once, in order
  assert.deepEqual(live.map(seqs), [[4], [5]]);
  assert.equal(result.reset, undefined);
  assert.deepEqual([seqs(result), result.gaps], [[], []]);
});

test("past maxBuffered, a late 1 and 2 still deliver everything in order", () => {
  // GIVEN an orderer at 0 holding at most 2 messages (e.g. during a history backfill)
  const orderer = synced(0, { maxBuffered: 2 });
  // WHEN 3, 4 and 5 arrive (1-2 missing)
  const results = [3, 4, 5].map((s) => orderer.push(msg(s)));
  // THEN nothing is delivered and no gap reported until 1 and 2 come
  assert.deepEqual(
    results.flatMap((r) => [...seqs(r), ...r.gaps]),
    [],
  );
  orderer.push(msg(1));
  assert.deepEqual(seqs(orderer.push(msg(2))), [2, 3, 4, 5]);
});

const inEpoch = (epoch, seq) => ({ ...msg(seq), epoch });

test("a subscribed reply of another epoch restarts the stream at 0 and reports what was not replayed", () => {
  // GIVEN an orderer at seq 9 of epoch e1
  const orderer = new SeqOrderer();
  orderer.sync(9, { epoch: "e1" });
  // WHEN the resubscribe answers seq 3 of e2, without a full replay
  const result = orderer.sync(3, { epoch: "e2", recovered: false });
  // THEN the stream restarted in e2 and 1-3 are the gap
  assert.deepEqual([result.reset, result.epoch, result.gaps], [true, "e2", [{ from: 1, to: 3 }]]);
  assert.deepEqual([orderer.epoch, orderer.last], ["e2", 3]);
});

test("on a restart, messages the old epoch held are delivered first, as `prior`", () => {
  // GIVEN an orderer of e1 at 1 holding 3 (2 missing)
  const orderer = new SeqOrderer();
  orderer.sync(1, { epoch: "e1" });
  orderer.push(inEpoch("e1", 3));
  // WHEN seq 1 of a new epoch e2 arrives
  const result = orderer.push(inEpoch("e2", 1));
  // THEN e1's 3 comes first (2 reported), then e2's 1
  assert.deepEqual(
    [seqs(result.prior), result.prior.gaps, result.reset, seqs(result)],
    [[3], [{ from: 2, to: 2 }], true, [1]],
  );
});

test("frames of an epoch left behind are stale; the reset is not applied twice", () => {
  // GIVEN an orderer moved from e1 to e2 by a frame, whose subscribe was sent in e1 (generation 0)
  const orderer = new SeqOrderer();
  orderer.sync(5, { epoch: "e1" });
  const generation = orderer.generation;
  orderer.push(inEpoch("e2", 1));
  // WHEN e1's 6 arrives, then the reply says e2 with reset: true
  const stale = orderer.push(inEpoch("e1", 6));
  const reply = orderer.sync(1, { epoch: "e2", reset: true, recovered: true, generation });
  // THEN the stale frame is dropped and the reply restarts nothing
  assert.deepEqual([stale.stale, seqs(stale)], [true, []]);
  assert.deepEqual([reply.reset, orderer.last], [undefined, 1]);
});

test("a late message is delivered once: a second copy is a duplicate", () => {
  // GIVEN an orderer that reported 2-3 as a gap
  const orderer = synced(1);
  orderer.push(msg(4));
  orderer.flush();
  // WHEN 3 arrives, twice
  const [first, second] = [orderer.push(msg(3)), orderer.push(msg(3))];
  // THEN the first is delivered late and the second dropped
  assert.deepEqual([seqs(first), first.late, second.duplicate], [[3], true, true]);
});

test("an ack of another epoch does not mark a seq of this one as skipped", () => {
  // GIVEN an orderer of e2 at 0
  const orderer = new SeqOrderer();
  orderer.sync(0, { epoch: "e2" });
  // WHEN an ack of e1 says seq 1 was ours, then e2's 1 arrives
  orderer.skip(1, "e1");
  // THEN e2's 1 is delivered
  assert.deepEqual(seqs(orderer.push(inEpoch("e2", 1))), [1]);
});
