// The client's events: listeners per event name; a listener that throws is logged and harms no other.

export class Emitter {
  constructor() {
    this._listeners = new Map();
  }

  /** Add a listener; returns a function that removes it. */
  on(event, listener) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(listener);
    return () => this.off(event, listener);
  }

  off(event, listener) {
    this._listeners.get(event)?.delete(listener);
  }

  emit(event, ...args) {
    for (const listener of [...(this._listeners.get(event) ?? [])]) {
      try {
        listener(...args);
      } catch (err) {
        console.error(`lambdacast: a '${event}' listener threw`, err);
      }
    }
  }
}
