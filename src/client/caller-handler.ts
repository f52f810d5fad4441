/**
 * The caller's undici dispatch handler, in the one form the hot path speaks: undici's callback
 * handler (onConnect/onHeaders/onData/onComplete/onError, raw header buffers), the form undici's
 * own request(), Node 20's built-in fetch and undici's Pool use. A handler of undici 7's
 * controller form (onRequestStart/onResponseStart/...) is wrapped once, at the edge, as undici's
 * own WrapHandler/UnwrapHandler pair does; a callback handler passes through untouched, so the
 * raw headers the upstream sent reach it without being parsed and rebuilt on the way.
 */
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';

/** A callback-form dispatch handler, as the hot path calls it. */
export interface CallbackHandler {
  onConnect?(abort: (reason?: Error) => void, context?: object): void;
  /** The first byte of a response arrived (undici's fetch() notes it as the response-start time of its resource timing). */
  onResponseStarted?(): void;
  onHeaders?(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  onComplete?(trailers: string[] | Buffer[] | null): void;
  onError?(err: Error): void;
}

/** Raw header buffers (name, value, name, value, ...) as the plain object undici 7's controller handlers take. */
export function headersObject(raw: readonly (Buffer | string)[] | null | undefined): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  if (raw === null || raw === undefined) return out;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!.toString().toLowerCase();
    const v = raw[i + 1]!.toString('latin1' as BufferEncoding);
    const prev = out[k];
    if (prev === undefined) out[k] = v;
    else if (Array.isArray(prev)) prev.push(v);
    else out[k] = [prev, v];
  }
  return out as IncomingHttpHeaders;
}

/** Drives a controller-form handler from callbacks: what undici's UnwrapHandler does. */
class ControllerAdapter implements CallbackHandler, Dispatcher.DispatchController {
  readonly #handler: Dispatcher.DispatchHandler;
  #abort: ((reason?: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #aborted = false;
  #paused = false;
  #reason: Error | null = null;

  constructor(handler: Dispatcher.DispatchHandler) {
    this.#handler = handler;
  }

  get aborted(): boolean {
    return this.#aborted;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  abort(reason: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#abort?.(reason);
  }
  pause(): void {
    this.#paused = true;
  }
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#resume?.();
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.#abort = abort;
    this.#handler.onRequestStart?.(this, {});
    if (this.#aborted) abort(this.#reason ?? undefined);
  }
  onHeaders(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    this.#resume = resume;
    this.#handler.onResponseStart?.(this, statusCode, headersObject(headers), statusText);
    return !this.#paused;
  }
  onData(chunk: Buffer): boolean {
    this.#handler.onResponseData?.(this, chunk);
    return !this.#paused;
  }
  onComplete(trailers: string[] | Buffer[] | null): void {
    this.#handler.onResponseEnd?.(this, headersObject(trailers));
  }
  onError(err: Error): void {
    this.#handler.onResponseError?.(this, err);
  }
}

/** The caller's handler in callback form (a callback-form handler is returned as it is). */
export function callbackHandler(handler: Dispatcher.DispatchHandler): CallbackHandler {
  if (typeof handler.onRequestStart === 'function' || typeof handler.onResponseStart === 'function') return new ControllerAdapter(handler);
  return handler as CallbackHandler;
}

/** The controller a controller-form handler is given when a dispatch fails before it starts. */
const REFUSED: Dispatcher.DispatchController = Object.freeze({
  aborted: false,
  paused: false,
  reason: null,
  abort: () => undefined,
  pause: () => undefined,
  resume: () => undefined,
});

/**
 * Fails a dispatch before it starts, as undici's dispatchers do for options they refuse
 * (DispatcherBase.dispatch): synchronously, through the handler's error callback alone, with no
 * onConnect / onRequestStart first.
 */
export function failHandler(handler: Dispatcher.DispatchHandler, err: Error): void {
  if (typeof handler.onResponseError === 'function') handler.onResponseError(REFUSED, err);
  else handler.onError?.(err);
}
