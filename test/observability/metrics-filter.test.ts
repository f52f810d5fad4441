/**
 * The metrics filters over fake next services with a manual clock: exact counters for a known
 * sequence (successes, a 503, typed errors, retries), histogram counts, logical requests recorded
 * at body completion, attempts at headers, and no raw path in any label.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ManualClock } from '../../src/core/clock.js';
import { CallContext } from '../../src/core/context.js';
import { CircuitOpenError, ConnectFailedError, RateLimitedError, TimeoutError, AbortedError, isTrellisError } from '../../src/core/errors.js';
import type { Filter, Service } from '../../src/core/service.js';
import { applyFilter } from '../../src/core/service.js';
import { IGNORE, SUCCESS } from '../../src/core/classify.js';
import type { Classification } from '../../src/core/classify.js';
import { httpClassifier } from '../../src/client/http-classify.js';
import { RetryBudget } from '../../src/resilience/retry-budget.js';
import { retryFilter } from '../../src/resilience/retry-filter.js';
import { MeshMetrics, METRIC_NAMES as N } from '../../src/observability/metrics.js';
import { attemptMetricsFilter, httpDescribe, requestMetricsFilter } from '../../src/observability/metrics-filter.js';
import type { MetricsFilterDeps } from '../../src/observability/metrics-filter.js';
import { parseExposition, sampleSum, samples } from '../helpers/prometheus.js';

interface Req {
  method: string;
  path: string;
}

/** An HTTP-like response whose body ends (or errors) when told to. */
class FakeRes {
  readonly body = Object.assign(new EventEmitter(), { closed: false, errored: null as unknown });
  constructor(readonly statusCode: number) {}
  end(err?: unknown): void {
    if (err !== undefined) this.body.errored = err;
    this.body.closed = true;
    this.body.emit('close');
  }
}

const whenDone = (res: FakeRes, done: () => void): void => {
  if (res.body.closed) done();
  else res.body.once('close', done);
};

const classify = httpClassifier(['connect-failure', 'gateway-error']) as unknown as (r: FakeRes | undefined, e: unknown) => Classification;

function deps(clock: ManualClock): MetricsFilterDeps<Req, FakeRes> {
  return { clock, method: (r) => r.method, describe: httpDescribe<FakeRes>(classify), whenDone };
}

/** A context for `products`; `null` leaves the route unset (routing has not run). */
function ctxFor(route: string | null = 'catalog'): CallContext {
  const c = new CallContext('products', true);
  c.route = route ?? undefined;
  return c;
}

/** A fake upstream answering from a script, one step per call; each step may advance the clock. */
function scripted(clock: ManualClock, steps: (() => FakeRes | Error)[], ms = 10): Service<Req, FakeRes> & { calls: () => number } {
  let i = 0;
  const svc = (async () => {
    const step = steps[Math.min(i, steps.length - 1)];
    i++;
    clock.advance(ms);
    const out = step?.();
    if (out instanceof Error) throw out;
    if (out === undefined) throw new Error('no step');
    return out;
  }) as unknown as Service<Req, FakeRes> & { calls: () => number };
  svc.calls = () => i;
  return svc;
}

const ok = (): FakeRes => {
  const r = new FakeRes(200);
  r.end();
  return r;
};

