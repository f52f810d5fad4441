import { CallController } from '../../src/core/call-signal.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock, systemClock, type Clock } from '../../src/core/clock.js';
import type { CallContext } from '../../src/core/context.js';
import {
  CircuitOpenError,
  ConnectFailedError,
  RateLimitedError,
  ResetError,
  RetriesExhaustedError,
  TimeoutError,
  PeerIdentityError,
  isTrellisError,
} from '../../src/core/errors.js';
import type { Service } from '../../src/core/service.js';
import { makeEndpoint } from '../../src/discovery/endpoint.js';
import { RetryBudget } from '../../src/resilience/retry-budget.js';
import { retryFilter, type RetryParams } from '../../src/resilience/retry-filter.js';
import { timeoutFilter } from '../../src/resilience/timeout-filter.js';
import { classify, ctxFor, delay, discard, never, res, type FakeRes } from './fakes.js';

interface Setup {
  params?: Partial<RetryParams>;
  clock?: Clock;
  budget?: RetryBudget;
  backoff?: (retry: number) => number;
  replayable?: (req: string) => boolean;
}

function setup(s: Setup = {}) {
  const clock = s.clock ?? new ManualClock();
  const events: string[] = [];
  let budgetExhausted = 0;
  const filter = retryFilter<string, FakeRes>(
    { attempts: 3, on: ['connect-failure', 'reset', 'gateway-error', 'timeout'], perTryTimeoutMs: undefined, ...s.params },
    {
      budget: s.budget ?? new RetryBudget({ ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 }, clock),
      classify,
      discard: (r) => {
        events.push(`discard ${r.status}`);
        discard(r);
      },
      backoff: s.backoff ?? (() => 0),
      clock,
      replayable: s.replayable ?? (() => true),
      onRetry: (_ctx, reason) => events.push(`retry ${reason}`),
      onBudgetExhausted: () => {
        budgetExhausted++;
      },
    },
  );
  return { filter, events, exhausted: () => budgetExhausted };
}

/** A fake upstream answering from a script, one entry per attempt; records each attempt's context. */
function scripted(script: ((ctx: CallContext) => Promise<FakeRes>)[]) {
  const seen: CallContext[] = [];
  const next: Service<string, FakeRes> = async (_req, ctx) => {
    seen.push(ctx);
    const step = script[Math.min(seen.length, script.length) - 1];
    assert.ok(step !== undefined);
    return step(ctx);
  };
  return { next, seen };
}

const answer = (status: number) => async () => res(status);
const fail = (err: Error) => async () => {
  throw err;
};

test('retries on listed conditions and returns the first success', async () => {
  const { filter, events } = setup();
  const up = scripted([answer(503), answer(502), answer(200)]);
  const out = await filter('GET /', ctxFor(), up.next);
  assert.equal(out.status, 200);
  assert.equal(up.seen.length, 3);
  assert.deepEqual(events, ['discard 503', 'retry gateway-error', 'discard 502', 'retry gateway-error']);
});

test('does not retry conditions that are not listed', async () => {
  const { filter } = setup();
  const up = scripted([answer(500), answer(200)]);
  const out = await filter('GET /', ctxFor(), up.next);
  assert.equal(out.status, 500, 'a 500 is 5xx, not gateway-error');
  assert.equal(up.seen.length, 1);
  assert.equal(out.discarded, false);
});

test('non-idempotent requests are retried only on connect-failure', async () => {
  const a = setup();
  const reset = new ResetError('reset by peer');
  const up1 = scripted([fail(reset), answer(200)]);
  await assert.rejects(a.filter('POST /', ctxFor(false), up1.next), (e) => e === reset);
  assert.equal(up1.seen.length, 1);

  const up2 = scripted([answer(503), answer(200)]);
  assert.equal((await a.filter('POST /', ctxFor(false), up2.next)).status, 503);
  assert.equal(up2.seen.length, 1);

  const up3 = scripted([fail(new ConnectFailedError('ECONNREFUSED')), answer(201)]);
  assert.equal((await a.filter('POST /', ctxFor(false), up3.next)).status, 201);
  assert.equal(up3.seen.length, 2);
});

test('each attempt gets a forked context with its number and a growing avoid set', async () => {
  const { filter } = setup();
  const avoidSeen: (string[] | undefined)[] = [];
  let n = 0;
  const next: Service<string, FakeRes> = async (_req, ctx) => {
    n++;
    avoidSeen.push(ctx.avoid === undefined ? undefined : [...ctx.avoid]);
    assert.equal(ctx.attempt, n);
    ctx.endpoint = makeEndpoint(`10.0.0.${n}`, 80); // what the balancer would do
    throw new ConnectFailedError('refused');
  };
  const ctx = ctxFor();
  await assert.rejects(filter('GET /', ctx, next), RetriesExhaustedError);
  assert.deepEqual(avoidSeen, [undefined, ['10.0.0.1:80'], ['10.0.0.1:80', '10.0.0.2:80']]);
  assert.equal(ctx.attempt, 1, 'the call context itself is not changed');
  assert.equal(ctx.endpoint, undefined);
});

