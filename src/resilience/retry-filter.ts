/**
 * Retry filter: re-sends a failed logical request, within bounds, after Envoy's retry policy and
 * Finagle's RequeueFilter/RetryFilter. It sits below the deadline/timeout filter (so every
 * attempt shares one deadline and signal) and above rate limiting, the breaker and the balancer
 * (so each attempt is limited, counted and balanced on its own, and can avoid endpoints that
 * earlier attempts used).
 *
 * Per logical request: `budget.deposit()` once. Per attempt: a forked context with `attempt = n`
 * and `avoid` = ids of the endpoints earlier attempts used (the balancer sets `endpoint`), and
 * with a per-try timeout an attempt signal that follows the call's signal and also aborts with a
 * per-try `TimeoutError` (such attempts classify as condition `timeout`).
 *
 * A failed attempt is retried only when all hold: attempts remain; one of its conditions is in
 * `on`; the request is idempotent or nothing reached the upstream (`connect-failure`); the
 * request can be replayed; the call is not cancelled and its deadline leaves time for the
 * backoff sleep; and the budget grants a retry (checked last, so refusals elsewhere cost no
 * token). Never retried: circuit open, rate limited, caller abort, and an overall timeout.
 *
 * When retries stop, the caller sees what Envoy's caller would: the last failed result as it is
 * (a 503 response, say), or the last error — as is after one attempt, wrapped in
 * `RetriesExhaustedError` (cause = last error) after several. Results that will not reach the
 * caller (retried ones, or ones that arrive after their per-try timeout) are `discard`ed.
 *
 * Cost: the success path with no per-try timeout is a deposit, a fork and an await. Per-try
 * signals are combined by hand (one CallController, one listener removed on settle), since
 * `AbortSignal.any` costs 12-20 µs per call on Node 20 and retains memory under a long-lived
 * parent. A per-try timer that cannot fire before the call's deadline is not armed.
 *
 * Timers: the per-try timer and the backoff sleep are cleared as soon as their attempt or sleep
 * ends, so they never outlive the request. They stay referenced while it is pending: an unref'd
 * backoff sleep lets a script whose only pending work is a retry exit mid-request (exit code 13,
 * unsettled top-level await).
 */
import type { Classification, Classifier, Discard } from '../core/classify.js';
import type { Clock } from '../core/clock.js';
import type { CallContext } from '../core/context.js';
import { CallController } from '../core/call-signal.js';
import { timerDelay } from '../core/timer-limit.js';
import type { CallSignal } from '../core/call-signal.js';
import { isTrellisError, RetriesExhaustedError, TimeoutError } from '../core/errors.js';
import type { Filter, Service } from '../core/service.js';
import type { RetryBudget } from './retry-budget.js';

export interface RetryParams {
  /** Total attempts, the first included (3 = up to 2 retries). */
  attempts: number;
  /** Retry conditions (`connect-failure`, `reset`, `timeout`, `gateway-error`, `503`, ...). */
  on: readonly string[];
  /** Timeout of each attempt, in ms; undefined for none. */
  perTryTimeoutMs: number | undefined;
}

export interface RetryDeps<Req, Res> {
  budget: RetryBudget;
  classify: Classifier<Res>;
  discard: Discard<Res>;
  /** Sleep before retry n (1-based), in ms. */
  backoff: (retry: number) => number;
  clock: Clock;
  /** Whether the request can be sent again (its body is buffered, not a consumed stream). */
  replayable: (req: Req) => boolean;
  /** Called before each retry with the condition that triggered it. */
  onRetry?: (ctx: CallContext, reason: string) => void;
  /** Called when the budget refused a retry that was otherwise allowed. */
  onBudgetExhausted?: (ctx: CallContext) => void;
}

const kPerTry = Symbol('trellis.perTryTimeout');
const PER_TRY_TIMEOUT: Classification = Object.freeze({ kind: 'failure', conditions: Object.freeze(['timeout']) });
const NEVER_RETRIED = new Set<string>(['TRELLIS_CIRCUIT_OPEN', 'TRELLIS_RATE_LIMITED', 'TRELLIS_ABORTED', 'TRELLIS_PEER_IDENTITY', 'TRELLIS_NO_IDENTITY']);

