import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CircuitOpenError, AbortedError, ResetError } from '../../src/core/errors.js';
import type { Service } from '../../src/core/service.js';
import { BreakerTicker, CircuitBreaker, REFUSED, type BreakerState, type CircuitBreakerParams } from '../../src/resilience/circuit-breaker.js';
import { classify, ctxFor, deferred, delay, res, type FakeRes } from './fakes.js';

const PARAMS: CircuitBreakerParams = { errorThresholdPercent: 50, volumeThreshold: 10, resetTimeoutMs: 50, windowMs: 10_000 };

function make(params: Partial<CircuitBreakerParams> = {}, ticker?: BreakerTicker) {
  const states: BreakerState[] = [];
  const breaker = new CircuitBreaker<string, FakeRes>(
    { ...PARAMS, ...params },
    { classify, service: 'products', onStateChange: (s) => states.push(s), ...(ticker ? { rotate: ticker } : {}) },
  );
  return { breaker, states };
}

function counting(impl: () => Promise<FakeRes>) {
  let calls = 0;
  const next: Service<string, FakeRes> = () => {
    calls++;
    return impl();
  };
  return { next, calls: () => calls };
}

const call = (b: CircuitBreaker<string, FakeRes>, next: Service<string, FakeRes>) => b.filter('GET /', ctxFor(), next);
const failing = async (): Promise<FakeRes> => res(503);
const ok = async (): Promise<FakeRes> => res(200);

async function openIt(b: CircuitBreaker<string, FakeRes>, n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await call(b, failing);
  assert.equal(b.state, 'open');
}

test('stays closed below volumeThreshold even at 100% failures; failed results are returned', async (t) => {
  const { breaker } = make();
  t.after(() => breaker.close());
  for (let i = 0; i < 9; i++) {
    const out = await call(breaker, failing);
    assert.equal(out.status, 503, 'a failed result still reaches the caller');
  }
  assert.equal(breaker.state, 'closed');
  assert.deepEqual({ ...breaker.stats(), errorPercent: Math.round(breaker.stats().errorPercent) }, {
    state: 'closed', requests: 9, successes: 0, failures: 9, errorPercent: 100, rejected: 0,
  });
});

test('opens above the threshold and fails fast without reaching next', async (t) => {
  const { breaker, states } = make();
  t.after(() => breaker.close());
  for (let i = 0; i < 5; i++) await call(breaker, ok);
  for (let i = 0; i < 5; i++) await call(breaker, failing);
  assert.equal(breaker.state, 'closed', '50% is not above 50%');
  await call(breaker, failing);
  assert.equal(breaker.state, 'open');
  assert.deepEqual(states, ['open']);

  const up = counting(ok);
  await assert.rejects(call(breaker, up.next), (e: unknown) => {
    assert.ok(e instanceof CircuitOpenError);
    assert.equal(e.service, 'products');
    assert.match(e.message, /circuit is open; next probe in ~\d+ ms/);
    return true;
  });
  assert.equal(up.calls(), 0);
  assert.equal(breaker.stats().rejected, 1);
});

test('half-open lets exactly one probe through; others fail fast; success closes', async (t) => {
  const { breaker, states } = make();
  t.after(() => breaker.close());
  await openIt(breaker);
  await delay(70);
  assert.equal(breaker.state, 'half-open');

  const probe = deferred<FakeRes>();
  const probeUp = counting(() => probe.promise);
  const probeCall = call(breaker, probeUp.next);
  const others = counting(ok);
  for (let i = 0; i < 5; i++) {
    await assert.rejects(call(breaker, others.next), (e) => e instanceof CircuitOpenError && /probe is in flight/.test(e.message));
  }
  assert.equal(others.calls(), 0);
  probe.resolve(res(200));
  assert.equal((await probeCall).status, 200);
  assert.equal(breaker.state, 'closed');
  assert.deepEqual(states, ['open', 'half-open', 'closed']);
  assert.equal(breaker.stats().requests, 0, 'the window starts afresh when the circuit closes');
  assert.equal((await call(breaker, ok)).status, 200);
});

test('a failed probe re-opens the circuit, and it probes again later', async (t) => {
  const { breaker, states } = make();
  t.after(() => breaker.close());
  await openIt(breaker);
  await delay(70);
  await assert.rejects(call(breaker, async () => Promise.reject(new ResetError('still down'))), ResetError);
  assert.equal(breaker.state, 'open');
  await delay(70);
  assert.equal(breaker.state, 'half-open');
  await call(breaker, ok);
  assert.deepEqual(states, ['open', 'half-open', 'open', 'half-open', 'closed']);
});

