/**
 * The ambient request context: what an inbound request handled by Trellis hands to the outbound
 * calls the application makes while serving it — today the deadline, later the trace. It flows
 * through the application's async code with AsyncLocalStorage, so no header forwarding is
 * needed in application code.
 *
 * The storage is process-wide by nature (like OpenTelemetry's context manager): every mesh in
 * the process reads the same inbound context, which is what a deadline means.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface AmbientContext {
  /** Absolute deadline on the monotonic clock (ms), or undefined. */
  readonly deadline: number | undefined;
  /** The service handling the inbound request. */
  readonly service: string | undefined;
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

/** Parses a deadline header value to a remaining budget in ms, or undefined when malformed. */
export function parseDeadlineHeader(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || !/^\d{1,10}$/.test(v)) return undefined;
  return Number(v);
}
