/**
 * The overall deadline of one outbound call (outbound-call.ts): the route's timeout from when it
 * starts (after an injected delay, as Envoy's router timeout starts after its fault filter) or
 * the propagated (ambient, inbound) deadline, whichever is sooner; and the error that names
 * which one passed.
 */
import { currentAmbient } from '../core/ambient.js';
import { TimeoutError } from '../core/errors.js';

/** The sooner of `now + timeoutMs` (0: none) and the ambient deadline, or undefined for neither. */
export function overallDeadline(timeoutMs: number, now: number): number | undefined {
  const own = timeoutMs > 0 ? now + timeoutMs : undefined;
  const ambient = currentAmbient()?.deadline;
  return ambient !== undefined && (own === undefined || ambient < own) ? ambient : own;
}

/** Whether `deadline` (from overallDeadline) is the propagated one rather than the route's own. */
export function isPropagated(deadline: number | undefined, timeoutMs: number, now: number): boolean {
  return deadline !== undefined && (timeoutMs <= 0 || deadline !== now + timeoutMs);
}

/** The call's TRELLIS_TIMEOUT: `deadline` passed, counted from `start` (also a gRPC unary call's, grpc/unary-call.ts). */
export function deadlineExceeded(deadline: number | undefined, start: number, propagated: boolean, service: string, route: string | undefined): InstanceType<typeof TimeoutError> {
  const bound = deadline === undefined ? 0 : Math.max(0, Math.round(deadline - start));
  return new TimeoutError(
    propagated ? `propagated deadline of ${bound} ms exceeded` : `request timed out after ${bound} ms (overall timeout)`,
    { service, route },
  );
}
