import assert from 'node:assert/strict';
import { test } from 'node:test';
import Opossum from 'opossum';
import { CircuitOpenError, AbortedError, ResetError } from '../../src/core/errors.js';
import type { Service } from '../../src/core/service.js';
import { BreakerTicker, CircuitBreaker, type BreakerState, type CircuitBreakerParams } from '../../src/resilience/circuit-breaker.js';
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

test('opossum 9 itself: PENDING_CLOSE admits one probe, and an errorFilter-ed probe closes the circuit', async () => {
  const gate = deferred<void>();
  const raw = new Opossum((mode: string) => (mode === 'fail' ? Promise.reject(new Error('x')) : mode === 'wait' ? gate.promise : Promise.resolve()), {
    timeout: false, resetTimeout: 30, volumeThreshold: 1, enableSnapshots: false,
    errorFilter: (e: Error) => e.message === 'ignored',
  });
  await raw.fire('fail').catch(() => {});
  assert.ok(raw.opened);
  await delay(50);
  assert.ok(raw.halfOpen && raw.pendingClose);
  const probe = raw.fire('wait');
  await assert.rejects(raw.fire('ok'), (e: Error & { code?: string }) => e.code === 'EOPENBREAKER');
  gate.resolve();
  await probe;
  assert.ok(raw.closed);

  // What an "ignored" outcome routed through errorFilter would do: close a half-open circuit.
  const ignoring = new Opossum(() => Promise.reject(new Error('ignored')), {
    timeout: false, resetTimeout: 30, enableSnapshots: false, errorFilter: (e: Error) => e.message === 'ignored',
  });
  ignoring.open();
  await delay(50);
  assert.ok(ignoring.halfOpen);
  await ignoring.fire().catch(() => {});
  assert.ok(ignoring.closed, 'opossum counts a filtered error as success');
  raw.shutdown();
  ignoring.shutdown();
});

test('a shared BreakerTicker rotates the windows of many breakers', async (t) => {
  const ticker = new BreakerTicker(100);
  t.after(() => ticker.close());
  const a = make({ windowMs: 100 }, ticker);
  const b = make({ windowMs: 100 }, ticker);
  t.after(() => (a.breaker.close(), b.breaker.close()));
  await call(a.breaker, failing);
  await call(b.breaker, ok);
  assert.equal(a.breaker.stats().requests + b.breaker.stats().requests, 2);
  await delay(150);
  assert.equal(a.breaker.stats().requests + b.breaker.stats().requests, 0);
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
