/**
 * The dispatch options `mesh.dispatcher` reads, copied once into one fixed shape.
 *
 * undici's `request(url, opts)` hands its dispatcher `{ ...opts, origin, path, method }`. On
 * Node 20's V8, an object made by a spread is slow to probe for properties it does not have
 * (each miss ~100+ ns, against a few ns on an object literal), and validation and the hot path
 * probe about twenty options a caller almost never sets: ~3 µs a request, more than the rest of
 * the dispatcher's own work. One `for...in` over the keys the object does have, copied into
 * this class (every field declared, so every instance shares one shape), makes each of those
 * reads a plain field load.
 *
 * Only plain objects are copied: an object with a prototype of its own (a class instance,
 * getters) is used as it is, so whatever it inherits is read exactly as undici would read it.
 */
import type { Dispatcher } from 'undici';
import type { RequestArguments } from './request-validation.js';

/** The options the mesh reads, in one shape (undefined: not given). */
export class DispatchArgs implements RequestArguments {
  origin: unknown = undefined;
  path: unknown = undefined;
  method: unknown = undefined;
  headers: unknown = undefined;
  body: unknown = undefined;
  query: unknown = undefined;
  signal: unknown = undefined;
  idempotent: unknown = undefined;
  routeKey: unknown = undefined;
  reset: unknown = undefined;
  expectContinue: unknown = undefined;
  headersTimeout: unknown = undefined;
  bodyTimeout: unknown = undefined;
  highWaterMark: unknown = undefined;
  upgrade: unknown = undefined;
  throwOnError: unknown = undefined;
  maxRedirections: unknown = undefined;
  typeOfService: unknown = undefined;
  onInfo: unknown = undefined;
  [option: string]: unknown;
}

/** `opts` with every option the mesh reads as a field of one shape (a plain object is copied, anything else returned as is). */
export function dispatchArgs(opts: Dispatcher.DispatchOptions): Dispatcher.DispatchOptions {
  const proto: unknown = Object.getPrototypeOf(opts);
  if (proto !== Object.prototype && proto !== null) return opts;
  const o = opts as unknown as Record<string, unknown>;
  const c = new DispatchArgs();
  for (const k in o) {
    switch (k) {
      case 'origin': c.origin = o.origin; break;
      case 'path': c.path = o.path; break;
      case 'method': c.method = o.method; break;
      case 'headers': c.headers = o.headers; break;
      case 'body': c.body = o.body; break;
      case 'query': c.query = o.query; break;
      case 'signal': c.signal = o.signal; break;
      case 'idempotent': c.idempotent = o.idempotent; break;
      case 'routeKey': c.routeKey = o.routeKey; break;
      case 'reset': c.reset = o.reset; break;
      case 'expectContinue': c.expectContinue = o.expectContinue; break;
      case 'headersTimeout': c.headersTimeout = o.headersTimeout; break;
      case 'bodyTimeout': c.bodyTimeout = o.bodyTimeout; break;
      case 'highWaterMark': c.highWaterMark = o.highWaterMark; break;
      case 'upgrade': c.upgrade = o.upgrade; break;
      case 'throwOnError': c.throwOnError = o.throwOnError; break;
      case 'maxRedirections': c.maxRedirections = o.maxRedirections; break;
      case 'typeOfService': c.typeOfService = o.typeOfService; break;
      case 'onInfo': c.onInfo = o.onInfo; break;
      default: break; // Options the mesh does not read (dispatcher, opaque, ...) are not passed on.
    }
  }
  return c as unknown as Dispatcher.DispatchOptions;
}
