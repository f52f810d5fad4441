/**
 * Judging an attempt's response headers (outbound-call.ts): the classification the route's retry
 * conditions, breaker and metrics use — after the caller's own classifier (`mesh.http(service,
 * { classify })`), which sees the status and headers — and whether a response the caller will get
 * is first read whole, so a reset mid-body is retried instead of reaching the caller half-read.
 */
import type { Classification } from '../core/classify.js';
import { contentLength } from './call-headers.js';
import { headersObject } from './caller-handler.js';
import type { HttpResponseClassifier } from './http-classify.js';
import { tagResponse } from './http-classify.js';
import type { HttpResponse } from './http-transport.js';
import type { RoutePolicy } from './outbound-core.js';
import { REPLAY_BODY_CAP } from './response-body.js';

const NO_HEADERS: HttpResponse['headers'] = Object.freeze({}) as HttpResponse['headers'];
/** A shed answer is told apart by its headers; other statuses are classified without parsing them. */
const SHED_STATUS = 503;

/** A headerless response per status, made once: the classifiers only read it. */
const BARE: (HttpResponse | undefined)[] = new Array<HttpResponse | undefined>(1000).fill(undefined);

function bare(status: number): HttpResponse {
  if (status < 100 || status > 999) return Object.freeze({ statusCode: status, headers: NO_HEADERS }) as HttpResponse;
  return (BARE[status] ??= Object.freeze({ statusCode: status, headers: NO_HEADERS }) as HttpResponse);
}

/** The route's classification of a response (headers parsed only for a 503 or a caller's classifier). */
export function classifyResponse(route: RoutePolicy, user: HttpResponseClassifier | undefined, status: number, raw: Buffer[]): Classification {
  if (user === undefined && status !== SHED_STATUS) return route.classify(bare(status), undefined);
  const res = { statusCode: status, headers: status === SHED_STATUS || user !== undefined ? headersObject(raw) : NO_HEADERS } as HttpResponse;
  if (user !== undefined) {
    try {
      tagResponse(res, user(res));
    } catch {
      // A throwing classifier falls back to the default classification.
    }
  }
  return route.classify(res, undefined);
}

/**
 * Whether the response the caller gets is read whole first: a reset is retried on this route,
 * the request may be sent again and another attempt is allowed, and the body is small and of
 * known length.
 */
export function readWholeFirst(route: RoutePolicy, idempotent: boolean, replayable: boolean, attempt: number, raw: readonly Buffer[]): boolean {
  if (!route.retriesReset || !idempotent || !replayable || attempt >= route.attempts) return false;
  const len = contentLength(raw);
  return len >= 0 && len <= REPLAY_BODY_CAP;
}
