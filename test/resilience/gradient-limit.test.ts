/**
 * The Gradient2 limit: it grows while latency holds and the caller uses it, stops growing when
 * the caller is application-limited, shrinks (at most halving per step) when latency rises, and
 * stays within its bounds; slots are counted exactly.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GradientLimit } from '../../src/resilience/gradient-limit.js';

/** Fills the limit, then completes every slot with latency `rtt`; returns the new limit. */
function round(l: GradientLimit, rtt: number): number {
  let n = 0;
  while (l.tryAcquire()) n++;
  for (let i = 0; i < n; i++) l.release(rtt);
  return l.limit;
}

describe('GradientLimit', () => {
  it('grows while latency holds and the limit is used, up to max', () => {
    const l = new GradientLimit({ initial: 10, min: 2, max: 60 });
    let prev = l.limit;
    for (let i = 0; i < 5; i++) {
      const next = round(l, 10);
      assert.ok(next >= prev, `round ${i}: ${next} >= ${prev}`);
      prev = next;
    }
    assert.ok(prev > 10, `grew from 10 to ${prev}`);
    for (let i = 0; i < 200; i++) round(l, 10);
    assert.equal(l.limit, 60);
  });

  it('does not grow while the caller uses less than half of it', () => {
    const l = new GradientLimit({ initial: 20, min: 2, max: 1000 });
    for (let i = 0; i < 100; i++) {
      assert.equal(l.tryAcquire(), true);
      l.release(10);
    }
    assert.equal(l.limit, 20);
  });

  it('shrinks when latency rises well above its long-term average, not below min', () => {
    const l = new GradientLimit({ initial: 50, min: 20, max: 1000 });
    for (let i = 0; i < 20; i++) round(l, 10);
    const before = l.limit;
    while (l.tryAcquire());
    l.release(100);
    const oneStep = l.limit;
    assert.ok(oneStep < before, `${oneStep} < ${before}`);
    assert.ok(oneStep >= Math.floor(before / 2), `at most halves per sample: ${oneStep} >= ${before}/2`);
    while (l.inflight > 0) l.release(100);
    assert.ok(l.limit < oneStep, `keeps shrinking while latency stays high: ${l.limit}`);
    // Latency far above the long-term average, sample after sample, with the limit kept full.
    for (let i = 0; i < 200; i++) {
      while (l.tryAcquire());
      l.release(1_000_000);
    }
    assert.equal(l.limit, 20, "held at min");
  });

  it('counts slots exactly and gives critical requests headroom', () => {
    const l = new GradientLimit({ initial: 3, min: 3, max: 3 });
    assert.equal(l.tryAcquire(), true);
    assert.equal(l.tryAcquire(), true);
    assert.equal(l.tryAcquire(), true);
    assert.equal(l.tryAcquire(), false);
    assert.equal(l.inflight, 3);
    assert.equal(l.tryAcquire(2), true, 'twice the limit for critical requests');
    l.release(undefined);
    l.release(undefined);
    assert.equal(l.inflight, 2);
    assert.throws(() => new GradientLimit({ initial: 1, min: 2, max: 3 }), RangeError);
  });
});
