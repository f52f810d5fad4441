import { CallController } from '../../src/core/call-signal.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock, systemClock } from '../../src/core/clock.js';
import type { CallContext } from '../../src/core/context.js';
import { AbortedError, TimeoutError, isTrellisError } from '../../src/core/errors.js';
import type { Service } from '../../src/core/service.js';
import { deadlineOnlyFilter, timeoutFilter } from '../../src/resilience/timeout-filter.js';
import { ctxFor, deferred, delay, discard, never, res, type FakeRes } from './fakes.js';

function recording(impl: (ctx: CallContext) => Promise<FakeRes>) {
  const seen: CallContext[] = [];
  const next: Service<string, FakeRes> = (_req, ctx) => {
    seen.push(ctx);
    return impl(ctx);
  };
  return { next, seen };
}

test('fires within its bound even if next never settles, and aborts the call signal', async () => {
  const filter = timeoutFilter<string, FakeRes>({ timeoutMs: 50 }, { clock: systemClock });
  const up = recording(() => never());
  const t0 = performance.now();
  let caught: unknown;
  await filter('GET /', ctxFor(), up.next).catch((e: unknown) => (caught = e));
  const took = performance.now() - t0;
  assert.ok(took >= 45 && took < 5000, `took ${took} ms`);
  assert.ok(caught instanceof TimeoutError);
  assert.match(caught.message, /timed out after 50 ms \(overall timeout\)/);
  assert.match(caught.message, /service products/);
  const signal = up.seen[0]!.signal;
  assert.ok(signal?.aborted);
  assert.equal(signal.reason, caught);
});

test('sets ctx.deadline for the layers below', async () => {
  const clock = new ManualClock(500);
  const filter = timeoutFilter<string, FakeRes>({ timeoutMs: 2000 }, { clock });
  const up = recording(async () => res(200));
  await filter('GET /', ctxFor(), up.next);
  assert.equal(up.seen[0]!.deadline, 2500);
});

test('a propagated deadline sooner than the timeout wins', async () => {
  const filter = timeoutFilter<string, FakeRes>({ timeoutMs: 1000 }, { clock: systemClock });
  const ctx = ctxFor();
  ctx.deadline = systemClock.now() + 40;
  // The message says which deadline ended it.
  await assert.rejects(filter('GET /', ctx, () => never()), (e: unknown) => {
    assert.ok(e instanceof TimeoutError);
    assert.match(e.message, /propagated deadline of 40 ms exceeded/);
    return true;
  });
});

test('a propagated deadline later than the timeout does not extend it', async () => {
  const clock = new ManualClock(0);
  const filter = timeoutFilter<string, FakeRes>({ timeoutMs: 100 }, { clock });
  const ctx = ctxFor();
  ctx.deadline = 5000;
  const up = recording(async () => res(200));
  await filter('GET /', ctx, up.next);
  assert.equal(up.seen[0]!.deadline, 100);
});

test('a deadline already past fails at once without calling next', async () => {
  const clock = new ManualClock(1000);
  const filter = timeoutFilter<string, FakeRes>({ timeoutMs: 100 }, { clock });
  const ctx = ctxFor();
  ctx.deadline = 999;
  const up = recording(async () => res(200));
  await assert.rejects(filter('GET /', ctx, up.next), TimeoutError);
  assert.equal(up.seen.length, 0);
});

test('a caller abort rejects with AbortedError (cause = the reason) and cancels below', async () => {
  const filter = timeoutFilter<string, FakeRes>({ timeoutMs: 1000 }, { clock: systemClock });
  const caller = new CallController();
  const ctx = ctxFor();
  ctx.signal = caller.signal;
  const up = recording(() => never());
  const p = filter('GET /', ctx, up.next);
  const reason = new Error('user navigated away');
  setTimeout(() => caller.abort(reason), 10);
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AbortedError);
    assert.equal(e.cause, reason);
    return true;
  });
  assert.ok(up.seen[0]!.signal?.aborted);
  assert.notEqual(up.seen[0]!.signal, caller.signal);
});

