/**
 * Outlier ejection timing and caps at their boundaries (STYLE.md: a one-line change to the rule
 * makes a test fail; `npm run mutate -- lb` measures it). Complements outlier-detector.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { OutlierDetector, unrefTimer, type OutlierDetectorParams } from '../../src/lb/outlier-detector.js';
import { ManualTimers } from './lb-helpers.js';

function setup(params: Partial<OutlierDetectorParams>, ids: readonly string[]) {
  const clock = new ManualClock();
  const timers = new ManualTimers(clock);
  const ejections: { id: string; untilMs: number; count: number }[] = [];
  const returns: string[] = [];
  let changes = 0;
  const detector = new OutlierDetector(
    { consecutiveFailures: 1, ejectionTimeMs: 1_000, maxEjectionTimeMs: 10_000, maxEjectedPercent: 100, ...params },
    {
      clock,
      onChange: () => changes++,
      onEject: (id, untilMs, count) => ejections.push({ id, untilMs, count }),
      onReturn: (id) => returns.push(id),
      setTimer: timers.setTimer,
    },
  );
  detector.setEndpoints(ids);
  return { clock, timers, detector, ejections, returns, changes: () => changes };
}

describe('OutlierDetector (mutation-level)', () => {
  it('ejects on exactly the Nth consecutive failure, not before', () => {
    const t = setup({ consecutiveFailures: 2 }, ['a', 'b']);
    t.detector.failure('a');
    assert.equal(t.detector.isEjected('a'), false);
    t.detector.failure('a');
    assert.equal(t.detector.isEjected('a'), true);
  });

  it('a success resets only its own endpoint, and unknown ids are ignored', () => {
    const t = setup({ consecutiveFailures: 2 }, ['a', 'b']);
    t.detector.failure('a');
    t.detector.failure('b');
    t.detector.success('b');
    t.detector.success('nobody');
    t.detector.failure('a');
    t.detector.failure('b');
    assert.deepEqual(t.detector.ejectedIds(), ['a']);
  });

  it('the ejection time is ejectionTime × count until the cap, and the timer is set for exactly that', () => {
    const t = setup({ ejectionTimeMs: 1_000, maxEjectionTimeMs: 3_000 }, ['a', 'b']);
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) {
      const start = t.clock.now();
      t.detector.failure('a');
      const e = t.ejections.at(-1)!;
      seen.push(e.untilMs - start);
      t.timers.advance(e.untilMs - start - 1);
      assert.equal(t.detector.isEjected('a'), true, `still out 1 ms before the end of ejection ${i + 1}`);
      t.timers.advance(1);
      assert.equal(t.detector.isEjected('a'), false);
    }
    assert.deepEqual(seen, [1_000, 2_000, 3_000, 3_000]);
    assert.deepEqual(t.ejections.map((e) => e.count), [1, 2, 3, 3], 'the count stops at the cap');
    assert.deepEqual(t.returns, ['a', 'a', 'a', 'a']);
  });

  it('a cap below the base time is raised to it; a cap that is not a multiple rounds the count up', () => {
    const low = setup({ ejectionTimeMs: 1_000, maxEjectionTimeMs: 10 }, ['a', 'b']);
    low.detector.failure('a');
    assert.equal(low.ejections[0]!.untilMs, 1_000);
    low.timers.advance(1_000);
    low.detector.failure('a');
    assert.deepEqual(low.ejections.map((e) => e.count), [1, 1]);

    const odd = setup({ ejectionTimeMs: 1_000, maxEjectionTimeMs: 2_500 }, ['a', 'b']);
    for (let i = 0; i < 4; i++) {
      odd.detector.failure('a');
      odd.timers.advance(odd.ejections.at(-1)!.untilMs - odd.clock.now());
    }
    assert.deepEqual(odd.ejections.map((e) => e.count), [1, 2, 3, 3]);
  });

  it('decay counts whole healthy periods only', () => {
    const t = setup({ ejectionTimeMs: 1_000, maxEjectionTimeMs: 100_000 }, ['a', 'b']);
    t.detector.failure('a'); // count 1, out for 1 s
    t.timers.advance(1_000);
    t.detector.failure('a'); // count 2, out for 2 s
    t.timers.advance(2_000);
    t.timers.advance(999); // not a whole period healthy: no decay
    t.detector.failure('a');
    assert.equal(t.ejections.at(-1)!.count, 3);
    t.timers.advance(3_000);
    t.timers.advance(1_000); // exactly one period: 3 → 2, this ejection makes 3
    t.detector.failure('a');
    assert.equal(t.ejections.at(-1)!.count, 3);
    t.timers.advance(3_000);
    t.timers.advance(2_000); // two periods: 3 → 1, this one makes 2
    t.detector.failure('a');
    assert.equal(t.ejections.at(-1)!.count, 2);
    assert.equal(t.ejections.at(-1)!.untilMs - t.clock.now(), 2_000);
  });

  it('onEject gets the end time on the clock, not the duration', () => {
    const t = setup({}, ['a', 'b']);
    t.clock.advance(5_000);
    t.detector.failure('a');
    assert.deepEqual(t.ejections, [{ id: 'a', untilMs: 6_000, count: 1 }]);
  });

  it('the cap is floor(size × percent / 100), at least one for 2+ endpoints', () => {
    const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    const ejectAll = (percent: number, set: readonly string[]): number => {
      const t = setup({ maxEjectedPercent: percent }, set);
      for (const id of set) t.detector.failure(id);
      return t.detector.ejectedIds().length;
    };
    assert.equal(ejectAll(29, ids), 2);
    assert.equal(ejectAll(30, ids), 3);
    assert.equal(ejectAll(31, ids), 3);
    assert.equal(ejectAll(100, ids), 10);
    assert.equal(ejectAll(1, ids), 1);
    assert.equal(ejectAll(50, ['a', 'b']), 1);
    assert.equal(ejectAll(99, ['a', 'b']), 1);
    assert.equal(ejectAll(100, ['a', 'b']), 2);
    assert.equal(ejectAll(0, ['a', 'b']), 0);
    assert.equal(ejectAll(10, ['a', 'b']), 1, 'two endpoints, 10 %: still one (the at-least-one rule starts at 2)');
    assert.equal(ejectAll(10, ['a', 'b', 'c']), 1);
  });

  it('a removed ejected endpoint frees its place under the cap', () => {
    const t = setup({ maxEjectedPercent: 50 }, ['a', 'b', 'c', 'd']);
    t.detector.failure('a');
    t.detector.failure('b');
    t.detector.failure('c');
    assert.deepEqual(t.detector.ejectedIds(), ['a', 'b']);
    t.detector.setEndpoints(['b', 'c', 'd', 'e']); // a leaves: one ejected of four
    t.detector.failure('c'); // its run was kept while blocked
    assert.deepEqual(t.detector.ejectedIds(), ['b', 'c']);
    t.detector.failure('d');
    assert.deepEqual(t.detector.ejectedIds(), ['b', 'c'], 'two of four is the cap again');
  });

  it('a stale timer (endpoint removed and re-added) does not return the new one, nor count', () => {
    const t = setup({ maxEjectedPercent: 100 }, ['a', 'b']);
    t.detector.failure('a');
    t.detector.setEndpoints(['b']);
    t.detector.setEndpoints(['a', 'b']);
    t.detector.failure('a'); // ejected again, new state, new timer
    t.timers.advance(1_000);
    assert.equal(t.detector.isEjected('a'), false);
    assert.deepEqual(t.returns, ['a'], 'one return for the live ejection only');
  });

  it('a timer that fires after its endpoint was removed, or after close(), changes nothing', () => {
    // Timers whose cancel() is too late (the callback already queued): the detector must check.
    const fired: (() => void)[] = [];
    const returns: string[] = [];
    let changes = 0;
    const d = new OutlierDetector(
      { consecutiveFailures: 1, ejectionTimeMs: 1_000, maxEjectionTimeMs: 1_000, maxEjectedPercent: 50 },
      { clock: new ManualClock(), onChange: () => changes++, onReturn: (id) => returns.push(id), setTimer: (cb) => (fired.push(cb), { cancel: () => {} }) },
    );
    d.setEndpoints(['a', 'b', 'c', 'd']);
    d.failure('a');
    d.setEndpoints(['b', 'c', 'd', 'e']); // a removed while ejected
    fired[0]!(); // its timer fires anyway
    assert.deepEqual(returns, []);
    assert.equal(changes, 1);
    d.failure('b');
    d.failure('c'); // 2 of 4 may be out: the stale return must not have freed a third place
    d.failure('d');
    assert.deepEqual(d.ejectedIds(), ['b', 'c']);
    fired[1]!(); // b returns for real
    fired[1]!(); // and a duplicate firing is ignored
    assert.deepEqual(returns, ['b']);
    d.failure('d');
    assert.deepEqual(d.ejectedIds(), ['c', 'd']);
    d.close();
    fired[2]!();
    assert.deepEqual(returns, ['b']);
  });

  it('error messages name the parameter', () => {
    const deps = { clock: new ManualClock(), onChange: () => {} };
    const ok: OutlierDetectorParams = { consecutiveFailures: 1, ejectionTimeMs: 1, maxEjectionTimeMs: 0, maxEjectedPercent: 0 };
    for (const [bad, name] of [
      [{ consecutiveFailures: 0 }, 'consecutiveFailures'],
      [{ ejectionTimeMs: 0 }, 'ejectionTimeMs'],
      [{ maxEjectionTimeMs: -1 }, 'maxEjectionTimeMs'],
      [{ maxEjectedPercent: 101 }, 'maxEjectedPercent'],
    ] as const) {
      assert.throws(() => new OutlierDetector({ ...ok, ...bad }, deps), new RegExp(`^RangeError: outlier detection: ${name} must`));
    }
  });

  it('returns call onChange once each, and a returned endpoint starts a clean run', () => {
    const t = setup({ consecutiveFailures: 2 }, ['a', 'b']);
    t.detector.failure('a');
    t.detector.failure('a');
    assert.equal(t.changes(), 1);
    t.timers.advance(1_000);
    assert.equal(t.changes(), 2);
    t.detector.failure('a');
    assert.equal(t.detector.isEjected('a'), false);
  });

  it('rejects each invalid parameter, and accepts the edges', () => {
    const deps = { clock: new ManualClock(), onChange: () => {} };
    const ok: OutlierDetectorParams = { consecutiveFailures: 1, ejectionTimeMs: 1, maxEjectionTimeMs: 0, maxEjectedPercent: 0 };
    assert.doesNotThrow(() => new OutlierDetector(ok, deps));
    assert.doesNotThrow(() => new OutlierDetector({ ...ok, maxEjectedPercent: 100 }, deps));
    for (const bad of [
      { consecutiveFailures: 0 },
      { consecutiveFailures: 1.5 },
      { ejectionTimeMs: 0 },
      { ejectionTimeMs: -1 },
      { ejectionTimeMs: Number.NaN },
      { ejectionTimeMs: Number.POSITIVE_INFINITY },
      { maxEjectionTimeMs: -1 },
      { maxEjectionTimeMs: Number.NaN },
      { maxEjectedPercent: -1 },
      { maxEjectedPercent: 100.5 },
      { maxEjectedPercent: Number.NaN },
    ]) {
      assert.throws(() => new OutlierDetector({ ...ok, ...bad }, deps), RangeError, JSON.stringify(bad));
    }
  });

  it('unrefTimer clamps the delay to what setTimeout honours and can be cancelled', async () => {
    let fired = 0;
    const never = unrefTimer(() => fired++, 2 ** 31 + 5); // clamped, not treated as 1 ms by Node
    const soon = unrefTimer(() => fired++, -5); // clamped to 0
    const cancelled = unrefTimer(() => fired++, 0);
    cancelled.cancel();
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(fired, 1);
    never.cancel();
    soon.cancel();
  });
});
