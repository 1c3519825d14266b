// What the client takes from its environment: the WebSocket class, timers, the clock, randomness and the
// target of the browser's `online` event. Each is an option of connect(), so the logic runs in Node tests.

/**
 * The environment of one client, from its options (globals where an option is not given).
 * @param {object} options the options given to connect()
 */
export function platformOf(options) {
  const timers = options.timers ?? globalThis;
  return {
    WebSocket: options.WebSocket ?? globalThis.WebSocket,
    setTimeout: (fn, ms) => timers.setTimeout(fn, ms),
    clearTimeout: (handle) => timers.clearTimeout(handle),
    now: options.now ?? Date.now,
    random: options.random ?? Math.random,
    getRandomValues:
      options.getRandomValues ??
      (globalThis.crypto?.getRandomValues
        ? (array) => globalThis.crypto.getRandomValues(array)
        : (array) => array.map(() => Math.floor(Math.random() * 256))),
    onlineTarget: options.onlineTarget ?? globalThis,
  };
}