test('an already-aborted caller signal fails at once', async () => {
  const filter = timeoutFilter<string, FakeRes>({ timeoutMs: 1000 }, { clock: systemClock });
  const ctx = ctxFor();
  { const c = new CallController(); c.abort(new Error("gone")); ctx.signal = c.signal; }
  let called = false;
  await assert.rejects(filter('GET /', ctx, async () => ((called = true), res(200))), AbortedError);
  assert.equal(called, false);
});

test('errors from next pass through unchanged; success clears the timer', async () => {
  const filter = timeoutFilter<string, FakeRes>({ timeoutMs: 30 }, { clock: systemClock });
  const boom = new Error('boom');
  await assert.rejects(filter('GET /', ctxFor(), async () => Promise.reject(boom)), (e) => e === boom);
  const up = recording(async () => res(200));
  assert.equal((await filter('GET /', ctxFor(), up.next)).status, 200);
  await delay(50);
  assert.equal(up.seen[0]!.signal?.aborted, false, 'no abort after a settled request');
});

test('with whenDone the deadline also bounds the body, until done() is called', async () => {
  let done: (() => void) | undefined;
  const filter = timeoutFilter<string, FakeRes>(
    { timeoutMs: 40 },
    { clock: systemClock, whenDone: (_res, d) => void (done = d) },
  );
  // Body never finishes: the signal aborts at the deadline, after the response was returned.
  const slow = recording(async () => res(200));
  assert.equal((await filter('GET /', ctxFor(), slow.next)).status, 200);
  assert.equal(slow.seen[0]!.signal?.aborted, false);
  await delay(70);
  assert.ok(slow.seen[0]!.signal?.aborted);
  assert.ok(isTrellisError(slow.seen[0]!.signal?.reason, 'TRELLIS_TIMEOUT'));

  // Body finishes in time: done() disarms the timer.
  const fast = recording(async () => res(200));
  await filter('GET /', ctxFor(), fast.next);
  done?.();
  await delay(70);
  assert.equal(fast.seen[0]!.signal?.aborted, false);
});

test('a result arriving after the deadline is discarded', async () => {
  const filter = timeoutFilter<string, FakeRes>({ timeoutMs: 20 }, { clock: systemClock, discard });
  const late = deferred<FakeRes>();
  await assert.rejects(filter('GET /', ctxFor(), () => late.promise), TimeoutError);
  const r = res(200);
  late.resolve(r);
  await delay(1);
  assert.equal(r.discarded, true);
});

test('deadlineOnlyFilter applies only a propagated deadline, else passes the call through', async () => {
  const filter = deadlineOnlyFilter<string, FakeRes>({ clock: systemClock });
  const plain = ctxFor();
  const up = recording(async () => res(200));
  await filter('GET /', plain, up.next);
  assert.equal(up.seen[0], plain);
  assert.equal(plain.signal, undefined);
  assert.equal(plain.deadline, undefined);

  const ctx = ctxFor();
  ctx.deadline = systemClock.now() + 30;
  await assert.rejects(filter('GET /', ctx, () => never()), /propagated deadline/);
});

test('rejects a negative timeout at build time', () => {
  assert.throws(() => timeoutFilter({ timeoutMs: -1 }, { clock: systemClock }), RangeError);
});

test('a deadline beyond what a timer can wait (2^31 ms) does not overflow into an immediate timeout', async () => {
  const filter = timeoutFilter<string, FakeRes>({ timeoutMs: 0 }, { clock: systemClock });
  const ctx = ctxFor();
  ctx.deadline = systemClock.now() + 2 ** 32; // an overflowing setTimeout fires after 1 ms
  const result = await filter('GET /', ctx, async () => {
    await delay(30);
    return res(200);
  });
  assert.equal(result.status, 200);
});
