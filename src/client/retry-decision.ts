/**
 * Whether a failed attempt of a hot-path call (outbound-call.ts) is tried again: the retry
 * filter's rules (resilience/retry-filter.ts), in its order, as one function of the call's state.
 * It only decides; the call starts the retry (endpoint avoidance, backoff sleep) or fails.
 *
 * Retries stop on: attempts used, an error that is never retried, no matching condition, a
 * non-idempotent request (unless nothing was sent: a connect failure), a body that cannot be
 * replayed, a cancelled call, a deadline too close for the backoff, and last the retry budget —
 * the budget is withdrawn only when everything else allows the retry, so a refused retry costs
 * no token.
 */
import type { Classification } from '../core/classify.js';
import type { Clock } from '../core/clock.js';
import { isTrellisError } from '../core/errors.js';
import type { RetryBudget } from '../resilience/retry-budget.js';
import type { RoutePolicy } from './outbound-core.js';

/** Errors that end a call whatever `retries.on` says (refused before any endpoint, or the caller's). */
const NEVER_RETRIED = new Set<string>(['TRELLIS_CIRCUIT_OPEN', 'TRELLIS_RATE_LIMITED', 'TRELLIS_ABORTED', 'TRELLIS_PEER_IDENTITY', 'TRELLIS_NO_IDENTITY']);

/** What the retry history and refusals call an error: its code, else its name. */
export function describeError(err: unknown): string {
  if (isTrellisError(err)) return err.code;
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    return code !== undefined ? String(code) : err.name;
  }
  return typeof err;
}

/**
 * Why `err` is never retried, or undefined. An overall timeout is final; a per-try one
 * (`perTry`) is the `timeout` condition.
 */
export function neverRetried(err: Error, perTry: boolean): string | undefined {
  if (!isTrellisError(err)) return undefined;
  if (NEVER_RETRIED.has(err.code) || (err.code === 'TRELLIS_TIMEOUT' && !perTry)) return `${err.code} is never retried`;
  return undefined;
}

/** The call's state the decision reads. */
/** What the decision reads of a route's policy (HTTP's RoutePolicy, gRPC's GrpcRoutePolicy). */
export type RetryPolicyView = Pick<RoutePolicy, 'retryOn' | 'attempts' | 'backoff' | 'onBudgetExhausted'>;

export interface RetryInput {
  readonly route: RetryPolicyView;
  readonly budget: RetryBudget;
  readonly clock: Clock;
  /** Attempts made so far (the failed one included). */
  readonly attempts: number;
  readonly idempotent: boolean;
  readonly replayable: boolean;
  readonly cancelled: boolean;
  readonly deadline: number | undefined;
}

/** Retry after `delay` ms for condition `reason`, or stop for `stop`. */
export type RetryVerdict = { readonly retry: true; readonly reason: string; readonly delay: number } | { readonly retry: false; readonly stop: string };

/** The line the failed attempt adds to the call's history (RetriesExhausted names each try). */
export function historyLine(attempt: number, cls: Classification & { kind: 'failure' }, what: string, endpointId: string | undefined): string {
  return `#${attempt} ${cls.conditions.length > 0 ? cls.conditions.join('/') : what}${endpointId !== undefined ? ` on ${endpointId}` : ''}`;
}

/** Decides on a failed attempt classified `cls`; `never` is neverRetried's answer for an error. */
export function decideRetry(input: RetryInput, cls: Classification & { kind: 'failure' }, never: string | undefined): RetryVerdict {
  const route = input.route;
  const n = input.attempts;
  let reason: string | undefined;
  for (const c of cls.conditions) {
    if (route.retryOn.has(c)) {
      reason = c;
      break;
    }
  }
  if (n >= route.attempts) return { retry: false, stop: `${route.attempts} attempt${route.attempts === 1 ? '' : 's'} allowed` };
  if (never !== undefined) return { retry: false, stop: never };
  if (reason === undefined) return { retry: false, stop: 'no retry condition matched' };
  if (!input.idempotent && !cls.conditions.includes('connect-failure')) return { retry: false, stop: 'request is not idempotent' };
  if (!input.replayable) return { retry: false, stop: 'request body cannot be replayed' };
  if (input.cancelled) return { retry: false, stop: 'call was cancelled' };
  const delay = route.backoff(n);
  if (input.deadline !== undefined && input.clock.now() + delay >= input.deadline) return { retry: false, stop: 'deadline leaves no time for another attempt' };
  if (!input.budget.tryWithdraw()) {
    route.onBudgetExhausted();
    return { retry: false, stop: 'retry budget exhausted' };
  }
  return { retry: true, reason, delay };
}
