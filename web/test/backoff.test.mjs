// Reconnect delays: exponential backoff with full jitter (AWS's "full jitter": random in [0, min(cap, base * 2^n))).
import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, DEFAULTS } from "../lambdacast.js";

test("the ceiling doubles from 1 s and is capped at 10 s by default", () => {
  // GIVEN a random source at the top of its range
  const top = () => 0.999999;
  // WHEN the delays of the first seven retries are computed
  const delays = [0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, DEFAULTS.backoff, top));
  // THEN they follow 1, 2, 4, 8 s and then stay at the 10 s cap
  assert.deepEqual(delays, [999, 1999, 3999, 7999, 9999, 9999, 9999]);
});

test("full jitter spreads each delay over [0, ceiling)", () => {
  // GIVEN the bottom and the middle of the random range
  // WHEN the fourth retry's delay is computed
  // THEN the delay is the random fraction of the 8 s ceiling
  assert.equal(
    backoffDelay(3, DEFAULTS.backoff, () => 0),
    0,
  );
  assert.equal(
    backoffDelay(3, DEFAULTS.backoff, () => 0.5),
    4000,
  );
});

test("base, factor and cap are configurable", () => {
  // GIVEN a policy of 200 ms base, x3, capped at 1 s
  const policy = { base: 200, factor: 3, cap: 1000 };
  // WHEN the first four ceilings are computed
  const delays = [0, 1, 2, 3].map((n) => backoffDelay(n, policy, () => 0.999999));
  // THEN they grow by 3 and stop at the cap
  assert.deepEqual(delays, [199, 599, 999, 999]);
});
