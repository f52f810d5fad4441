/**
 * The undici Dispatcher behind `mesh.http(service)`: `request()` is undici's own request() over
 * it, so the result (statusCode, headers, trailers, body) is built by undici exactly as raw
 * `Pool.request()` builds it, from the upstream's own response events — one body stream, no
 * second copy of the headers. `dispatch()` sends the call down the destination's hot path
 * (outbound-call.ts) with the client's response classifier.
 */
import { Dispatcher } from 'undici';
import type { Destination, Destinations } from './destinations.js';
import { callbackHandler, failHandler } from './caller-handler.js';
import { OutboundCall } from './outbound-call.js';
import type { CallOptions } from './outbound-call.js';
import type { HttpResponseClassifier } from './http-classify.js';
import { UnknownServiceError } from '../core/errors.js';

/** Sends one call to `service` through its destination's hot path. The caller checked the arguments. */
export function dispatchToService(destinations: Destinations, service: string, opts: CallOptions, handler: Dispatcher.DispatchHandler, classify: HttpResponseClassifier | undefined): boolean {
  const dest = destinations.get(service);
  if (dest === undefined) {
    failHandler(handler, new UnknownServiceError(`no Service document named "${service}"`, { service }));
    return true;
  }
  return dispatchToDestination(dest, opts, handler, classify);
}

/** dispatchToService for a destination already looked up. */
export function dispatchToDestination(dest: Destination, opts: CallOptions, handler: Dispatcher.DispatchHandler, classify: HttpResponseClassifier | undefined): boolean {
  new OutboundCall(dest.http.core, opts, callbackHandler(handler), classify).run();
  return true;
}

/** `mesh.http(service)`'s dispatcher: every dispatch goes to `service`. */
export class ServiceDispatcher extends Dispatcher {
  readonly #destinations: Destinations;
  readonly #service: string;
  readonly #classify: HttpResponseClassifier | undefined;

  constructor(destinations: Destinations, service: string, classify: HttpResponseClassifier | undefined) {
    super();
    this.#destinations = destinations;
    this.#service = service;
    this.#classify = classify;
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return dispatchToService(this.#destinations, this.#service, opts as CallOptions, handler, this.#classify);
  }

  override async close(): Promise<void> {}

  override async destroy(): Promise<void> {}
}
