/**
 * The trace headers of a hot-path call (outbound-call.ts), decided once per call: with an
 * OpenTelemetry SDK recording spans, one CLIENT span per attempt under the active context, whose
 * own ids the attempt's headers carry (attempt-span.ts starts it, `spanTrace`); else propagate only
 * (`propagatedTrace`): the active context, else the trace headers the caller sent, else a new
 * root — the same headers on every attempt, written as name/value pairs appended to the request's
 * header list, never by copying a header object.
 */
import type { Span } from '@opentelemetry/api';
import { extract, formatTraceparent } from '../observability/propagation.js';
import { fromSpanContext } from '../observability/tracer.js';
import type { MeshTracer } from '../observability/tracer.js';

/**
 * The propagate-only trace headers: W3C alone without a tracestate (the default), the
 * `traceparent` value alone (no list per call); else name/value pairs. `bag` holds the caller's
 * own trace headers.
 */
export function propagatedTrace(tracer: MeshTracer, bag: Record<string, string> | undefined): string | string[] {
  const parent = tracer.currentParent() ?? (bag === undefined ? undefined : extract(bag));
  // W3C alone (the default) without a tracestate: the one pair, with no headers object between
  // (a new root's value written flat at once, trace-ids.ts).
  const formats = tracer.formats;
  const w3c = formats.length === 1 && formats[0] === 'tracecontext';
  if (w3c && parent === undefined) return tracer.newRootTraceparent();
  const ctx = parent ?? tracer.newRoot();
  if (w3c && (ctx.traceState === undefined || ctx.traceState === '')) return formatTraceparent(ctx);
  return pairs(tracer.headersFor(ctx));
}

/** The trace headers carrying `span`'s own ids (an attempt's span, attempt-span.ts), as name/value pairs. */
export function spanTrace(tracer: MeshTracer, span: Span): string[] {
  return pairs(tracer.headersFor(fromSpanContext(span.spanContext())));
}

/** A header object as a flat name/value list. */
function pairs(h: Record<string, string>): string[] {
  const out: string[] = [];
  for (const k in h) out.push(k, h[k] as string);
  return out;
}
