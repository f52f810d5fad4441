/**
 * The ambient request context: what an inbound request handled by Trellis hands to the outbound
 * calls the application makes while serving it — the deadline and the trace context. It flows
 * through the application's async code with AsyncLocalStorage, so no header forwarding is
 * needed in application code.
 *
 * The storage is process-wide by nature (like OpenTelemetry's context manager): every mesh in
 * the process reads the same inbound context, which is what a deadline means.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { MAX_TIMER_MS } from './timer-limit.js';

/**
 * A W3C / B3 trace context as it travels between hops, independent of any tracing SDK.
 * Ids are lower-case hex and never all zeros (`src/observability/propagation.ts` validates).
 */
export interface TraceContext {
  /** 32 hex digits (a 64-bit B3 id is left-padded with zeros). */
  readonly traceId: string;
  /** 16 hex digits: the span the next hop's span is a child of. */
  readonly spanId: string;
  /** The caller's sampling decision (W3C flag 01, B3 `1` or debug). */
  readonly sampled: boolean;
  /** W3C `tracestate`, passed through as received (validated), when there was one. */
  readonly traceState?: string | undefined;
}

export interface AmbientContext {
  /** Absolute deadline on the monotonic clock (ms), or undefined. */
  readonly deadline: number | undefined;
  /** The service handling the inbound request. */
  readonly service: string | undefined;
  /**
   * The inbound request's span (its server span when spans are recorded, else the caller's
   * context passed through): outbound attempts made while serving it are its children.
   */
  readonly trace?: TraceContext | undefined;
}

const storage = new AsyncLocalStorage<AmbientContext>();

/** Runs `fn` with `ctx` as the ambient context of everything it starts. */
export function runWithAmbient<T>(ctx: AmbientContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/** The ambient context of the current async execution, if any. */
export function currentAmbient(): AmbientContext | undefined {
  return storage.getStore();
}

/**
 * Header carrying the remaining time budget of a call in milliseconds, as gRPC's
 * `grpc-timeout` does: relative, so clocks of caller and callee need not agree.
 */
export const DEADLINE_HEADER = 'x-trellis-timeout-ms';

/**
 * Parses a deadline header value to a remaining budget in ms, or undefined when it is not one.
 * The header comes from the network, so it is treated as hostile: anything but plain decimal
 * digits (a sign, a fraction, an exponent, NaN, a list) is ignored, as is a value of more than
 * 32 digits; a well-formed value above `MAX_TIMER_MS` (about 24.8 days) is capped to it, since
 * no timer can wait longer and an uncapped value would overflow into an immediate timeout.
 */
export function parseDeadlineHeader(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || !/^\d{1,32}$/.test(v)) return undefined;
  const ms = Number(v);
  return ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms;
}
