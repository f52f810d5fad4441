/**
 * Access log: one JSON line per request, outbound (per logical request: what the caller saw,
 * written when its response body finished) and inbound (when the response closed):
 *
 *   {"ts":"2025-01-01T00:00:00.000Z","direction":"outbound","service":"products","route":"catalog",
 *    "method":"GET","status":200,"duration_ms":3.2,"caller":"checkout","trace_id":"4bf9…","outcome":"success"}
 *
 * `service` is the destination on outbound lines and this service on inbound ones (as on the
 * metrics); `caller` is this service on outbound lines and the verified caller (or `unknown`)
 * on inbound ones; `status` and `route` are null when there was no response or no route.
 *
 * A log line must never slow a request down or pile up in memory: when the stream is not
 * draining (`writableNeedDrain`), lines are dropped and counted (`dropped`), as Envoy's access
 * log buffers are bounded.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import type { Classifier } from '../core/classify.js';
import type { Clock } from '../core/clock.js';
import { ERROR_CODES, isTrellisError } from '../core/errors.js';
import { applyFilter } from '../core/service.js';
import type { Filter } from '../core/service.js';
import type { StackModule } from '../core/stack.js';
import type { HttpRequest } from '../client/http-request.js';
import type { HttpResponse } from '../client/http-transport.js';
import { whenBodyDone } from '../client/http-classify.js';

export interface AccessLogEntry {
  /** Wall-clock time the request started (ISO 8601). */
  ts: string;
  direction: 'outbound' | 'inbound';
  service: string;
  route: string | null;
  method: string;
  status: number | null;
  duration_ms: number;
  caller: string;
  trace_id: string | null;
  outcome: string;
}

/** Where entries go: an `accessLogger`, or any function (a structured logger of the application's). */
export type AccessLog = (entry: AccessLogEntry) => void;

export interface AccessLogger extends AccessLog {
  /** Lines dropped because the stream was not draining. */
  readonly dropped: number;
}

/**
 * A logger writing one JSON line per entry to `stream` (default: stdout).
 *
 * @example
 * const log = accessLogger(fs.createWriteStream('access.log', { flags: 'a' }));
 */
export function accessLogger(stream: Writable = process.stdout): AccessLogger {
  let dropped = 0;
  const write = (entry: AccessLogEntry): void => {
    if (stream.writableNeedDrain || stream.destroyed || stream.writableEnded) {
      dropped++;
      return;
    }
    stream.write(`${JSON.stringify(entry)}\n`);
  };
  Object.defineProperty(write, 'dropped', { get: () => dropped, enumerable: true });
  return write as AccessLogger;
}

/** Milliseconds with microsecond precision (a duration field, not a metric). */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export interface OutboundAccessLogDeps<Req, Res> {
  clock: Clock;
  /** This service (the `caller` of outbound lines); `unknown` when unnamed. */
  caller: string | undefined;
  method(req: Req): string;
  /** Status of a result (HTTP: statusCode); undefined when it has none. */
  status(res: Res): number | undefined;
  /** The metric outcome of a result or error (`success`, `failure`, `timeout`, `circuit_open`, ...). */
  outcome(res: Res | undefined, err: unknown): string;
  /** Trace id of the call's context (`tracer.currentTraceId()`), read when the call starts. */
  traceId(): string | undefined;
  /** Calls `done` when the result is fully consumed (HTTP: body finished). */
  whenDone?(res: Res, done: () => void): void;
}

/**
 * Outbound access log, per logical request: place it at the top of the stack (beside
 * metrics), above retries, so one line stands for what the caller saw.
 */
