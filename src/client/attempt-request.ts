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

/** The attempt's headers: a fresh list (undici keeps it), `remainingMs` undefined without a deadline. */
export function attemptHeaders(pairs: readonly string[], host: string | undefined, remainingMs: number | undefined, trace: readonly string[] | undefined): string[] {
  const headers = pairs.slice();
  if (host !== undefined) headers.push('host', host);
  if (remainingMs !== undefined) headers.push(DEADLINE_HEADER, String(remainingMs));
  if (trace !== undefined) for (let i = 0; i < trace.length; i++) headers.push(trace[i] as string);
  return headers;
}

/**
 * The options the endpoint's Pool is dispatched with. A streamed body with a content-length
 * header is counted on its way (request-body.ts); a streamed body is sent by one attempt only.
 */
export function poolOptions(path: string, method: string, headers: string[], o: CallOptions): Dispatcher.DispatchOptions {
  return {
    path,
    method: method as Dispatcher.HttpMethod,
    headers,
    body: checkedBody(o.body, headers),
    query: o.query,
    reset: o.reset,
    expectContinue: o.expectContinue,
    headersTimeout: o.headersTimeout,
    bodyTimeout: o.bodyTimeout,
    typeOfService: o.typeOfService,
  } as Dispatcher.DispatchOptions;
}
