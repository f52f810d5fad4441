/**
 * `mesh.dispatcher`: an undici Dispatcher that sends `http://<service>/...` through the mesh and
 * every other origin through an ordinary undici Agent, untouched. With
 * `setGlobalDispatcher(mesh.dispatcher)` (the application's choice — Trellis never installs it
 * by itself), Node's built-in fetch and undici's request()/fetch() reach mesh services by name.
 *
 * A mesh origin is plain `http:` on the default port whose host is a configured service name.
 */
import { Agent, Dispatcher } from 'undici';
import { CallContext } from '../core/context.js';
import { CallController } from '../core/call-signal.js';
import { AbortedError } from '../core/errors.js';
import { currentAmbient } from '../core/ambient.js';
import type { Destinations } from './destinations.js';
import { isIdempotentMethod, normalizeHeaders } from './http-request.js';
import type { HttpRequest } from './http-request.js';
import { bridgeToHandler } from './dispatch-bridge.js';

function bodyReplayable(body: unknown, max: number): boolean {
  if (body === undefined || body === null) return true;
  if (typeof body === 'string') return Buffer.byteLength(body) <= max;
  if (body instanceof Uint8Array) return body.byteLength <= max;
  return false;
}

export class MeshDispatcher extends Dispatcher {
  readonly #destinations: Destinations;
  readonly #fallback: Dispatcher;
  readonly #ownsFallback: boolean;

  constructor(destinations: Destinations, fallback?: Dispatcher) {
    super();
    this.#destinations = destinations;
    this.#fallback = fallback ?? new Agent();
    this.#ownsFallback = fallback === undefined;
  }

  /** The mesh service an origin names, if it is one. */
  #serviceOf(origin: Dispatcher.DispatchOptions['origin']): string | undefined {
    if (origin === undefined) return undefined;
    let url: URL;
    try {
      url = typeof origin === 'string' ? new URL(origin) : origin;
    } catch {
      return undefined;
    }
    if (url.protocol !== 'http:' || (url.port !== '' && url.port !== '80')) return undefined;
    return this.#destinations.get(url.hostname) !== undefined ? url.hostname : undefined;
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const service = this.#serviceOf(opts.origin);
    if (service === undefined) return this.#fallback.dispatch(opts, handler);
    const dest = this.#destinations.get(service);
    if (dest === undefined) return this.#fallback.dispatch(opts, handler);
    const method = (opts.method ?? 'GET').toUpperCase();
    const headers = normalizeHeaders(opts.headers);
    const req: HttpRequest = {
      method,
      path: opts.path,
      headers,
      body: opts.body,
      replayable: bodyReplayable(opts.body, dest.maxReplayBytes),
      classify: undefined,
      rest: opts.query !== undefined ? { query: opts.query } : {},
    };
    const ac = new CallController();
    const ctx = new CallContext(service, isIdempotentMethod(method) || opts.idempotent === true);
    ctx.signal = ac.signal;
    ctx.deadline = currentAmbient()?.deadline;
    bridgeToHandler(
      handler,
      (reason) => ac.abort(new AbortedError('aborted by the dispatch handler', { service, cause: reason })),
      () => dest.http.service(req, ctx),
    );
    return true;
  }

  override async close(): Promise<void> {
    if (this.#ownsFallback) await this.#fallback.close();
  }

  override async destroy(): Promise<void> {
    if (this.#ownsFallback) await this.#fallback.destroy();
  }
}