test('a failed result is discarded before the retry, the last one returned as it is', async () => {
  const { filter, events } = setup();
  const results = [res(503), res(503), res(503)];
  const order: string[] = [];
  const next: Service<string, FakeRes> = async () => {
    const r = results[order.length];
    assert.ok(r !== undefined);
    order.push(`attempt (previous discarded: ${order.length === 0 || results[order.length - 1]!.discarded})`);
    return r;
  };
  const out = await filter('GET /', ctxFor(), next);
  assert.equal(out, results[2], 'the caller sees the last 503');
  assert.deepEqual(results.map((r) => r.discarded), [true, true, false]);
  assert.deepEqual(order, ['attempt (previous discarded: true)', 'attempt (previous discarded: true)', 'attempt (previous discarded: true)']);
  assert.equal(events.filter((e) => e.startsWith('discard')).length, 2);
});

test('thrown errors: as-is after one attempt, RetriesExhaustedError with the last cause after several', async () => {
  const single = setup({ params: { attempts: 1 } });
  const e1 = new ResetError('first');
  await assert.rejects(single.filter('GET /', ctxFor(), scripted([fail(e1)]).next), (e) => e === e1);

  const { filter } = setup();
  const last = new ResetError('third');
  const up = scripted([fail(new ResetError('first')), fail(new ConnectFailedError('second')), fail(last)]);
  await assert.rejects(filter('GET /', ctxFor(), up.next), (e: unknown) => {
    assert.ok(e instanceof RetriesExhaustedError);
    assert.equal(e.cause, last);
    assert.equal(e.service, 'products');
    assert.match(e.message, /gave up after 3 attempts/);
    assert.match(e.message, /#1 reset, #2 connect-failure, #3 reset/);
    return true;
  });
});

test('circuit-open, rate-limited, peer-identity and overall timeouts are never retried', async () => {
  for (const err of [new CircuitOpenError('open'), new RateLimitedError('limited'), new TimeoutError('overall'), new PeerIdentityError('wrong SPIFFE identity')]) {
    const { filter } = setup();
    const up = scripted([fail(err), answer(200)]);
    await assert.rejects(filter('GET /', ctxFor(), up.next), (e) => e === err);
    assert.equal(up.seen.length, 1, `${err.code} must not be retried`);
  }
  // On a later attempt they end the retries (wrapped, keeping the cause).
  const { filter } = setup();
  const open = new CircuitOpenError('open');
  const up = scripted([fail(new ResetError('x')), fail(open), answer(200)]);
  await assert.rejects(filter('GET /', ctxFor(), up.next), (e) => e instanceof RetriesExhaustedError && e.cause === open);
  assert.equal(up.seen.length, 2);
});

test('a body that cannot be replayed is not retried', async () => {
  const { filter } = setup({ replayable: () => false });
  const up = scripted([answer(503), answer(200)]);
  assert.equal((await filter('PUT /', ctxFor(), up.next)).status, 503);
  assert.equal(up.seen.length, 1);
});

test('no retry when the deadline leaves no time for the backoff sleep', async () => {
  const clock = new ManualClock(1000);
  const { filter } = setup({ clock, backoff: () => 50 });
  const ctx = ctxFor();
  ctx.deadline = 1000 + 40;
  const up = scripted([answer(503), answer(200)]);
  assert.equal((await filter('GET /', ctx, up.next)).status, 503);
  assert.equal(up.seen.length, 1);
});

test('budget exhaustion stops retries: attempts <= requests·(1 + ratio) + min·ttl', async () => {
  const clock = new ManualClock(0);
  const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 }, clock);
  const { filter, exhausted } = setup({ clock, budget, params: { attempts: 4 } });
  let attempts = 0;
  const next: Service<string, FakeRes> = async () => {
    attempts++;
    return res(503);
  };
  for (let i = 0; i < 1000; i++) {
    await filter('GET /', ctxFor(), next);
    clock.advance(5);
  }
  assert.ok(attempts <= 1000 * 1.2 + 10 * 10, `attempts ${attempts}`);
  assert.ok(attempts >= 1290, `the budget should allow about 300 retries, saw ${attempts - 1000}`);
  assert.ok(exhausted() > 0);
  assert.equal(budget.stats().requests, 1000, 'one deposit per logical request, not per attempt');
});

