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
test('addAt: deadlines of any time fire in deadline order; a cancelled one is unlinked at once', async () => {
  const q = DeadlineQueue.anyDeadlines(systemClock);
  const fired: string[] = [];
  const now = systemClock.now();
  const at = (name: string, ms: number): Deadline => {
    const e = entry(name, fired);
    q.addAt(e, now + ms, now);
    return e;
  };
  at('c', 30);
  const b = at('b', 20);
  at('a', 10);
  at('d', 40);
  const x = at('x', 25);
  q.cancel(x);
  assert.equal(q.size, 4, 'the cancelled entry is gone at once');
  q.cancel(b);
  q.cancel(b);
  while (fired.length < 3) await sleep(10);
  await sleep(30);
  assert.deepEqual(fired, ['a', 'c', 'd']);
  assert.equal(q.size, 0);
});

test('add after an addAt entry with a later deadline keeps deadline order', async () => {
  const q = new DeadlineQueue(10, systemClock);
  const fired: string[] = [];
  const now = systemClock.now();
  q.addAt(entry('late', fired), now + 60, now);
  q.add(entry('fixed', fired), now);
  while (fired.length < 2) await sleep(10);
  assert.deepEqual(fired, ['fixed', 'late']);
});

test('a scheduler over the queue (timeout-filter.ts deadlines) fires and cancels', async () => {
  const s = DeadlineQueue.anyDeadlines(systemClock).scheduler();
  const fired: string[] = [];
  const now = systemClock.now();
  const e = s.add(now + 10, () => fired.push('cancelled'));
  s.add(now + 15, () => fired.push('kept'));
  s.cancel(e);
  while (fired.length < 1) await sleep(10);
  await sleep(20);
  assert.deepEqual(fired, ['kept']);
});

test('an emptied queue does not hold the process open', () => {
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const q = DeadlineQueue.anyDeadlines(systemClock);
  const before = timers();
  const e = entry('never', []);
  q.addAt(e, systemClock.now() + 60_000, systemClock.now());
  assert.equal(timers(), before + 1);
  q.cancel(e);
  assert.equal(timers(), before, 'the timer no longer counts once the queue is empty');
});