test('ignored outcomes count for nothing; an ignored probe hands the probe to the next call', async (t) => {
  const { breaker } = make({ volumeThreshold: 2 });
  t.after(() => breaker.close());
  const aborted = async (): Promise<FakeRes> => Promise.reject(new AbortedError('caller left'));
  for (let i = 0; i < 20; i++) await assert.rejects(call(breaker, aborted), AbortedError);
  assert.equal(breaker.stats().requests, 0);

  await call(breaker, failing);
  await call(breaker, failing);
  assert.equal(breaker.state, 'open');
  await delay(70);
  await assert.rejects(call(breaker, aborted), AbortedError);
  assert.equal(breaker.state, 'half-open', 'an ignored probe neither closes nor re-opens');
  const up = counting(ok);
  await call(breaker, up.next);
  assert.equal(up.calls(), 1);
  assert.equal(breaker.state, 'closed');
});

test('a call admitted before the circuit opened cannot act as the half-open probe', async (t) => {
  const { breaker } = make({ volumeThreshold: 2 });
  t.after(() => breaker.close());
  const slow = deferred<FakeRes>();
  const slowCall = call(breaker, () => slow.promise);
  await call(breaker, failing);
  await call(breaker, failing);
  assert.equal(breaker.state, 'open');
  await delay(70);
  slow.resolve(res(200));
  await slowCall;
  assert.equal(breaker.state, 'half-open', 'the stale success was not taken as the probe');
});

test('admit/report: the entry points a handler-based path uses follow the same rules', async (t) => {
  const { breaker, states } = make({ volumeThreshold: 4 });
  t.after(() => breaker.close());
  const ctx = ctxFor();
  // Closed: every call admitted; failures count, ignored ones do not.
  const tokens = [breaker.admit(), breaker.admit(), breaker.admit(), breaker.admit(), breaker.admit()];
  assert.ok(tokens.every((tk) => tk >= 0));
  breaker.report(tokens[0] as number, 'ignore');
  breaker.report(tokens[1] as number, 'success');
  breaker.report(tokens[2] as number, 'failure');
  breaker.report(tokens[3] as number, 'failure');
  assert.equal(breaker.state, 'closed', '3 counted calls are below volumeThreshold 4');
  breaker.report(tokens[4] as number, 'failure');
  assert.equal(breaker.state, 'open', '3 failures of 4 is above 50%');
  assert.equal(breaker.admit(), REFUSED);
  assert.match(breaker.refusal(ctx).message, /circuit is open; next probe in ~\d+ ms/);
  assert.equal(breaker.stats().rejected, 1);

  await delay(70);
  const probe = breaker.admit();
  assert.ok(probe >= 0);
  assert.equal(breaker.admit(), REFUSED, 'one probe at a time');
  assert.match(breaker.refusal(ctx).message, /probe is in flight/);
  breaker.report(probe, 'ignore');
  const probe2 = breaker.admit();
  assert.ok(probe2 >= 0, 'an ignored probe hands the slot on');
  breaker.report(probe, 'success');
  assert.equal(breaker.state, 'half-open', 'a token reports once: a second report of the released probe is not a second probe result');
  breaker.report(probe2, 'success');
  assert.equal(breaker.state, 'closed');
  assert.deepEqual(states, ['open', 'half-open', 'closed']);
  breaker.report(tokens[1] as number, 'failure');
  assert.equal(breaker.stats().requests, 0, 'a token from an earlier state period counts for nothing');
});

test('a throwing state listener does not fail the call that moved the circuit', async (t) => {
  const breaker = new CircuitBreaker<string, FakeRes>({ ...PARAMS, volumeThreshold: 1 }, {
    classify,
    service: 'products',
    onStateChange: () => {
      throw new Error('listener bug');
    },
  });
  t.after(() => breaker.close());
  assert.equal((await call(breaker, failing)).status, 503, 'the failed result still reaches the caller');
  assert.equal(breaker.state, 'open');
});

test('a shared BreakerTicker rotates the windows of many breakers', async (t) => {
  // A 1 s window, so the two calls land in it even on a loaded machine; then the ticker must
  // empty both breakers' windows (waited for, not timed).
  const ticker = new BreakerTicker(1000);
  t.after(() => ticker.close());
  const a = make({ windowMs: 1000 }, ticker);
  const b = make({ windowMs: 1000 }, ticker);
  t.after(() => (a.breaker.close(), b.breaker.close()));
  await call(a.breaker, failing);
  await call(b.breaker, ok);
  assert.equal(a.breaker.stats().requests + b.breaker.stats().requests, 2);
  while (a.breaker.stats().requests + b.breaker.stats().requests !== 0) await delay(50);
  assert.throws(() => make({ windowMs: 10_000 }, ticker), /does not match/);
});

test('after close() calls pass through unprotected', async () => {
  const { breaker } = make({ volumeThreshold: 1 });
  await call(breaker, failing);
  assert.equal(breaker.state, 'open');
  breaker.close();
  assert.equal((await call(breaker, ok)).status, 200);
});

test('rejects bad params at build time', () => {
  assert.throws(() => make({ errorThresholdPercent: 0 }), RangeError);
  assert.throws(() => make({ volumeThreshold: 1.5 }), RangeError);
  assert.throws(() => make({ resetTimeoutMs: 0 }), RangeError);
  assert.throws(() => make({ windowMs: 5 }), RangeError);
});
