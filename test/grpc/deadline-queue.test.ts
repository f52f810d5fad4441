/**
 * The shared deadline timer of the gRPC stacks: entries fire in deadline order whatever order
 * they were added in, a cancelled entry never fires and is unlinked at once, and an emptied
 * queue holds no timer (the process may exit).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { DeadlineQueue } from '../../src/grpc/deadline-queue.js';

const clock = { now: () => performance.now(), wall: () => Date.now() };

describe('DeadlineQueue', () => {
  it('fires in deadline order, skips cancelled entries, unlinks them at once', async () => {
    const q = new DeadlineQueue(clock);
    const fired: string[] = [];
    const now = clock.now();
    q.add(now + 30, () => fired.push('c'));
    const b = q.add(now + 20, () => fired.push('b'));
    q.add(now + 10, () => fired.push('a'));
    q.add(now + 40, () => fired.push('d'));
    const x = q.add(now + 25, () => fired.push('x'));
    q.cancel(x);
    assert.equal(q.size, 4, 'the cancelled entry is gone at once');
    q.cancel(b);
    q.cancel(b);
    await new Promise((r) => setTimeout(r, 80));
    assert.deepEqual(fired, ['a', 'c', 'd']);
    assert.equal(q.size, 0);
  });

  it('an emptied queue clears its timer, so nothing keeps the process alive', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const q = new DeadlineQueue(clock);
    const before = timers();
    const e = q.add(clock.now() + 60_000, () => assert.fail('cancelled entries never fire'));
    assert.equal(timers(), before + 1);
    q.cancel(e);
    assert.equal(timers(), before, 'no timer left behind');
  });
});
