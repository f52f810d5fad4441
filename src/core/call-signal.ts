/**
 * CallSignal: the cancellation signal that travels with a call through the layers (timeouts,
 * per-try timeouts, caller aborts) and down to undici. It offers the parts of `AbortSignal` the
 * layers and undici use (`aborted`, `reason`, `addEventListener`/`removeEventListener`, and the
 * EventEmitter form `on`/`once`/`removeListener` undici also accepts) at a fraction of the
 * cost: on Node 20, creating an AbortSignal costs about 2 µs (measured: 8% of the mesh's CPU
 * per request with two per call), a CallSignal a few dozen nanoseconds.
 *
 * Invariants: it aborts at most once; listeners run once, in registration order, and are
 * dropped after they ran; a listener added after the abort is not called (check `aborted`).
 */

type Listener = () => void;

export class CallSignal {
  aborted = false;
  reason: unknown = undefined;
  #listeners: Listener[] | undefined = undefined;

  addEventListener(_type: 'abort', listener: Listener, _options?: { once?: boolean }): void {
    if (this.aborted) return;
    (this.#listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: Listener): void {
    const ls = this.#listeners;
    if (ls === undefined) return;
    const i = ls.indexOf(listener);
    if (i >= 0) ls.splice(i, 1);
  }

  on(type: 'abort', listener: Listener): this {
    this.addEventListener(type, listener);
    return this;
  }

  once(type: 'abort', listener: Listener): this {
    this.addEventListener(type, listener);
    return this;
  }

  removeListener(type: 'abort', listener: Listener): this {
    this.removeEventListener(type, listener);
    return this;
  }

  off(type: 'abort', listener: Listener): this {
    this.removeEventListener(type, listener);
    return this;
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  /** Aborts with `reason` and runs the listeners. Only the controller should call it. */
  abortWith(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const ls = this.#listeners;
    this.#listeners = undefined;
    if (ls !== undefined) for (const l of ls) l();
  }

  /** A CallSignal that follows a standard AbortSignal (for signals callers pass in). */
  static fromAbortSignal(signal: AbortSignal): CallSignal {
    const s = new CallSignal();
    if (signal.aborted) s.abortWith(signal.reason);
    else signal.addEventListener('abort', () => s.abortWith(signal.reason), { once: true });
    return s;
  }
}

/** Owns a CallSignal, as AbortController owns an AbortSignal. */
export class CallController {
  readonly signal = new CallSignal();
  abort(reason?: unknown): void {
    this.signal.abortWith(reason);
  }
}