describe('requestMetricsFilter', () => {
  it('counts a known sequence exactly: successes, a 503, typed errors', async () => {
    const clock = new ManualClock();
    const m = new MeshMetrics();
    const f = requestMetricsFilter(m, deps(clock));
    const run = async (step: () => FakeRes | Error, method = 'GET'): Promise<unknown> => {
      try {
        return await f({ method, path: '/products/123?x=1' }, ctxFor(), scripted(clock, [step]));
      } catch (err) {
        return err;
      }
    };
    for (let i = 0; i < 3; i++) await run(ok);
    await run(() => {
      const r = new FakeRes(503);
      r.end();
      return r;
    });
    await run(() => new ConnectFailedError('refused'));
    await run(() => new TimeoutError('slow'));
    await run(() => new CircuitOpenError('open'));
    await run(() => new RateLimitedError('limited'));
    await run(() => new AbortedError('bye'));
    await run(() => new Error('plain'));
    await run(ok, 'POST');

    const text = await m.text();
    const count = (labels: Record<string, string>): number => sampleSum(text, N.clientRequests, { service: 'products', route: 'catalog', ...labels });
    assert.equal(count({ method: 'GET', status_code: '200', outcome: 'success' }), 3);
    assert.equal(count({ method: 'POST', status_code: '200', outcome: 'success' }), 1);
    assert.equal(count({ status_code: '503', outcome: 'failure' }), 1);
    assert.equal(count({ status_code: '', outcome: 'connect_failure' }), 1);
    assert.equal(count({ status_code: '', outcome: 'timeout' }), 1);
    assert.equal(count({ status_code: '', outcome: 'circuit_open' }), 1);
    assert.equal(count({ status_code: '', outcome: 'rate_limited' }), 1);
    assert.equal(count({ status_code: '', outcome: 'cancelled' }), 1);
    assert.equal(count({ status_code: '', outcome: 'failure' }), 1);
    assert.equal(sampleSum(text, N.clientRequests), 11);
    // Every call took 10 ms on the manual clock: all in the (0.005, 0.01] bucket.
    assert.equal(sampleSum(text, `${N.clientRequestDuration}_count`), 11);
    assert.equal(sampleSum(text, `${N.clientRequestDuration}_bucket`, { le: '0.005' }), 0);
    assert.equal(sampleSum(text, `${N.clientRequestDuration}_bucket`, { le: '0.01' }), 11);
    assert.equal(sampleSum(text, N.clientAttempts), 0, 'the logical filter records no attempts');
  });

  it('records when the body completes, with the time the body took', async () => {
    const clock = new ManualClock();
    const m = new MeshMetrics();
    const f = requestMetricsFilter(m, deps(clock));
    const res = new FakeRes(200);
    const got = await f({ method: 'GET', path: '/' }, ctxFor(), scripted(clock, [() => res], 20));
    assert.equal(got, res);
    assert.equal(sampleSum(await m.text(), N.clientRequests), 0, 'nothing before the body ends');
    clock.advance(600);
    res.end();
    res.end(); // a second close must not count twice
    const text = await m.text();
    assert.equal(sampleSum(text, N.clientRequests, { outcome: 'success' }), 1);
    assert.equal(sampleSum(text, `${N.clientRequestDuration}_bucket`, { le: '0.5' }), 0);
    assert.equal(sampleSum(text, `${N.clientRequestDuration}_bucket`, { le: '0.75' }), 1);
  });

  it('gives a body that errored the error outcome, keeping its status', async () => {
    const clock = new ManualClock();
    const m = new MeshMetrics();
    const f = requestMetricsFilter(m, deps(clock));
    const reset = new FakeRes(200);
    await f({ method: 'GET', path: '/' }, ctxFor(), scripted(clock, [() => reset]));
    reset.end(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }));
    const late = new FakeRes(200);
    await f({ method: 'GET', path: '/' }, ctxFor(), scripted(clock, [() => late]));
    late.end(new TimeoutError('overall timeout'));
    const text = await m.text();
    assert.equal(sampleSum(text, N.clientRequests, { status_code: '200', outcome: 'reset' }), 1);
    assert.equal(sampleSum(text, N.clientRequests, { status_code: '200', outcome: 'timeout' }), 1);
  });

  it('labels a call that ended before routing with route "unknown", and reads a route set below', async () => {
    const clock = new ManualClock();
    const m = new MeshMetrics();
    const f = requestMetricsFilter(m, deps(clock));
    await f({ method: 'GET', path: '/' }, ctxFor(null), scripted(clock, [() => new CircuitOpenError('open')])).catch(() => undefined);
    const routing: Service<Req, FakeRes> = async (_req, ctx) => {
      ctx.route = 'catalog';
      return ok();
    };
    await f({ method: 'GET', path: '/' }, ctxFor(null), routing);
    const text = await m.text();
    assert.equal(sampleSum(text, N.clientRequests, { route: 'unknown', outcome: 'circuit_open' }), 1);
    assert.equal(sampleSum(text, N.clientRequests, { route: 'catalog', outcome: 'success' }), 1);
  });

  it('survives a next that throws synchronously and a describe that throws', async () => {
    const clock = new ManualClock();
    const m = new MeshMetrics();
    const f = requestMetricsFilter(m, deps(clock));
    const boom = new Error('sync');
    await assert.rejects(f({ method: 'GET', path: '/' }, ctxFor(), () => {
      throw boom;
    }), (e) => e === boom);
    const broken = requestMetricsFilter<Req, FakeRes>(m, { clock, method: (r) => r.method, describe: () => { throw new Error('broken'); } });
    const res = await broken({ method: 'GET', path: '/' }, ctxFor(), scripted(clock, [ok]));
    assert.equal(res.statusCode, 200);
    assert.equal(sampleSum(await m.text(), N.clientRequests, { outcome: 'failure', status_code: '' }), 1);
  });
});

