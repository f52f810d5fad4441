/**
 * The retry budget at its edges (STYLE.md: a rule that guards money has a test that a one-line
 * change to it makes fail; `npm run mutate -- resilience` measures it). Complements
 * retry-budget.test.ts: parameter limits inclusive/exclusive, token arithmetic, slice expiry.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { RetryBudget, type RetryBudgetParams } from '../../src/resilience/retry-budget.js';

const drain = (b: RetryBudget): number => {
  let n = 0;
  while (b.tryWithdraw()) n++;
  return n;
};

describe('RetryBudget (mutation-level)', () => {
  it('accepts the edges of every parameter', () => {
    const c = new ManualClock();
    for (const p of [
      { ratio: 0, minPerSecond: 0, ttlMs: 1000 },
      { ratio: 1000, minPerSecond: 0, ttlMs: 60_000 },
      { ratio: 0.2, minPerSecond: 0, ttlMs: 10_000 },
    ]) assert.doesNotThrow(() => new RetryBudget(p, c), JSON.stringify(p));
  });

  it('refuses non-finite parameters and the first step past each edge', () => {
    const c = new ManualClock();
    const ok: RetryBudgetParams = { ratio: 0.2, minPerSecond: 1, ttlMs: 10_000 };
    for (const bad of [
      { ratio: Number.NaN },
      { ratio: Number.POSITIVE_INFINITY },
      { ratio: 1000.001 },
      { ratio: -Number.MIN_VALUE },
      { minPerSecond: Number.NaN },
      { minPerSecond: Number.POSITIVE_INFINITY },
      { minPerSecond: -0.001 },
      { ttlMs: Number.NaN },
      { ttlMs: 999 },
      { ttlMs: 60_001 },
      { ttlMs: Number.POSITIVE_INFINITY },
    ]) {
      const field = Object.keys(bad)[0] as string;
      assert.throws(
        () => new RetryBudget({ ...ok, ...bad }, c),
        (err: unknown) => err instanceof RangeError && err.message.startsWith(`retry budget ${field === 'ttlMs' ? 'ttl' : field} must be`),
        JSON.stringify(bad),
      );
    }
  });

  it('a retry costs floor(1000 / ratio) tokens: ratio 0.3 earns 3 retries from 10 requests, not 3.33', () => {
    const b = new RetryBudget({ ratio: 0.3, minPerSecond: 0, ttlMs: 10_000 }, new ManualClock());
    for (let i = 0; i < 10; i++) b.deposit();
    // 10 000 tokens / floor(1000 / 0.3) = 10 000 / 3333 = 3 retries (and 1 token left over)
    assert.deepEqual(b.stats(), { requests: 10, retries: 0, available: 3 });
    assert.equal(drain(b), 3);
    b.deposit(); // 1 + 1000 tokens: still short of 3333
    assert.equal(b.tryWithdraw(), false);
  });

  it('the reserve is floor(minPerSecond × ttl seconds × cost), with a fractional ttl', () => {
    // 1.5/s over 1.5 s at cost floor(1000/0.7) = 1428: floor(3213) tokens = 2 retries
    assert.equal(drain(new RetryBudget({ ratio: 0.7, minPerSecond: 1.5, ttlMs: 1500 }, new ManualClock())), 2);
    // ratio 0: cost 1 token each, reserve minPerSecond × seconds
    assert.equal(drain(new RetryBudget({ ratio: 0, minPerSecond: 2.5, ttlMs: 2000 }, new ManualClock())), 5);
  });

  it('with ratio 0 requests earn nothing, whatever their number', () => {
    const b = new RetryBudget({ ratio: 0, minPerSecond: 1, ttlMs: 1000 }, new ManualClock());
    for (let i = 0; i < 10_000; i++) b.deposit();
    assert.deepEqual(b.stats(), { requests: 10_000, retries: 0, available: 1 });
    assert.equal(drain(b), 1);
  });

  it('a retry is allowed when the balance equals its cost exactly, and takes exactly one', () => {
    const b = new RetryBudget({ ratio: 1, minPerSecond: 0, ttlMs: 10_000 }, new ManualClock());
    b.deposit(); // 1000 tokens, cost 1000
    assert.equal(b.stats().available, 1);
    assert.equal(b.tryWithdraw(), true);
    assert.deepEqual(b.stats(), { requests: 1, retries: 1, available: 0 });
    assert.equal(b.tryWithdraw(), false);
    assert.deepEqual(b.stats(), { requests: 1, retries: 1, available: 0 }, 'a refused retry takes nothing');
  });

  it('available never goes below 0 when deposits expire before the retries they paid for', () => {
    const clock = new ManualClock();
    const b = new RetryBudget({ ratio: 1, minPerSecond: 0, ttlMs: 10_000 }, clock);
    b.deposit(); // slice 0
    clock.advance(5_000);
    assert.equal(b.tryWithdraw(), true); // slice 5
    clock.advance(5_000); // slice 10: the deposit expired, the retry has not
    assert.deepEqual(b.stats(), { requests: 0, retries: 1, available: 0 });
    b.deposit();
    assert.equal(b.tryWithdraw(), false, 'the outstanding retry is still charged');
  });

  it('slices are ttl/10 wide and aligned to the clock: expiry happens exactly at the boundary', () => {
    const clock = new ManualClock(0);
    const b = new RetryBudget({ ratio: 1, minPerSecond: 0, ttlMs: 10_000 }, clock);
    clock.advance(999); // still slice 0
    b.deposit();
    clock.advance(9_000); // 9 999: slice 9, the deposit is still in the window
    assert.equal(b.stats().requests, 1);
    clock.advance(1); // 10 000: slice 10 replaces slice 0
    assert.equal(b.stats().requests, 0);
  });

  it('a jump of more than a whole window clears everything, and a clock going backwards changes nothing', () => {
    const clock = new ManualClock(50_000);
    const b = new RetryBudget({ ratio: 1, minPerSecond: 0, ttlMs: 10_000 }, clock);
    for (let i = 0; i < 10; i++) {
      b.deposit();
      clock.advance(1_000);
    }
    assert.equal(b.stats().requests, 9, 'ten slices: the first has just left');
    clock.advance(-5_000); // the window does not move back...
    assert.equal(b.stats().requests, 9);
    b.deposit(); // ...so this counts in the newest slice, not an old one
    clock.advance(5_000); // back where it was: nothing expired on the way
    assert.equal(b.stats().requests, 10);
    clock.advance(1_000); // only the oldest slice (one request) leaves
    assert.equal(b.stats().requests, 9);
    clock.advance(25_000);
    assert.deepEqual(b.stats(), { requests: 0, retries: 0, available: 0 });
  });

  it('slices do not leak into each other: a partial expiry keeps the newer slices intact', () => {
    const clock = new ManualClock(0);
    const b = new RetryBudget({ ratio: 1, minPerSecond: 0, ttlMs: 10_000 }, clock);
    for (let s = 0; s < 10; s++) {
      for (let i = 0; i <= s; i++) b.deposit(); // slice s holds s + 1 requests
      clock.advance(1_000);
    }
    // now slice 10: slice 0 (1 request) expired
    assert.equal(b.stats().requests, 55 - 1);
    clock.advance(3_000); // slice 13: slices 1..3 (2 + 3 + 4) expired too
    assert.equal(b.stats().requests, 55 - 10);
  });
});