function isPerTryTimeout(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[kPerTry] === true;
}

/** Errors that no retry can fix: a layer below refused, or the whole call was cancelled. */
function neverRetried(err: unknown): boolean {
  if (!isTrellisError(err)) return false;
  return NEVER_RETRIED.has(err.code) || (err.code === 'TRELLIS_TIMEOUT' && !isPerTryTimeout(err));
}

function describeError(err: unknown): string {
  if (isTrellisError(err)) return err.code;
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    return code !== undefined ? String(code) : err.name;
  }
  return typeof err;
}

/**
 * Builds the retry filter. Validates its params at build time (a bad policy fails at load).
 *
 * @example
 * const retry = retryFilter({ attempts: 3, on: ['connect-failure', 'gateway-error'], perTryTimeoutMs: 500 },
 *   { budget, classify, discard, backoff: exponentialBackoff({ baseMs: 25, maxMs: 250 }, systemRandom),
 *     clock: systemClock, replayable: (req) => req.body === undefined || typeof req.body === 'string' });
 */
export function retryFilter<Req, Res>(params: RetryParams, deps: RetryDeps<Req, Res>): Filter<Req, Res> {
  const { attempts: maxAttempts, perTryTimeoutMs } = params;
  if (!(Number.isInteger(maxAttempts) && maxAttempts >= 1)) throw new RangeError(`retry attempts must be an integer >= 1, got ${maxAttempts}`);
  if (perTryTimeoutMs !== undefined && !(Number.isFinite(perTryTimeoutMs) && perTryTimeoutMs > 0)) {
    throw new RangeError(`retry perTryTimeoutMs must be > 0, got ${perTryTimeoutMs}`);
  }
  const on = new Set(params.on);
  const { budget, classify, discard, backoff, clock, replayable, onRetry, onBudgetExhausted } = deps;

  const runAttempt = (req: Req, actx: CallContext, next: Service<Req, Res>): Promise<Res> => {
    if (perTryTimeoutMs === undefined || (actx.deadline !== undefined && clock.now() + perTryTimeoutMs >= actx.deadline)) {
      return next(req, actx);
    }
    return attemptWithTimeout(req, actx, next, perTryTimeoutMs, discard);
  };

  const retriesReset = on.has('reset') && maxAttempts > 1;
  return async (req, ctx, next) => {
    budget.deposit();
    // Whether a reset of this request could be retried at all (attempts left is checked per attempt).
    const resetRetryable = retriesReset && ctx.idempotent && replayable(req);
    let avoid = ctx.avoid;
    let history: string[] | undefined;
    for (let attempt = 1; ; attempt++) {
      const actx = ctx.fork();
      actx.attempt = attempt;
      actx.avoid = avoid;
      actx.retriesReset = resetRetryable && attempt < maxAttempts;
      let result: Res | undefined;
      let error: unknown;
      let threw = false;
      let cls: Classification;
      try {
        result = await runAttempt(req, actx, next);
        cls = classify(result, undefined);
      } catch (e) {
        threw = true;
        error = e;
        cls = isPerTryTimeout(e) ? PER_TRY_TIMEOUT : classify(undefined, e);
      }
      if (cls.kind === 'ignore' && cls.shed === true && !threw) {
        // Shed before any work: safe to send elsewhere whatever the method, and not a failure
        // of anyone, so no budget token; still bounded by attempts, replay and the deadline.
        const endpointId = actx.endpoint?.id;
        if (attempt >= maxAttempts || !replayable(req) || ctx.signal?.aborted === true || (ctx.deadline !== undefined && clock.now() >= ctx.deadline)) {
          return result as Res;
        }
        discardQuietly(discard, result as Res);
        if (endpointId !== undefined) avoid = new Set(avoid).add(endpointId);
        onRetry?.(ctx, 'shed');
        continue;
      }
      if (cls.kind !== 'failure') {
        if (threw) throw error;
        return result as Res;
      }

      const endpointId = actx.endpoint?.id;
      (history ??= []).push(`#${attempt} ${cls.conditions.length > 0 ? cls.conditions.join('/') : threw ? describeError(error) : 'failure'}${endpointId !== undefined ? ` on ${endpointId}` : ''}`);
      const reason = cls.conditions.find((c) => on.has(c));
      let stop: string | undefined;
      let delay = 0;
      if (attempt >= maxAttempts) stop = `${maxAttempts} attempt${maxAttempts === 1 ? '' : 's'} allowed`;
      else if (threw && neverRetried(error)) stop = `${describeError(error)} is never retried`;
      else if (reason === undefined) stop = 'no retry condition matched';
      else if (!ctx.idempotent && !cls.conditions.includes('connect-failure')) stop = 'request is not idempotent';
      else if (!replayable(req)) stop = 'request body cannot be replayed';
      else if (ctx.signal?.aborted === true) stop = 'call was cancelled';
      else {
        delay = backoff(attempt);
        if (ctx.deadline !== undefined && clock.now() + delay >= ctx.deadline) stop = 'deadline leaves no time for another attempt';
        else if (!budget.tryWithdraw()) {
          onBudgetExhausted?.(ctx);
          stop = 'retry budget exhausted';
        }
      }

      if (stop !== undefined) {
        if (!threw) return result as Res;
        if (attempt === 1 || ctx.signal?.aborted === true) throw error;
        throw new RetriesExhaustedError(`gave up after ${attempt} attempts (${stop}): ${history.join(', ')}`, {
          cause: error,
          service: ctx.service,
          route: actx.route ?? ctx.route,
        });
      }

      if (!threw) discardQuietly(discard, result as Res);
      if (endpointId !== undefined) avoid = new Set(avoid).add(endpointId);
      onRetry?.(ctx, reason as string);
      if (delay > 0) await sleep(delay, ctx.signal);
    }
  };
}

