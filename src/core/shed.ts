/**
 * The load-shedding marker shared by both ends: an instance that sheds a request before doing
 * any work for it answers 503 (gRPC: UNAVAILABLE) with this header (metadata) naming the reason.
 * A Trellis caller that sees it knows nothing was done, so it retries the request on another
 * instance whatever its method, and charges neither the retry budget nor the instance's
 * outlier or breaker statistics (Finagle's NACKs, Envoy's `x-envoy-overloaded`).
 */
export const SHED_HEADER = 'x-trellis-shed';

/** Reads the marker from undici-style or node:http headers. */
export function isShedHeaders(headers: Record<string, string | string[] | undefined> | undefined): boolean {
  const v = headers?.[SHED_HEADER];
  return v !== undefined && v !== '';
}
