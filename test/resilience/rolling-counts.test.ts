import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RollingCounts } from '../../src/resilience/rolling-counts.js';

test('a count stays in the window for exactly `buckets` rotations', () => {
  const w = new RollingCounts(10);
  w.success();
  w.failure();
  w.failure();
  for (let i = 0; i < 9; i++) {
    w.rotate();
    assert.deepEqual([w.successes, w.failures, w.total], [1, 2, 3], `after ${i + 1} rotations`);
  }
  w.success();
  w.rotate();
  assert.deepEqual([w.successes, w.failures], [1, 0], 'the oldest bucket left; the one recorded later stays');
  for (let i = 0; i < 8; i++) w.rotate();
  assert.equal(w.total, 1, 'nine rotations after it was recorded');
  w.rotate();
  assert.equal(w.total, 0, 'gone at the tenth');
});

test('clear() empties every bucket', () => {
  const w = new RollingCounts(3);
  w.failure();
  w.rotate();
  w.success();
  w.clear();
  assert.equal(w.total, 0);
  for (let i = 0; i < 3; i++) w.rotate();
  assert.deepEqual([w.successes, w.failures], [0, 0], 'no stale bucket comes back negative');
});
