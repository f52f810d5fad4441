/**
 * The undici Dispatcher behind `mesh.http(service)`: `request()` is undici's own request() over
 * it, so the result (statusCode, headers, trailers, body) is built by undici exactly as raw
 * `Pool.request()` builds it, from the upstream's own response events — one body stream, no
 * second copy of the headers. `dispatch()` sends the call down the destination's hot path
 * (outbound-call.ts) with the client's response classifier; an upgrade goes to the upgrade
 * edge (dispatch-upgrade.ts). A call to a `protocol: tcp` service is refused before either.
 */
import { Dispatcher } from 'undici';
import type { Destination, Destinations } from './destinations.js';
import { callbackHandler, failHandler } from './caller-handler.js';
import { OutboundCall } from './outbound-call.js';
import { CallerHeaders } from './call-headers.js';
import type { CallOptions } from './outbound-call.js';
import type { HttpResponseClassifier } from './http-classify.js';
import { InvalidArgumentError, UnknownServiceError } from '../core/errors.js';
import type { TrellisError } from '../core/errors.js';
import type { UpgradeDispatch } from './dispatch-upgrade.js';
import { isUpgrade } from './request-validation.js';

/**
 * The caller's mistake of sending a plain HTTP request to a `protocol: tcp` service (a raw
 * protocol, Redis say) or a `protocol: grpc` one (a gRPC server answers only gRPC over HTTP/2;
 * the request would fail at the endpoint and be charged to it): refused before any connection,
 * naming the service, its protocol and the API that speaks it. Undefined when it speaks HTTP.
 * `mesh.http()` asks the same of the configured protocol, so every door says the same.
 */
export function protocolRefusal(service: string, protocol: string | undefined): TrellisError | undefined {
  if (protocol === 'tcp') return new InvalidArgumentError(`${service} is protocol tcp, and this is an HTTP request: nothing was sent (open connections to it with mesh.connect())`, { service });
  if (protocol === 'grpc') return new InvalidArgumentError(`${service} is protocol grpc, and this is a plain HTTP request: nothing was sent (call it with a @grpc/grpc-js client and mesh.grpc.target/credentials/clientOptions)`, { service });
  return undefined;
}

/** protocolRefusal for a destination already built. */
export function wrongProtocol(dest: Destination, service: string): TrellisError | undefined {
  return protocolRefusal(service, dest.protocol);
}

/** Sends one call to `service` through its destination's hot path (the caller checked the arguments). */
export function dispatchToService(destinations: Destinations, service: string, opts: CallOptions, handler: Dispatcher.DispatchHandler, classify: HttpResponseClassifier | undefined, upgrades?: UpgradeDispatch): boolean {
  const dest = destinations.get(service);
  if (dest === undefined) {
    failHandler(handler, new UnknownServiceError(`no Service document named "${service}"`, { service }));
    return true;
  }
  return dispatchToDestination(destinations, dest, service, opts, handler, classify, upgrades);
}

/** A call without headers: nothing is added to it, so one frozen collector serves every such call. */
const NO_CALLER_HEADERS = sharedEmpty(false);
const NO_CALLER_HEADERS_MATCHING = sharedEmpty(true);

function sharedEmpty(forMatching: boolean): CallerHeaders {
  const h = new CallerHeaders(undefined, false, forMatching);
  Object.freeze(h.pairs);
  if (h.match !== undefined) Object.freeze(h.match);
  Object.freeze(h);
  return h;
}

/**
 * The collector of a call's headers for `dest`'s hot path, filled by request validation as it
 * checks them; `given`, the caller's `headers` option: without any (undefined or null), a shared
 * empty one (no allocation per call; frozen, so an add to it would throw).
 */
export function callerHeadersFor(dest: Destination, given: unknown): CallerHeaders {
  const core = dest.http.core;
  if (given === undefined || given === null) return core.table === undefined ? NO_CALLER_HEADERS : NO_CALLER_HEADERS_MATCHING;
  return new CallerHeaders(undefined, core.tracer !== undefined, core.table !== undefined, dest.protocol === 'http2');
}

/** dispatchToService for a destination already looked up; `headers`, when given, were read from `opts` by callerHeadersFor. */
export function dispatchToDestination(destinations: Destinations, dest: Destination, service: string, opts: CallOptions, handler: Dispatcher.DispatchHandler, classify: HttpResponseClassifier | undefined, upgrades?: UpgradeDispatch, headers?: CallerHeaders): boolean {
  const wrong = wrongProtocol(dest, service);
  if (wrong !== undefined) {
    destinations.invalidArgument(service, opts.method);
    failHandler(handler, wrong);
    return true;
  }
  if (isUpgrade(opts)) {
    if (upgrades !== undefined) return upgrades(service, opts, handler);
    failHandler(handler, new InvalidArgumentError('this dispatcher does not carry upgrades', { service }));
    return true;
  }
  new OutboundCall(dest.http.core, opts, callbackHandler(handler), classify, headers).run();
  return true;
}

/** `mesh.http(service)`'s dispatcher: every dispatch goes to `service`. */
export class ServiceDispatcher extends Dispatcher {
  readonly #destinations: Destinations;
  readonly #service: string;
  readonly #classify: HttpResponseClassifier | undefined;
  readonly #upgrades: UpgradeDispatch | undefined;

  constructor(destinations: Destinations, service: string, classify: HttpResponseClassifier | undefined, upgrades?: UpgradeDispatch) {
    super();
    this.#destinations = destinations;
    this.#service = service;
    this.#classify = classify;
    this.#upgrades = upgrades;
  }

  /** The options of the request() in progress and the headers read from them (see `requestRead`). */
  #readOpts: object | undefined = undefined;
  #readFor: Destination | undefined = undefined;
  #read: CallerHeaders | undefined = undefined;

  /**
   * undici's request() with the headers already read from `opts` (as validation checked them):
   * request() hands `opts` to dispatch() synchronously, which takes them instead of reading the
   * caller's headers a second time (a one-shot iterator would be empty by then).
   */
  requestRead(opts: Dispatcher.RequestOptions, readFor: Destination, read: CallerHeaders): Promise<Dispatcher.ResponseData> {
    this.#readOpts = opts;
    this.#readFor = readFor;
    this.#read = read;
    try {
      return this.request(opts);
    } finally {
      this.#readOpts = this.#readFor = this.#read = undefined;
    }
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (opts === this.#readOpts) {
      // request()'s own dispatch, in the same tick as requestRead: the destination it looked up
      // (closed, protocol and upgrade already checked there) is the one in force.
      const dest = this.#readFor as Destination;
      const read = this.#read;
      this.#readOpts = this.#readFor = this.#read = undefined;
      new OutboundCall(dest.http.core, opts as CallOptions, callbackHandler(handler), this.#classify, read).run();
      return true;
    }
    return dispatchToService(this.#destinations, this.#service, opts as CallOptions, handler, this.#classify, this.#upgrades);
  }

  override async close(): Promise<void> {}

  override async destroy(): Promise<void> {}
}