test('per-try timeout aborts the attempt signal and retries, even if next ignores the signal', async () => {
  const { filter, events } = setup({ clock: systemClock, params: { perTryTimeoutMs: 30 } });
  const callSignal = new CallController().signal;
  const ctx = ctxFor();
  ctx.signal = callSignal;
  const up = scripted([() => never<FakeRes>(), answer(200)]);
  const t0 = performance.now();
  const out = await filter('GET /', ctx, up.next);
  const took = performance.now() - t0;
  assert.equal(out.status, 200);
  assert.ok(took >= 25 && took < 5000, `took ${took} ms`);
  const first = up.seen[0]!.signal;
  assert.ok(first !== undefined && first !== callSignal && first.aborted);
  assert.ok(first.reason instanceof TimeoutError);
  assert.match(String(first.reason.message), /per-try timeout of 30 ms/);
  assert.match(String(first.reason.message), /service products/);
  assert.equal(up.seen[1]!.signal?.aborted, false);
  assert.equal(callSignal.aborted, false, 'a per-try timeout never cancels the call');
  assert.deepEqual(events, ['retry timeout']);
});

test('per-try timeouts on a non-idempotent request are not retried (bytes may have been sent)', async () => {
  const { filter } = setup({ clock: systemClock, params: { perTryTimeoutMs: 20 } });
  const up = scripted([() => never<FakeRes>(), answer(200)]);
  await assert.rejects(filter('POST /', ctxFor(false), up.next), (e) => isTrellisError(e, 'TRELLIS_TIMEOUT'));
  assert.equal(up.seen.length, 1);
});

test('a result arriving after its per-try timeout is discarded', async () => {
  const { filter } = setup({ clock: systemClock, params: { perTryTimeoutMs: 20 } });
  const late = res(200);
  const up = scripted([() => delay(50).then(() => late), answer(201)]);
  assert.equal((await filter('GET /', ctxFor(), up.next)).status, 201);
  await delay(60);
  assert.equal(late.discarded, true);
});

test('the attempt signal follows the call signal', async () => {
  const { filter } = setup({ clock: systemClock, params: { perTryTimeoutMs: 1000 } });
  const caller = new CallController();
  const ctx = ctxFor();
  ctx.signal = caller.signal;
  const up = scripted([() => never<FakeRes>()]);
  const p = filter('GET /', ctx, up.next);
  await delay(5);
  const reason = new Error('caller went away');
  caller.abort(reason);
  await assert.rejects(p, (e) => e === reason);
  assert.equal(up.seen[0]!.signal?.aborted, true);
  assert.equal(up.seen[0]!.signal?.reason, reason);
  assert.equal(up.seen.length, 1);
});

test('the backoff sleep is cancelled by the call signal, with its reason', async () => {
  const { filter } = setup({ clock: systemClock, backoff: () => 10_000 });
  const caller = new CallController();
  const ctx = ctxFor();
  ctx.signal = caller.signal;
  const up = scripted([answer(503), answer(200)]);
  const p = filter('GET /', ctx, up.next);
  await delay(10);
  const t0 = performance.now();
  caller.abort(new Error('stop'));
  await assert.rejects(p, /stop/);
  assert.ok(performance.now() - t0 < 5000, 'not after the 10 s backoff');
  assert.equal(up.seen.length, 1);
});

test('under an overall timeout: per-try timeouts retry until the deadline, which wins', async () => {
  // Tries at 0, 300, 600 and 900 ms; the fourth's own timeout (1,200 ms) is past the overall
  // 1,000 ms, so the overall timeout ends the call. A timer a loaded machine fires 100 ms late can
  // leave the retry layer seeing the deadline first: it then gives up naming the deadline, which
  // is the same outcome told from below.
  const retry = setup({ clock: systemClock, params: { perTryTimeoutMs: 300, attempts: 10 } }).filter;
  const timeout = timeoutFilter<string, FakeRes>({ timeoutMs: 1000 }, { clock: systemClock });
  const up = scripted([() => never<FakeRes>()]);
  const t0 = performance.now();
  await assert.rejects(
    timeout('GET /', ctxFor(), (req, ctx) => retry(req, ctx, up.next)),
    (e) => (isTrellisError(e, 'TRELLIS_TIMEOUT') && /overall timeout/.test(e.message)) || (isTrellisError(e, 'TRELLIS_RETRIES_EXHAUSTED') && /deadline leaves no time/.test(e.message)),
  );
  const took = performance.now() - t0;
  assert.ok(took >= 950 && took < 5000, `took ${took} ms`);
  assert.ok(up.seen.length >= 3 && up.seen.length <= 4, `attempts ${up.seen.length}`);
  assert.ok(up.seen.every((c) => c.signal?.aborted === true), 'every attempt was cancelled');
});

test('rejects bad params at build time', () => {
  assert.throws(() => setup({ params: { attempts: 0 } }), RangeError);
  assert.throws(() => setup({ params: { perTryTimeoutMs: 0 } }), RangeError);
});

test('a per-try timeout beyond what a timer can wait (2^31 ms) does not overflow into an immediate timeout', async () => {
  const { filter } = setup({ clock: systemClock, params: { perTryTimeoutMs: 2 ** 32 } });
  let attempts = 0;
  const result = await filter('GET /', ctxFor(), async () => {
    attempts++;
    await delay(30);
    return res(200);
  });
  assert.equal(result.status, 200);
  assert.equal(attempts, 1);
});
