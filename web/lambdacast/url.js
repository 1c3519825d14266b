// The WebSocket URL: checked once in connect(), and given the current token before every attempt.
import { LambdacastError } from "./errors.js";

/** Hosts where ws:// never leaves the machine. */
const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * Refuse a URL the client cannot or must not connect to: not a ws:// or wss:// URL, or a token in clear.
 * @param {string} url
 * @param {object} options the options given to connect()
 * @throws {LambdacastError} invalid_url or insecure_url
 */
export function checkUrl(url, options) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new LambdacastError("invalid_url", `not a URL: ${JSON.stringify(String(url))}`);
  }
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new LambdacastError("invalid_url", `the URL must start with ws:// or wss://, got ${parsed.protocol}//`);
  }
  refuseTokenInClear(parsed, options);
}

/**
 * A token travels in the URL (browsers cannot set WebSocket headers): over ws:// anyone on the network path
 * reads it. So a token (the `token` or `getToken` option, or `?token=` in the URL) needs wss://, except to
 * this machine.
 */
function refuseTokenInClear(parsed, options) {
  const token = parsed.searchParams.has("token") || Boolean(options.token) || typeof options.getToken === "function";
  if (!token || parsed.protocol !== "ws:" || LOCAL_HOSTS.has(parsed.hostname)) return;
  throw new LambdacastError(
    "insecure_url",
    `refusing to send a token over ws:// to ${parsed.host}: use wss:// (ws:// is for localhost, 127.0.0.1 and ::1 only)`,
  );
}

/**
 * The URL of one connection attempt: `url` with the current token (from getToken or token) as `?token=`.
 * @param {string} url
 * @param {{token?: string, getToken?: () => string | Promise<string>}} options
 */
export async function socketUrl(url, options) {
  const token = options.getToken ? await options.getToken() : options.token;
  if (token === undefined || token === null || token === "") return url;
  if (typeof token !== "string") throw new TypeError("the token must be a string");
  const withToken = new URL(url);
  withToken.searchParams.set("token", token);
  return withToken.toString();
}

/** The URL without its token, for error messages. */
export function redact(url) {
  return url.replace(/([?&]token=)[^&#]*/, "$1***");
}