/** Runs one attempt with its own signal: the call's signal, plus a per-try timer. */
function attemptWithTimeout<Req, Res>(
  req: Req,
  actx: CallContext,
  next: Service<Req, Res>,
  timeoutMs: number,
  discard: Discard<Res>,
): Promise<Res> {
  const parent = actx.signal;
  if (parent?.aborted === true) return Promise.reject(parent.reason);
  const controller = new CallController();
  actx.signal = controller.signal;
  return new Promise<Res>((resolve, reject) => {
    let settled = false;
    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParentAbort);
    };
    // Settle first, then abort: the attempt promise always ends with our error, even if next()
    // ignores its signal or rejects with its own error in reaction to the abort.
    const onParentAbort = (): void => {
      finish();
      reject(parent?.reason);
      controller.abort(parent?.reason);
    };
    const timer = setTimeout(() => {
      const err = new TimeoutError(`per-try timeout of ${timeoutMs} ms expired on attempt ${actx.attempt}`, {
        service: actx.service,
        route: actx.route,
        endpoint: actx.endpoint?.id,
        retryable: true,
      });
      Object.defineProperty(err, kPerTry, { value: true });
      finish();
      reject(err);
      controller.abort(err);
    }, timerDelay(timeoutMs));
    parent?.addEventListener('abort', onParentAbort);
    let pending: Promise<Res>;
    try {
      pending = next(req, actx);
    } catch (e) {
      finish();
      reject(e);
      return;
    }
    pending.then(
      (res) => {
        if (settled) discardQuietly(discard, res); // arrived after its timeout: nobody will read it
        else {
          finish();
          resolve(res);
        }
      },
      (e: unknown) => {
        if (!settled) {
          finish();
          reject(e);
        }
      },
    );
  });
}

/** Sleeps `ms`; rejects with the signal's reason as soon as the signal aborts. */
function sleep(ms: number, signal: CallSignal | undefined): Promise<void> {
  if (signal?.aborted === true) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, timerDelay(ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A result that fails to release must not fail the call that no longer needs it. */
function discardQuietly<Res>(discard: Discard<Res>, res: Res): void {
  try {
    discard(res);
  } catch {
    // Releasing is best effort (a body already consumed or destroyed throws here).
  }
}
