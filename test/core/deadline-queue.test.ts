/**
 * DeadlineQueue: one timer for every deadline of one duration. Judged by which entries fire and
 * in what order, never by how long anything took.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../../src/core/clock.js';
import { DeadlineQueue } from '../../src/core/deadline-queue.js';
import type { Deadline } from '../../src/core/deadline-queue.js';

function entry(name: string, fired: string[]): Deadline {
  return { deadlineAt: 0, deadlinePrev: undefined, deadlineNext: undefined, deadlineQueue: undefined, onDeadline: () => fired.push(name) };
}

test('entries fire once each, in the order they were added', async () => {
  const q = new DeadlineQueue(20, systemClock);
  const fired: string[] = [];
  for (const n of ['a', 'b', 'c']) {
    q.add(entry(n, fired), systemClock.now());
    await sleep(2);
  }
  while (fired.length < 3) await sleep(10);
  await sleep(40);
  assert.deepEqual(fired, ['a', 'b', 'c']);
  assert.equal(q.size, 0);
});

test('a cancelled entry is unlinked at once and never fires; the others still do', async () => {
  const q = new DeadlineQueue(15, systemClock);
  const fired: string[] = [];
  const es = ['head', 'middle', 'tail'].map((n) => entry(n, fired));
  for (const e of es) q.add(e, systemClock.now());
  q.cancel(es[0] as Deadline);
  q.cancel(es[1] as Deadline);
  assert.equal(q.size, 1);
  assert.equal(es[0]?.deadlineQueue, undefined);
  assert.equal(es[1]?.deadlineNext, undefined);
  while (fired.length < 1) await sleep(10);
  await sleep(30);
  assert.deepEqual(fired, ['tail']);
});

test('an entry added again moves to the tail; cancelling twice or from another queue is a no-op', async () => {
  const q = new DeadlineQueue(15, systemClock);
  const other = new DeadlineQueue(15, systemClock);
  const fired: string[] = [];
  const a = entry('a', fired);
  const b = entry('b', fired);
  q.add(a, systemClock.now());
  q.add(b, systemClock.now());
  q.add(a, systemClock.now() + 1);
  other.cancel(a);
  assert.equal(q.size, 2);
  q.cancel(b);
  q.cancel(b);
  assert.equal(q.size, 1);
  while (fired.length < 1) await sleep(10);
  await sleep(30);
  assert.deepEqual(fired, ['a']);
});

test('a queue emptied and used again still fires, and a throwing entry does not stop the rest', async () => {
  const q = new DeadlineQueue(10, systemClock);
  const fired: string[] = [];
  const first = entry('first', fired);
  q.add(first, systemClock.now());
  q.cancel(first);
  const bad: Deadline = { ...entry('bad', fired), onDeadline: () => { throw new Error('boom'); } };
  q.add(bad, systemClock.now());
  q.add(entry('after', fired), systemClock.now());
  while (fired.length < 1) await sleep(10);
  assert.deepEqual(fired, ['after']);
});

test('refuses a duration that is not a positive number of ms', () => {
  assert.throws(() => new DeadlineQueue(0, systemClock), RangeError);
  assert.throws(() => new DeadlineQueue(Number.NaN, systemClock), RangeError);
});
