/**
 * `mesh.dispatcher`: an undici Dispatcher that sends `http://<service>/...` through the mesh and
 * every other origin through an ordinary undici Agent, untouched. With
 * `setGlobalDispatcher(mesh.dispatcher)` (the application's choice — Trellis never installs it
 * by itself), Node's built-in fetch and undici's request()/fetch() reach mesh services by name.
 *
 * A mesh origin is plain `http:` on the default port whose host is a configured service name.
 */
import { Agent, Dispatcher } from 'undici';
import { CallController } from '../core/call-signal.js';
import { AbortedError } from '../core/errors.js';
import type { Destinations } from './destinations.js';
import { isIdempotentMethod, toHttpRequest } from './http-request.js';
import { sendRequest } from './http-client.js';
import { bridgeToHandler, failHandler } from './dispatch-bridge.js';
import { invalidRequestArgument } from './request-validation.js';

/** The host of a plain-http, default-port origin (the only kind that can name a mesh service), else null. */
function meshHost(origin: string): string | null {
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' && (url.port === '' || url.port === '80') ? url.hostname : null;
  } catch {
    return null;
  }
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

  /** Host names of origin strings already parsed (null: never a mesh origin), so fetch() does not re-parse URLs. */
  readonly #hostOf = new Map<string, string | null>();

  /** The mesh service an origin names, if it is one. */
  #serviceOf(origin: Dispatcher.DispatchOptions['origin']): string | undefined {
    if (origin === undefined) return undefined;
    if (typeof origin === 'string') {
      let host = this.#hostOf.get(origin);
      if (host === undefined) {
        host = meshHost(origin);
        if (this.#hostOf.size >= 1024) this.#hostOf.clear();
        this.#hostOf.set(origin, host);
      }
      return host !== null && this.#destinations.get(host) !== undefined ? host : undefined;
    }
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
    // Refused before the stack, through the handler's error path (as undici's own dispatchers do).
    const invalid = invalidRequestArgument(opts, service);
    if (invalid !== undefined) {
      this.#destinations.invalidArgument(service, opts.method);
      failHandler(handler, invalid);
      return true;
    }
    const req = toHttpRequest(
      { path: opts.path, method: opts.method, headers: opts.headers, body: opts.body, ...(opts.query !== undefined ? { query: opts.query } : {}) },
      dest.maxReplayBytes,
    );
    const ac = new CallController();
    const call = { idempotent: isIdempotentMethod(req.method) || opts.idempotent === true, routeKey: undefined, signal: ac.signal };
    bridgeToHandler(
      handler,
      (reason) => ac.abort(new AbortedError('aborted by the dispatch handler', { service, cause: reason })),
      () => sendRequest(dest, service, req, call),
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
