// How long to wait before trying again: a reconnect, or a request the server refused for now.
import { DEFAULTS } from "./defaults.js";

/**
 * The delay before retry number `attempt` (0-based): full jitter, random in [0, min(cap, base * factor^attempt)).
 * @param {number} attempt
 * @param {{base: number, factor: number, cap: number}} [policy]
 * @param {() => number} [random] uniform in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, policy = DEFAULTS.backoff, random = Math.random) {
  const ceiling = Math.min(policy.cap, policy.base * policy.factor ** attempt);
  return Math.floor(random() * ceiling);
}

/**
 * How long to wait before sending a refused request again, or null when it must not be: `rate_limited`
 * after its `retryAfterMs`, `internal_error` (the server changed nothing) after the reconnect backoff.
 * @param {import("./errors.js").LambdacastError} err the refusal
 * @param {number} attempt refusals of this request so far
 * @param {{base: number, factor: number, cap: number}} policy
 * @param {() => number} random
 * @returns {number | null} milliseconds
 */
export function retryDelay(err, attempt, policy, random) {
  const retryAfter = err.frame?.retryAfterMs;
  if (err.code === "rate_limited" && Number.isSafeInteger(retryAfter) && retryAfter >= 0) return retryAfter;
  if (err.code === "internal_error") return backoffDelay(attempt, policy, random);
  return null;
}
