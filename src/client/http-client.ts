/**
 * `mesh.http(service)`: an undici-shaped client for one destination. `request(opts)` takes
 * undici's request() options and returns its result shape (statusCode, headers, trailers,
 * body as a stream), sent through the destination's outbound stack. The stack is looked up at
 * the start of each request, so a config change applies to the next request and never to one
 * in flight.
 */
import type { Dispatcher } from 'undici';
import { ClosedError, UnknownServiceError } from '../core/errors.js';
import type { Destinations } from './destinations.js';
import { discardRefusedBody, invalidRequestArgument } from './request-validation.js';
import type { MeshRequestOptions } from './http-request.js';
import type { HttpResponseClassifier } from './http-classify.js';
import { ServiceDispatcher } from './core-dispatcher.js';

export interface HttpClientOptions {
  /** Decides what counts as failure for retries, breaker and metrics (e.g. a GraphQL error in a 200). */
  classify?: HttpResponseClassifier;
}

export interface MeshHttpClient {
  readonly service: string;
  request(opts: MeshRequestOptions): Promise<Dispatcher.ResponseData>;
}

export class HttpClient implements MeshHttpClient {
  readonly service: string;
  readonly #destinations: Destinations;
  readonly #isClosed: () => boolean;
  readonly #dispatcher: ServiceDispatcher;

  constructor(service: string, destinations: Destinations, options: HttpClientOptions, isClosed: () => boolean) {
    this.service = service;
    this.#destinations = destinations;
    this.#isClosed = isClosed;
    this.#dispatcher = new ServiceDispatcher(destinations, service, options.classify);
  }

  request(opts: MeshRequestOptions): Promise<Dispatcher.ResponseData> {
    if (this.#isClosed()) return Promise.reject(new ClosedError('the mesh client is closed', { service: this.service }));
    const dest = this.#destinations.get(this.service);
    if (dest === undefined) {
      return Promise.reject(new UnknownServiceError(`no Service document named "${this.service}" (known: ${this.#destinations.names().join(', ') || 'none'})`, { service: this.service }));
    }
    // The caller's own mistakes are refused here, before the stack: inside it they looked like a
    // failing endpoint (retried, charged to outlier stats, the breaker and the retry budget).
    const invalid = invalidRequestArgument(opts, this.service);
    if (invalid !== undefined) {
      this.#destinations.invalidArgument(this.service, (opts as { method?: unknown } | null)?.method);
      discardRefusedBody(opts, invalid);
      return Promise.reject(invalid);
    }
    // The hot path: undici's own request() over the destination's dispatcher (core-dispatcher.ts).
    return this.#dispatcher.request(opts as Dispatcher.RequestOptions);
  }
}
