/**
 * Bridges a response from the outbound stack to an undici dispatch handler of either style:
 * the controller API (onRequestStart/onResponseStart/...; undici 7) or the legacy callbacks
 * (onConnect/onHeaders/onData/onComplete/onError) that Node 20's built-in fetch and undici's
 * own request() still use. Honours back-pressure (pause/resume) and aborts both ways.
 */
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';

type Handler = Dispatcher.DispatchHandler;

function rawHeaders(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Buffer[] {
  const raw: Buffer[] = [];
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) raw.push(Buffer.from(k, 'latin1'), Buffer.from(item, 'latin1'));
    else raw.push(Buffer.from(k, 'latin1'), Buffer.from(String(v), 'latin1'));
  }
  return raw;
}

/** The controller handed to new-style handlers; `abort` cancels the mesh call. */
class BridgeController implements Dispatcher.DispatchController {
  #aborted = false;
  #paused = false;
  #reason: Error | null = null;
  readonly #onAbort: (reason: Error) => void;
  #body: Dispatcher.ResponseData['body'] | undefined;

  constructor(onAbort: (reason: Error) => void) {
    this.#onAbort = onAbort;
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
  attach(body: Dispatcher.ResponseData['body']): void {
    this.#body = body;
  }
  abort(reason: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#onAbort(reason);
    this.#body?.destroy(reason);
  }
  pause(): void {
    this.#paused = true;
    this.#body?.pause();
  }
  resume(): void {
    this.#paused = false;
    this.#body?.resume();
  }
}

/**
 * Drives `handler` with the outcome of `call`. `abort` cancels the underlying mesh call
 * (wired to the AbortSignal the call was given).
 */
export function bridgeToHandler(handler: Handler, abort: (reason: Error) => void, call: () => Promise<Dispatcher.ResponseData>): void {
  const controller = new BridgeController(abort);
  const modern = typeof handler.onRequestStart === 'function' || typeof handler.onResponseStart === 'function';
  const fail = (err: Error): void => {
    if (modern) handler.onResponseError?.(controller, err);
    else handler.onError?.(err);
  };
  if (modern) handler.onRequestStart?.(controller, {});
  else handler.onConnect?.((err?: Error) => controller.abort(err ?? new Error('aborted')));
  if (controller.aborted) return;

  call().then(
    (res) => {
      const body = res.body;
      controller.attach(body);
      if (controller.aborted) {
        body.destroy();
        return;
      }
      if (modern) {
        handler.onResponseStart?.(controller, res.statusCode, res.headers as IncomingHttpHeaders, '');
      } else {
        const keepGoing = handler.onHeaders?.(res.statusCode, rawHeaders(res.headers), () => controller.resume(), '');
        if (keepGoing === false) controller.pause();
      }
      body.on('data', (chunk: Buffer) => {
        if (modern) handler.onResponseData?.(controller, chunk);
        else if (handler.onData?.(chunk) === false) controller.pause();
      });
      body.on('end', () => {
        const trailers = (res.trailers ?? {}) as IncomingHttpHeaders;
        if (modern) handler.onResponseEnd?.(controller, trailers);
        else handler.onComplete?.(rawHeaders(trailers).map((b) => b.toString('latin1')));
      });
      body.on('error', (err: Error) => {
        if (!controller.aborted) fail(err);
      });
    },
    (err: unknown) => fail(err instanceof Error ? err : new Error(String(err))),
  );
}

/**
 * Fails a dispatch before it starts, as undici's dispatchers do for options they refuse
 * (DispatcherBase.dispatch): synchronously, through the handler's error callback alone, with no
 * onConnect / onRequestStart first.
 */
export function failHandler(handler: Handler, err: Error): void {
  if (typeof handler.onResponseError === 'function') handler.onResponseError(new BridgeController(() => undefined), err);
  else handler.onError?.(err);
}