describe('attemptMetricsFilter below a retry filter', () => {
  function stack(m: MeshMetrics, clock: ManualClock, next: Service<Req, FakeRes>): Service<Req, FakeRes> {
    const d = deps(clock);
    const retry: Filter<Req, FakeRes> = retryFilter<Req, FakeRes>(
      { attempts: 3, on: ['connect-failure', 'gateway-error'], perTryTimeoutMs: undefined },
      {
        budget: new RetryBudget({ ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 }, clock),
        classify,
        discard: (r) => r.end(),
        backoff: () => 0,
        clock,
        replayable: () => true,
        onRetry: (ctx, reason) => m.retry(ctx.service, ctx.route ?? 'unknown', reason),
      },
    );
    let svc = applyFilter(attemptMetricsFilter(m, d), next);
    svc = applyFilter(retry, svc);
    return applyFilter(requestMetricsFilter(m, d), svc);
  }

  it('counts each try and the logical request once: 503, connect failure, then success', async () => {
    const clock = new ManualClock();
    const m = new MeshMetrics();
    const upstream = scripted(clock, [
      () => {
        const r = new FakeRes(503);
        r.end();
        return r;
      },
      () => new ConnectFailedError('refused'),
      ok,
    ]);
    const res = await stack(m, clock, upstream)({ method: 'GET', path: '/users/42' }, ctxFor());
    assert.equal(res.statusCode, 200);
    assert.equal(upstream.calls(), 3);
    const text = await m.text();
    assert.equal(sampleSum(text, N.clientAttempts), 3);
    assert.equal(sampleSum(text, N.clientAttempts, { status_code: '503', outcome: 'failure' }), 1);
    assert.equal(sampleSum(text, N.clientAttempts, { status_code: '', outcome: 'connect_failure' }), 1);
    assert.equal(sampleSum(text, N.clientAttempts, { status_code: '200', outcome: 'success' }), 1);
    assert.equal(sampleSum(text, N.clientRequests), 1);
    assert.equal(sampleSum(text, N.clientRequests, { status_code: '200', outcome: 'success' }), 1);
    assert.equal(sampleSum(text, N.clientRetries), 2);
    assert.equal(sampleSum(text, N.clientRetries, { reason: 'gateway-error' }), 1);
    assert.equal(sampleSum(text, N.clientRetries, { reason: 'connect-failure' }), 1);
    // attempts = logical requests + retries
    assert.equal(sampleSum(text, N.clientAttempts), sampleSum(text, N.clientRequests) + sampleSum(text, N.clientRetries));
    // Logical duration spans the three 10 ms tries; each attempt took 10 ms.
    assert.equal(sampleSum(text, `${N.clientRequestDuration}_bucket`, { le: '0.025' }), 0);
    assert.equal(sampleSum(text, `${N.clientRequestDuration}_bucket`, { le: '0.05' }), 1);
    assert.equal(sampleSum(text, `${N.clientAttemptDuration}_bucket`, { le: '0.01' }), 3);
  });

  it('records the attempt at headers, before the body ends', async () => {
    const clock = new ManualClock();
    const m = new MeshMetrics();
    const res = new FakeRes(200);
    await stack(m, clock, scripted(clock, [() => res]))({ method: 'GET', path: '/' }, ctxFor());
    let text = await m.text();
    assert.equal(sampleSum(text, N.clientAttempts), 1);
    assert.equal(sampleSum(text, N.clientRequests), 0);
    res.end();
    text = await m.text();
    assert.equal(sampleSum(text, N.clientRequests), 1);
  });

  it('after exhausted retries, the caller saw a failure; every try is counted', async () => {
    const clock = new ManualClock();
    const m = new MeshMetrics();
    const upstream = scripted(clock, [() => new ConnectFailedError('refused')]);
    const err = await stack(m, clock, upstream)({ method: 'GET', path: '/' }, ctxFor()).catch((e: unknown) => e);
    assert.ok(isTrellisError(err, 'TRELLIS_RETRIES_EXHAUSTED'));
    const text = await m.text();
    assert.equal(sampleSum(text, N.clientAttempts, { outcome: 'connect_failure' }), 3);
    assert.equal(sampleSum(text, N.clientRequests, { outcome: 'failure', status_code: '' }), 1);
  });

  it('never puts a raw path in a label', async () => {
    const clock = new ManualClock();
    const m = new MeshMetrics();
    const svc = stack(m, clock, scripted(clock, [ok]));
    for (const path of ['/users/1', '/users/2?token=abc', '/a/b/c', '/']) {
      await svc({ method: 'GET', path }, ctxFor());
    }
    const text = await m.text();
    const values = parseExposition(text).flatMap((s) => Object.values(s.labels));
    assert.ok(values.length > 0);
    for (const v of values) assert.ok(!v.startsWith('/'), `label value ${v} looks like a path`);
    assert.ok(!/"\/[^"]*"/.test(text), 'no quoted /path in the exposition');
    assert.equal(sampleSum(text, N.clientRequests), 4);
    assert.equal(samples(text, N.clientRequests).length, 1, 'four paths, one series');
  });
});

describe('httpDescribe', () => {
  it('maps responses through the classifier and errors through ERROR_CODES', () => {
    let next: Classification = SUCCESS;
    const d = httpDescribe<FakeRes>(() => next);
    assert.deepEqual({ ...d(new FakeRes(200), undefined) }, { statusCode: '200', outcome: 'success' });
    next = { kind: 'failure', conditions: ['5xx'] };
    assert.deepEqual({ ...d(new FakeRes(200), undefined) }, { statusCode: '200', outcome: 'failure' });
    next = IGNORE;
    assert.deepEqual({ ...d(new FakeRes(503), undefined) }, { statusCode: '503', outcome: 'fault' });
    assert.deepEqual({ ...d(undefined, new CircuitOpenError('x')) }, { statusCode: '', outcome: 'circuit_open' });
    assert.deepEqual({ ...d(undefined, new Error('x')) }, { statusCode: '', outcome: 'failure' });
    assert.equal(d(undefined, new TimeoutError('x')), d(undefined, new TimeoutError('y')), 'descriptions are shared, not allocated per call');
  });
});
