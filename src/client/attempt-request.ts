/**
 * What one attempt of an outbound call sends (outbound-call.ts): the caller's headers as name/value
 * pairs plus only what the contract needs — `host` when the caller or a route set one (otherwise
 * the Pool's origin, the service name, is written once per connection), the remaining deadline
 * in `x-trellis-timeout-ms`, and the trace headers — and the undici dispatch options the
 * endpoint's Pool gets: the caller's own transport options, nothing the mesh does not pass on.
 */
import type { Dispatcher } from 'undici';
import { DEADLINE_HEADER } from '../core/ambient.js';
import type { CallOptions } from './outbound-call.js';
import { checkedBody } from './request-body.js';

/**
 * The attempt's headers: a fresh list (undici keeps it); `remainingMs` undefined without a
 * deadline; `trace` a traceparent value alone, or trace header pairs. Allocated at its final length: a copied list grown by push() reallocates its store
 * (a copy of an empty list grows to 16 slots for one pair).
 */
export function attemptHeaders(pairs: readonly string[], host: string | undefined, remainingMs: number | undefined, trace: string | readonly string[] | undefined): string[] {
  const n = pairs.length;
  const size = n + (host === undefined ? 0 : 2) + (remainingMs === undefined ? 0 : 2) + (trace === undefined ? 0 : typeof trace === 'string' ? 2 : trace.length);
  if (size === 0) return [];
  const headers = new Array<string>(size);
  let i = 0;
  for (; i < n; i++) headers[i] = pairs[i] as string;
  if (host !== undefined) {
    headers[i++] = 'host';
    headers[i++] = host;
  }
  if (remainingMs !== undefined) {
    headers[i++] = DEADLINE_HEADER;
    headers[i++] = String(remainingMs);
  }
  if (typeof trace === 'string') {
    headers[i++] = 'traceparent';
    headers[i] = trace;
  } else if (trace !== undefined) for (let j = 0; j < trace.length; j++) headers[i++] = trace[j] as string;
  return headers;
}

/**
 * The options the endpoint's Pool is dispatched with. A streamed body with a content-length
 * header is counted on its way (request-body.ts); a streamed body is sent by one attempt only.
 */
export function poolOptions(path: string, method: string, headers: string[], o: CallOptions): Dispatcher.DispatchOptions {
  const body = checkedBody(o.body, headers);
  // Without any of the six transport options (the usual call), four fields, not ten (~50 B less).
  if (o.query === undefined && o.reset === undefined && o.expectContinue === undefined && o.headersTimeout === undefined && o.bodyTimeout === undefined && o.typeOfService === undefined) {
    return { path, method: method as Dispatcher.HttpMethod, headers, body } as Dispatcher.DispatchOptions;
  }
  return {
    path,
    method: method as Dispatcher.HttpMethod,
    headers,
    body,
    query: o.query,
    reset: o.reset,
    expectContinue: o.expectContinue,
    headersTimeout: o.headersTimeout,
    bodyTimeout: o.bodyTimeout,
    typeOfService: o.typeOfService,
  } as Dispatcher.DispatchOptions;
}
