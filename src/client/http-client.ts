/**
 * `mesh.http(service)`: an undici-shaped client for one destination. `request(opts)` takes
 * undici's request() options and returns its result shape (statusCode, headers, trailers,
 * body as a stream), sent through the destination's outbound stack. The stack is looked up at
 * the start of each request, so a config change applies to the next request and never to one
 * in flight.
 */
import type { Dispatcher } from 'undici';
import { ClosedError, InvalidArgumentError, UnknownServiceError } from '../core/errors.js';
import type { TrellisError } from '../core/errors.js';
import type { Destination, Destinations } from './destinations.js';
import { discardRefusedBody, invalidRequestArgument, isUpgrade } from './request-validation.js';
import type { MeshRequestOptions } from './http-request.js';
import type { HttpResponseClassifier } from './http-classify.js';
import { callerHeadersFor, ServiceDispatcher, wrongProtocol } from './core-dispatcher.js';
import type { UpgradeDispatch } from './dispatch-upgrade.js';

export interface HttpClientOptions {
  /** Decides what counts as failure for retries, breaker and metrics (e.g. a GraphQL error in a 200). */
  classify?: HttpResponseClassifier;
}

/** undici's upgrade() options, plus the mesh's per-call `routeKey`. */
export interface MeshUpgradeOptions extends Dispatcher.UpgradeOptions {
  /** Key for ring-hash balancing. */
  routeKey?: string;
  /** Bound on the wait for the answer's headers once connected (undici's option). */
  headersTimeout?: number;
  /** Query parameters appended to `path`, as undici's request option. */
  query?: Record<string, unknown>;
}

export interface MeshHttpClient {
  readonly service: string;
  request(opts: MeshRequestOptions): Promise<Dispatcher.ResponseData>;
  /**
   * undici's upgrade() through the mesh: resolves with `{ headers, socket }` once the server
   * switched protocols (101); another answer rejects (403: TRELLIS_FORBIDDEN, else
   * TRELLIS_UPSTREAM_ERROR, `statusCode` on the error).
   */
  upgrade(opts: MeshUpgradeOptions): Promise<Dispatcher.UpgradeData>;
}

export class HttpClient implements MeshHttpClient {
  readonly service: string;
  readonly #destinations: Destinations;
  readonly #isClosed: () => boolean;
  readonly #dispatcher: ServiceDispatcher;

  constructor(service: string, destinations: Destinations, options: HttpClientOptions, isClosed: () => boolean, upgrades?: UpgradeDispatch) {
    this.service = service;
    this.#destinations = destinations;
    this.#isClosed = isClosed;
    this.#dispatcher = new ServiceDispatcher(destinations, service, options.classify, upgrades);
  }

  /** The destination, or the error refusing the call before anything else. */
  #destination(): Destination | TrellisError {
    if (this.#isClosed()) return new ClosedError('the mesh client is closed', { service: this.service });
    const dest = this.#destinations.get(this.service);
    if (dest === undefined) {
      return new UnknownServiceError(`no Service document named "${this.service}" (known: ${this.#destinations.names().join(', ') || 'none'})`, { service: this.service });
    }
    return wrongProtocol(dest, this.service) ?? dest;
  }

  upgrade(opts: MeshUpgradeOptions): Promise<Dispatcher.UpgradeData> {
    const dest = this.#destination();
    if (!('state' in dest)) return Promise.reject(dest);
    // As undici's upgrade() builds its dispatch: GET and `Websocket` unless told otherwise.
    const invalid = invalidRequestArgument({ ...opts, method: opts.method ?? 'GET', upgrade: opts.protocol ?? 'Websocket' }, this.service);
    if (invalid !== undefined) {
      this.#destinations.invalidArgument(this.service, opts.method);
      return Promise.reject(invalid);
    }
    return this.#dispatcher.upgrade(opts);
  }

  request(opts: MeshRequestOptions): Promise<Dispatcher.ResponseData> {
    const dest = this.#destination();
    if (!('state' in dest)) {
      discardRefusedBody(opts, dest);
      return Promise.reject(dest);
    }
    // The caller's own mistakes are refused here, before the stack: inside it they looked like a
    // failing endpoint (retried, charged to outlier stats, the breaker and the retry budget).
    // The headers are read once, as they are checked, and handed to the call (core-dispatcher.ts).
    const headers = callerHeadersFor(dest, opts !== null && typeof opts === 'object' ? (opts as { headers?: unknown }).headers : undefined);
    const invalid =
      opts !== null && typeof opts === 'object' && isUpgrade(opts as { upgrade?: unknown })
        ? new InvalidArgumentError('request() does not upgrade: use mesh.http(service).upgrade(), undici.upgrade() with mesh.dispatcher, or mesh.websocket()', { service: this.service })
        : invalidRequestArgument(opts, this.service, headers, dest.protocol === 'http2');
    if (invalid !== undefined) {
      this.#destinations.invalidArgument(this.service, (opts as { method?: unknown } | null)?.method);
      discardRefusedBody(opts, invalid);
      return Promise.reject(invalid);
    }
    // The hot path: undici's own request() over the destination's dispatcher (core-dispatcher.ts).
    return this.#dispatcher.requestRead(opts as Dispatcher.RequestOptions, dest, headers);
  }
}