export function accessLogFilter<Req, Res>(log: AccessLog, deps: OutboundAccessLogDeps<Req, Res>): Filter<Req, Res> {
  const { clock, method, status, outcome, traceId, whenDone } = deps;
  const caller = deps.caller ?? 'unknown';
  return (req, ctx, next) => {
    const start = clock.now();
    const ts = new Date(clock.wall()).toISOString();
    const m = method(req);
    const trace = traceId() ?? null;
    const write = (res: Res | undefined, err: unknown): void => {
      log({
        ts,
        direction: 'outbound',
        service: ctx.service,
        route: ctx.route ?? null,
        method: m,
        status: res === undefined ? null : (status(res) ?? null),
        duration_ms: roundMs(clock.now() - start),
        caller,
        trace_id: trace,
        outcome: outcome(res, err),
      });
    };
    return next(req, ctx).then(
      (res) => {
        if (whenDone !== undefined) whenDone(res, () => write(res, undefined));
        else write(res, undefined);
        return res;
      },
      (err: unknown) => {
        write(undefined, err);
        throw err;
      },
    );
  };
}

export interface InboundAccessLogDeps {
  clock: Clock;
  /** Trace id of the request, read when its line is written (`inboundTracing(tracer).traceIdOf`). */
  traceIdOf?: (req: IncomingMessage) => string | undefined;
  /** The verified caller's service; `unknown` until mTLS identities land. */
  callerOf?: (req: IncomingMessage) => string | undefined;
}

/**
 * Inbound access log, shaped as the inbound stack's `observe(req, res, service)` hook: call it
 * when a request arrives (before rate limiting, so refused requests are logged too); the line
 * is written when `res` closes. Outcome: `success`, `failure` for a 5xx, `rate_limited` for a
 * 429 the mesh answered, `cancelled` when the response never completed.
 *
 * @example
 * const observe = inboundAccessLog(accessLogger(), { clock, traceIdOf: tracing.traceIdOf });
 */
export function inboundAccessLog(log: AccessLog, deps: InboundAccessLogDeps): (req: IncomingMessage, res: ServerResponse, service: string | undefined) => void {
  const { clock, traceIdOf, callerOf } = deps;
  return (req, res, service) => {
    const start = clock.now();
    const ts = new Date(clock.wall()).toISOString();
    res.once('close', () => {
      const status = res.headersSent ? res.statusCode : null;
      let outcome = 'success';
      if (!res.writableFinished) outcome = 'cancelled';
      else if (status !== null && status >= 500) outcome = 'failure';
      else if (status === 429 && res.getHeader('x-trellis-rate-limited') !== undefined) outcome = 'rate_limited';
      log({
        ts,
        direction: 'inbound',
        service: service ?? 'unknown',
        route: null,
        method: req.method ?? 'GET',
        status,
        duration_ms: roundMs(clock.now() - start),
        caller: callerOf?.(req) ?? 'unknown',
        trace_id: traceIdOf?.(req) ?? null,
        outcome,
      });
    });
  };
}

export interface HttpAccessLogParams {
  clock: Clock;
  /** This service. */
  caller: string | undefined;
  /** `tracer.currentTraceId()`. */
  traceId: () => string | undefined;
}

/**
 * The outbound access-log module of the HTTP stack (for `OutboundObservability.requestModules`,
 * beside metrics, below routing so the route is known). Outcome: the error's code outcome, else
 * `failure` or `success` as the destination's classifier says.
 */
export function httpAccessLogModule(log: AccessLog, params: HttpAccessLogParams, classify: Classifier<HttpResponse>): StackModule<HttpRequest, HttpResponse> {
  const filter = accessLogFilter<HttpRequest, HttpResponse>(log, {
    clock: params.clock,
    caller: params.caller,
    method: (req) => req.method,
    status: (res) => res.statusCode,
    outcome: (res, err) => {
      if (res === undefined) return isTrellisError(err) ? ERROR_CODES[err.code].outcome : 'failure';
      return classify(res, undefined).kind === 'failure' ? 'failure' : 'success';
    },
    traceId: params.traceId,
    whenDone: whenBodyDone,
  });
  return {
    role: 'access-log',
    why: 'at the top of the route, above retries: one line per logical request, as the caller saw it, with its route',
    make: (next) => applyFilter(filter, next),
  };
}
