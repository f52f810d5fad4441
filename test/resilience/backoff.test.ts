import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../src/core/clock.js';
import { exponentialBackoff } from '../../src/resilience/backoff.js';

test('full jitter stays within [0, min(max, base·2^(n-1))]', () => {
  const backoff = exponentialBackoff({ baseMs: 25, maxMs: 250 }, seededRandom(7));
  for (let retry = 1; retry <= 12; retry++) {
    const cap = Math.min(250, 25 * 2 ** (retry - 1));
    let seenHigh = false;
    for (let i = 0; i < 2000; i++) {
      const d = backoff(retry);
      assert.ok(d >= 0 && d <= cap, `retry ${retry}: ${d} outside [0, ${cap}]`);
      if (d > cap * 0.9) seenHigh = true;
    }
    assert.ok(seenHigh, `retry ${retry}: jitter should reach the top of its range`);
  }
});

test('extremes: random 0 gives 0, random→1 approaches the cap, huge retry numbers saturate', () => {
  assert.equal(exponentialBackoff({ baseMs: 10, maxMs: 100 }, () => 0)(3), 0);
  const top = exponentialBackoff({ baseMs: 10, maxMs: 100 }, () => 0.999999);
  assert.ok(Math.abs(top(1) - 10) < 1e-3);
  assert.ok(Math.abs(top(3) - 40) < 1e-3);
  assert.ok(Math.abs(top(5000) - 100) < 1e-3);
  assert.ok(Number.isFinite(top(Number.MAX_SAFE_INTEGER)));
});

test('rejects bad params at build time', () => {
  assert.throws(() => exponentialBackoff({ baseMs: -1, maxMs: 10 }, Math.random), RangeError);
  assert.throws(() => exponentialBackoff({ baseMs: 1, maxMs: Number.NaN }, Math.random), RangeError);
});
