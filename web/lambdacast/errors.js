// The one error type the client reports, from the server (an `error` frame) or from itself.

/** Every failure this library reports: `code` is the server's error code or one of the client's own. */
export class LambdacastError extends Error {
  /**
   * @param {string} code machine-readable reason
   * @param {string} message a sentence for humans
   * @param {object} [details] extra fields: channel, action, frame (the server's error frame), cause
   */
  constructor(code, message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "LambdacastError";
    this.code = code;
    for (const [key, value] of Object.entries(details)) if (key !== "cause") this[key] = value;
  }

  /** True when the server sent this error (an `error` frame), false for client-side failures. */
  get fromServer() {
    return this.frame !== undefined;
  }
}
