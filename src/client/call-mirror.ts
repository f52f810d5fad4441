/**
 * Traffic mirroring on the hot path: the fire-and-forget copy of one call (outbound-call.ts),
 * made once per logical request where the described stack puts the mirror — after the route
 * (match and rewrite) and the fault, alongside the primary, above timeout and retry. The copy is
 * the request the promise stack's mirror saw: the caller's headers (lower-cased, host and trace
 * headers included), the route's path, the in-memory body; traffic/mirror-filter.ts does the
 * rest as it always did (sampling, body replay cap, hop-by-hop headers dropped, the mark header,
 * its own deadline and in-flight cap, counters) and sends it to the backend level (balancer →
 * attempt tracing → endpoint → transport), so the copy has its own metrics and never touches the
 * primary: nothing of it (a slow send, an error) reaches the caller.
 */
import type { Dispatcher } from 'undici';
import { CallContext } from '../core/context.js';
import type { MirrorSender } from '../traffic/mirror-filter.js';
import type { HttpResponseClassifier } from './http-classify.js';
import type { HttpHeaders, HttpRequest } from './http-request.js';

/** What the call knows of its request once the route matched. */
export interface MirroredCall {
  readonly service: string;
  readonly route: string;
  readonly method: string;
  readonly path: string;
  /** The caller's headers as name/value pairs, without host and (with tracing) trace headers. */
  readonly pairs: readonly string[];
  /** The request's host header (the caller's, or the route's authority), if any. */
  readonly host: string | undefined;
  /** Trace headers the caller sent, kept aside by the call. */
  readonly trace: Readonly<Record<string, string>> | undefined;
  readonly body: Dispatcher.DispatchOptions['body'];
  readonly query: Dispatcher.DispatchOptions['query'];
  readonly replayable: boolean;
  readonly idempotent: boolean;
  readonly routeKey: string | undefined;
  readonly classify: HttpResponseClassifier | undefined;
}

/** Sends the copy of `call`, which the mirror has sampled (never throws, never waits). */
export function mirrorCall(mirror: MirrorSender, call: MirroredCall): void {
  const headers: HttpHeaders = {};
  const pairs = call.pairs;
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const k = (pairs[i] as string).toLowerCase();
    const v = pairs[i + 1] as string;
    const prev = headers[k];
    headers[k] = prev === undefined ? v : ([] as string[]).concat(prev, v);
  }
  if (call.host !== undefined) headers.host = call.host;
  if (call.trace !== undefined) for (const k of Object.keys(call.trace)) headers[k] = call.trace[k] as string;
  const req: HttpRequest = {
    method: call.method,
    path: call.path,
    headers,
    body: call.body,
    replayable: call.replayable,
    classify: call.classify,
    rest: call.query !== undefined && call.query !== null ? { query: call.query } : {},
  };
  const ctx = new CallContext(call.service, call.idempotent);
  ctx.route = call.route;
  ctx.routeKey = call.routeKey;
  mirror.copy(req, ctx);
}
