/**
 * The outbound access log on the hot path: one line per logical request (what the caller saw),
 * written where the call records its request metric (outbound-call.ts), with the same fields as
 * the promise stack's access-log filter (observability/access-log.ts): the start's wall time, the
 * destination and route, method, status (null without a response), duration, this service as
 * `caller`, the trace id of the context the call started in, and the outcome — the request
 * metric's outcome, so a log line and the metric it was counted in agree.
 */
import type { Clock } from '../core/clock.js';
import type { AccessLog } from '../observability/access-log.js';
import type { MeshTracer } from '../observability/tracer.js';

/** What the hot path needs to write outbound lines (absent when the access log is off). */
export interface CoreAccessLog {
  readonly log: AccessLog;
  /** This service; `unknown` when unnamed. */
  readonly caller: string | undefined;
}

/** What a call notes at its start for its line (only when the access log is on). */
export interface LineStart {
  readonly wallMs: number;
  readonly traceId: string | null;
}

export function lineStart(clock: Clock, tracer: MeshTracer | undefined): LineStart {
  return { wallMs: clock.wall(), traceId: tracer?.currentTraceId() ?? null };
}

/** Writes the call's line; never throws into the request. */
export function writeLine(a: CoreAccessLog, start: LineStart, service: string, route: string | null, method: string, status: number, durationMs: number, outcome: string): void {
  try {
    a.log({
      ts: new Date(start.wallMs).toISOString(),
      direction: 'outbound',
      service,
      route,
      method,
      status: status > 0 ? status : null,
      duration_ms: Math.round(durationMs * 1000) / 1000,
      caller: a.caller ?? 'unknown',
      trace_id: start.traceId,
      outcome,
    });
  } catch {
    // A logger that throws must not fail the request it logs.
  }
}
