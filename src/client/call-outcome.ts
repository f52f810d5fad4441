/**
 * The record of one logical request's end (outbound-call.ts): the request metric (through the
 * route's cached recorder, or the label lookup when there is none) and the access log's line,
 * written once, when the caller is told the end — the body's end, or the error.
 */
import { errorOutcome } from '../observability/metrics-labels.js';
import { writeLine } from './call-access-log.js';
import type { LineStart } from './call-access-log.js';
import type { CallRecorders, OutboundCore } from './outbound-core.js';

/**
 * Records the end of a call that started at `start`: `route` is undefined when no route matched
 * (metrics say `unknown`), `status` the metric's label ('' for none), `code` the status for the log;
 * `end`, the clock's time now when the caller has just read it.
 */
export function recordCall(core: OutboundCore, recorders: CallRecorders | undefined, line: LineStart | undefined, route: string | undefined, method: string, start: number, status: string, code: number, outcome: string, end: number = core.clock.now()): void {
  const ms = end - start;
  if (recorders !== undefined) recorders.request.record(status, outcome, ms / 1000);
  else core.metrics?.recordClientRequest(core.service, route ?? 'unknown', method, status, outcome, ms / 1000);
  const log = core.accessLog;
  if (log !== undefined && line !== undefined) writeLine(log, line, core.service, route ?? null, method, status === '' ? 0 : code, ms, outcome);
}

/** A body that errored: a Trellis error keeps its outcome (timeout, cancelled), a socket error is a reset. */
export function bodyOutcome(err: unknown): string {
  const o = errorOutcome(err);
  return o === 'failure' ? 'reset' : o;
}
