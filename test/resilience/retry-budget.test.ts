import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { RetryBudget } from '../../src/resilience/retry-budget.js';

const drain = (b: RetryBudget): number => {
  let n = 0;
  while (b.tryWithdraw()) n++;
  return n;
};

test('ratio 0.2, min 10/s over 10 s: 1000 requests allow 200 + 100 retries, not more', () => {
  const clock = new ManualClock(0);
  const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 }, clock);
  for (let i = 0; i < 1000; i++) {
    budget.deposit();
    clock.advance(5); // 1000 requests spread over 5 s, all inside the window
  }
  assert.deepEqual(budget.stats(), { requests: 1000, retries: 0, available: 300 });
  assert.equal(drain(budget), 300);
  assert.deepEqual(budget.stats(), { requests: 1000, retries: 300, available: 0 });
});

test('interleaved: each request earns ratio of a retry once the reserve is spent', () => {
  const clock = new ManualClock(0);
  const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 }, clock);
  let retries = 0;
  for (let i = 0; i < 1000; i++) {
    budget.deposit();
    if (budget.tryWithdraw()) retries++;
    if (budget.tryWithdraw()) retries++;
  }
  assert.equal(retries, 300);
});

test('with no requests only the reserve (minPerSecond · ttl) is available', () => {
  const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 }, new ManualClock(0));
  assert.equal(drain(budget), 100);
});

test('deposits and withdrawals expire after ttl; the reserve is an offset, not a refill', () => {
  const clock = new ManualClock(0);
  const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 1, ttlMs: 1000 }, clock);
  assert.equal(drain(budget), 1); // reserve: 1/s × 1 s
  clock.advance(500);
  assert.equal(drain(budget), 0, 'the spent reserve does not come back within the window');
  clock.advance(600); // the withdrawal has left the window
  assert.equal(drain(budget), 1);
  for (let i = 0; i < 10; i++) budget.deposit();
  assert.equal(budget.stats().available, 5);
  clock.advance(1000);
  assert.deepEqual(budget.stats(), { requests: 0, retries: 0, available: 1 });
});

test('a window slides slice by slice (10 slices of ttl/10)', () => {
  const clock = new ManualClock(0);
  const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, ttlMs: 10_000 }, clock);
  budget.deposit(); // slice 0
  clock.advance(5000);
  budget.deposit(); // slice 5
  assert.equal(budget.stats().requests, 2);
  clock.advance(5000); // slice 10: slice 0 expired
  assert.equal(budget.stats().requests, 1);
  clock.advance(5000); // slice 15: slice 5 expired
  assert.equal(budget.stats().requests, 0);
});

test('ratio 0 with a minimum: only the reserve; both 0: never', () => {
  assert.equal(drain(new RetryBudget({ ratio: 0, minPerSecond: 3, ttlMs: 2000 }, new ManualClock())), 6);
  const empty = new RetryBudget({ ratio: 0, minPerSecond: 0, ttlMs: 10_000 }, new ManualClock());
  for (let i = 0; i < 100; i++) empty.deposit();
  assert.equal(empty.tryWithdraw(), false);
});

test('ratios above 1 allow several retries per request (Finagle allows up to 1000)', () => {
  const budget = new RetryBudget({ ratio: 2, minPerSecond: 0, ttlMs: 10_000 }, new ManualClock());
  for (let i = 0; i < 10; i++) budget.deposit();
  assert.equal(drain(budget), 20);
});

test('rejects params outside what Finagle accepts', () => {
  const c = new ManualClock();
  assert.throws(() => new RetryBudget({ ratio: -0.1, minPerSecond: 1, ttlMs: 10_000 }, c), RangeError);
  assert.throws(() => new RetryBudget({ ratio: 1001, minPerSecond: 1, ttlMs: 10_000 }, c), RangeError);
  assert.throws(() => new RetryBudget({ ratio: 0.2, minPerSecond: -1, ttlMs: 10_000 }, c), RangeError);
  assert.throws(() => new RetryBudget({ ratio: 0.2, minPerSecond: 1, ttlMs: 500 }, c), RangeError);
  assert.throws(() => new RetryBudget({ ratio: 0.2, minPerSecond: 1, ttlMs: 61_000 }, c), RangeError);
});
