import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CallController } from '../../src/core/call-signal.js';
import { seededRandom } from '../../src/core/clock.js';
import { CallContext } from '../../src/core/context.js';
import { AbortedError, TimeoutError } from '../../src/core/errors.js';
import type { FaultSpec } from '../../src/config/types.js';
import { faultFilter, type FaultKind } from '../../src/traffic/fault-filter.js';
import { syntheticHttpResponse } from '../../src/traffic/synthetic-response.js';

interface Res {
  status: number;
  injected: boolean;
}

const ctx = (): CallContext => new CallContext('products', true);
const abortOnly = (status: number, percent: number): FaultSpec => ({ delay: undefined, abort: { status, percent } });
const delayOnly = (durationMs: number, percent: number): FaultSpec => ({ delay: { durationMs, percent }, abort: undefined });

function setup(spec: FaultSpec, seed = 1) {
  let calls = 0;
  const faults: FaultKind[] = [];
  const filter = faultFilter<string, Res>(spec, {
    random: seededRandom(seed),
    abortResult: (status) => ({ status, injected: true }),
    onFault: (kind) => faults.push(kind),
  });
  const next = async (): Promise<Res> => {
    calls++;
    return { status: 200, injected: false };
  };
  return { filter, next, faults, calls: () => calls };
}

for (const percent of [1, 10, 50, 0.5]) {
  test(`aborts about ${percent}% of 20k requests, and never calls next for them`, async () => {
    const s = setup(abortOnly(503, percent), 11);
    let aborted = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const res = await s.filter('req', ctx(), s.next);
      if (res.injected) {
        assert.equal(res.status, 503);
        aborted++;
      }
    }
    assert.equal(s.calls(), n - aborted, 'aborted requests never reach next');
    assert.equal(s.faults.length, aborted);
    const expected = (n * percent) / 100;
    assert.ok(Math.abs(aborted - expected) < Math.max(4 * Math.sqrt(expected), 10), `aborted ${aborted}, expected ~${expected}`);
  });
}

test('0% never aborts and 100% always does, without drawing', async () => {
  const none = faultFilter<string, Res>(abortOnly(503, 0), { random: () => assert.fail('no draw'), abortResult: (s) => ({ status: s, injected: true }) });
  const all = faultFilter<string, Res>(abortOnly(418, 100), { random: () => assert.fail('no draw'), abortResult: (s) => ({ status: s, injected: true }) });
  let reached = 0;
  const next = async (): Promise<Res> => {
    reached++;
    return { status: 200, injected: false };
  };
  for (let i = 0; i < 100; i++) {
    assert.equal((await none('r', ctx(), next)).injected, false);
    assert.equal((await all('r', ctx(), next)).status, 418);
  }
  assert.equal(reached, 100);
});

test('a delay precedes the request', async () => {
  const s = setup(delayOnly(40, 100));
  const t0 = performance.now();
  let reachedAt = 0;
  await s.filter('req', ctx(), async () => {
    reachedAt = performance.now() - t0;
    return { status: 200, injected: false };
  });
  assert.ok(reachedAt >= 35, `next ran after ${reachedAt} ms`);
  assert.deepEqual(s.faults, ['delay']);
});

test('a delay is cancelled by ctx.signal: rejects at once, next never runs', async () => {
  const s = setup(delayOnly(10_000, 100));
  const c = ctx();
  const controller = new CallController();
  c.signal = controller.signal;
  const t0 = performance.now();
  const pending = s.filter('req', c, s.next);
  setTimeout(() => controller.abort(new Error('caller gone')), 10);
  await assert.rejects(pending, (e: unknown) => {
    assert.ok(e instanceof AbortedError);
    assert.equal((e.cause as Error).message, 'caller gone');
    return true;
  });
  assert.ok(performance.now() - t0 < 1000);
  assert.equal(s.calls(), 0);
});

test('a TrellisError reason (an outer deadline) passes through as is; an aborted signal fails at once', async () => {
  const s = setup(delayOnly(10_000, 100));
  const c = ctx();
  const controller = new CallController();
  const reason = new TimeoutError('deadline');
  controller.abort(reason);
  c.signal = controller.signal;
  await assert.rejects(s.filter('req', c, s.next), (e: unknown) => e === reason);
});

test('delay then abort: both apply, in that order, and next is not called', async () => {
  const s = setup({ delay: { durationMs: 5, percent: 100 }, abort: { status: 500, percent: 100 } });
  const res = await s.filter('req', ctx(), s.next);
  assert.equal(res.status, 500);
  assert.deepEqual(s.faults, ['delay', 'abort']);
  assert.equal(s.calls(), 0);
});

test('syntheticHttpResponse: an undici-shaped ResponseData whose body reads once', async () => {
  const res = syntheticHttpResponse(503);
  assert.equal(res.statusCode, 503);
  assert.equal(res.statusText, 'Service Unavailable');
  assert.equal(res.headers['x-trellis-fault'], 'abort');
  assert.equal(res.headers['content-length'], String('fault filter abort'.length));
  assert.deepEqual(res.trailers, {});
  assert.equal(res.opaque, null);
  assert.equal(res.body.bodyUsed, false);
  assert.equal(await res.body.text(), 'fault filter abort');
  assert.equal(res.body.bodyUsed, true);
  await assert.rejects(res.body.text(), TypeError);

  const json = syntheticHttpResponse(429, '{"error":"slow down"}', { 'content-type': 'application/json' });
  assert.deepEqual(await json.body.json(), { error: 'slow down' });
  assert.equal(new TextDecoder().decode(await syntheticHttpResponse(500, 'abc').body.arrayBuffer()), 'abc');
  assert.deepEqual([...(await syntheticHttpResponse(500, 'ab').body.bytes())], [97, 98]);
  assert.equal(await (await syntheticHttpResponse(500, 'xyz').body.blob()).text(), 'xyz');
});

test('syntheticHttpResponse: the body streams, closes and dumps like undici\'s', async () => {
  const streamed = syntheticHttpResponse(503, 'hello');
  const chunks: Buffer[] = [];
  for await (const chunk of streamed.body) chunks.push(chunk as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), 'hello');

  const dumped = syntheticHttpResponse(503);
  let closed = false;
  dumped.body.once('close', () => (closed = true));
  await dumped.body.dump();
  assert.ok(closed);
  assert.equal(dumped.body.bodyUsed, true);
  await dumped.body.dump(); // idempotent
});
