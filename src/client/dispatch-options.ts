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

/** The options a caller rarely sets, kept apart and made only when one of them is given. */
class RareArgs {
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
}

/**
 * The options the mesh reads, in one shape (undefined: not given). The ten a caller rarely sets
 * are read through getters from `rare`, which is made only when one of them is given: the copy
 * of a plain request is then 10 fields, not 19 (~70 B less per request). fetch's
 * `maxRedirections: 0` and `upgrade: undefined` are what leaving them out means, so they are not kept.
 */
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
  rare: RareArgs | undefined = undefined;
  [option: string]: unknown;

  get reset(): unknown {
    return this.rare?.reset;
  }
  get expectContinue(): unknown {
    return this.rare?.expectContinue;
  }
  get headersTimeout(): unknown {
    return this.rare?.headersTimeout;
  }
  get bodyTimeout(): unknown {
    return this.rare?.bodyTimeout;
  }
  get highWaterMark(): unknown {
    return this.rare?.highWaterMark;
  }
  get upgrade(): unknown {
    return this.rare?.upgrade;
  }
  get throwOnError(): unknown {
    return this.rare?.throwOnError;
  }
  get maxRedirections(): unknown {
    return this.rare?.maxRedirections;
  }
  get typeOfService(): unknown {
    return this.rare?.typeOfService;
  }
  get onInfo(): unknown {
    return this.rare?.onInfo;
  }
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
      case 'reset': if (o.reset !== undefined) (c.rare ??= new RareArgs()).reset = o.reset; break;
      case 'expectContinue': if (o.expectContinue !== undefined) (c.rare ??= new RareArgs()).expectContinue = o.expectContinue; break;
      case 'headersTimeout': if (o.headersTimeout !== undefined) (c.rare ??= new RareArgs()).headersTimeout = o.headersTimeout; break;
      case 'bodyTimeout': if (o.bodyTimeout !== undefined) (c.rare ??= new RareArgs()).bodyTimeout = o.bodyTimeout; break;
      case 'highWaterMark': if (o.highWaterMark !== undefined) (c.rare ??= new RareArgs()).highWaterMark = o.highWaterMark; break;
      case 'upgrade': if (o.upgrade !== undefined) (c.rare ??= new RareArgs()).upgrade = o.upgrade; break;
      case 'throwOnError': if (o.throwOnError !== undefined) (c.rare ??= new RareArgs()).throwOnError = o.throwOnError; break;
      case 'maxRedirections': if (o.maxRedirections !== undefined && o.maxRedirections !== 0) (c.rare ??= new RareArgs()).maxRedirections = o.maxRedirections; break;
      case 'typeOfService': if (o.typeOfService !== undefined) (c.rare ??= new RareArgs()).typeOfService = o.typeOfService; break;
      case 'onInfo': if (o.onInfo !== undefined) (c.rare ??= new RareArgs()).onInfo = o.onInfo; break;
      default: break; // Options the mesh does not read (dispatcher, opaque, ...) are not passed on.
    }
  }
  return c as unknown as Dispatcher.DispatchOptions;
}
