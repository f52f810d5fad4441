import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '../../src/core/clock.js';
import { parseConfigText } from '../../src/config/load.js';
import { OutlierDetector, type OutlierDetectorParams } from '../../src/lb/outlier-detector.js';
import { ManualTimers } from './lb-helpers.js';

const IDS = ['a:1', 'b:1', 'c:1', 'd:1'];

function setup(params: Partial<OutlierDetectorParams> = {}, ids: readonly string[] = IDS) {
  const clock = new ManualClock();
  const timers = new ManualTimers(clock);
  const events: string[] = [];
  const ejections: { id: string; untilMs: number; count: number }[] = [];
  let changes = 0;
  const detector = new OutlierDetector(
    { consecutiveFailures: 3, ejectionTimeMs: 1_000, maxEjectionTimeMs: 10_000, maxEjectedPercent: 50, ...params },
    {
      clock,
      onChange: () => changes++,
      onEject: (id, untilMs, count) => {
        events.push(`eject ${id}`);
        ejections.push({ id, untilMs, count });
      },
      onReturn: (id) => events.push(`return ${id}`),
      setTimer: timers.setTimer,
    },
  );
  detector.setEndpoints(ids);
  const fail = (id: string, times: number): void => {
    for (let i = 0; i < times; i++) detector.failure(id);
  };
  return { clock, timers, detector, events, ejections, fail, changes: () => changes };
}

describe('OutlierDetector', () => {
  it('ejects after N consecutive failures, and a success resets the run', () => {
    const t = setup();
    t.fail('a:1', 2);
    t.detector.success('a:1');
    t.fail('a:1', 2);
    assert.equal(t.detector.isEjected('a:1'), false);
    t.fail('a:1', 1);
    assert.equal(t.detector.isEjected('a:1'), true);
    assert.deepEqual(t.detector.ejectedIds(), ['a:1']);
    assert.deepEqual(t.ejections, [{ id: 'a:1', untilMs: 1_000, count: 1 }]);
    assert.equal(t.changes(), 1);
  });

  it('returns the endpoint by itself when its time is up, calling onChange', () => {
    const t = setup();
    t.fail('a:1', 3);
    t.timers.advance(999);
    assert.equal(t.detector.isEjected('a:1'), true);
    t.timers.advance(1);
    assert.equal(t.detector.isEjected('a:1'), false);
    assert.deepEqual(t.events, ['eject a:1', 'return a:1']);
    assert.equal(t.changes(), 2);
    assert.equal(t.timers.live, 0);
  });

  it('ignores outcomes reported while ejected and returns with a clean run', () => {
    const t = setup();
    t.fail('a:1', 3);
    t.fail('a:1', 10); // in-flight requests failing late
    t.timers.advance(1_000);
    t.fail('a:1', 2);
    assert.equal(t.detector.isEjected('a:1'), false);
    assert.equal(t.ejections.length, 1);
  });

  it('multiplies the ejection time by the ejection count, capped at maxEjectionTime', () => {
    const t = setup({ maxEjectionTimeMs: 2_500 });
    const durations: number[] = [];
    for (let i = 0; i < 4; i++) {
      const start = t.clock.now();
      t.fail('a:1', 3);
      durations.push(t.ejections.at(-1)!.untilMs - start);
      t.timers.advance(durations.at(-1)!); // returns, then fails again at once
      assert.equal(t.detector.isEjected('a:1'), false);
    }
    assert.deepEqual(durations, [1_000, 2_000, 2_500, 2_500]);
    assert.deepEqual(t.ejections.map((e) => e.count), [1, 2, 3, 3]);
  });

  it('decays the count by one per ejection time spent healthy', () => {
    const t = setup();
    for (let i = 0; i < 3; i++) {
      t.fail('a:1', 3);
      t.timers.advance(t.ejections.at(-1)!.count * 1_000);
    }
    assert.deepEqual(t.ejections.map((e) => e.count), [1, 2, 3]);
    t.timers.advance(2_500); // two whole periods healthy: 3 → 1, then this ejection makes 2
    t.fail('a:1', 3);
    assert.equal(t.ejections.at(-1)!.count, 2);
    t.timers.advance(2_000);
    t.timers.advance(60_000); // long healthy: back to a first ejection
    t.fail('a:1', 3);
    assert.equal(t.ejections.at(-1)!.count, 1);
    assert.equal(t.ejections.at(-1)!.untilMs - t.clock.now(), 1_000);
  });

  it('respects maxEjectedPercent (floor of the set size)', () => {
    const t = setup({ maxEjectedPercent: 50 }); // 4 endpoints: 2 at most
    for (const id of IDS) t.fail(id, 3);
    assert.deepEqual(t.detector.ejectedIds(), ['a:1', 'b:1']);
    // room frees up: a blocked endpoint keeps its failure run and goes on its next failure
    t.timers.advance(1_000);
    assert.deepEqual(t.detector.ejectedIds(), []);
    t.fail('c:1', 1);
    assert.deepEqual(t.detector.ejectedIds(), ['c:1']);
  });

  it('ejects at least one endpoint of a set of 2+, never the only one below 100 %', () => {
    const small = setup({ maxEjectedPercent: 10 }, ['a:1', 'b:1', 'c:1']);
    small.fail('a:1', 3);
    small.fail('b:1', 3);
    assert.deepEqual(small.detector.ejectedIds(), ['a:1']);

    const single = setup({ maxEjectedPercent: 99 }, ['a:1']);
    single.fail('a:1', 10);
    assert.deepEqual(single.detector.ejectedIds(), []);

    const all = setup({ maxEjectedPercent: 100 }, ['a:1']);
    all.fail('a:1', 3);
    assert.deepEqual(all.detector.ejectedIds(), ['a:1']);

    const off = setup({ maxEjectedPercent: 0 });
    off.fail('a:1', 10);
    assert.deepEqual(off.detector.ejectedIds(), []);
  });

  it('forgets endpoints removed from the set, timers included; new ones start clean', () => {
    const t = setup();
    t.fail('a:1', 3);
    t.fail('b:1', 2);
    t.detector.setEndpoints(['b:1', 'c:1', 'e:1']);
    assert.equal(t.detector.isEjected('a:1'), false);
    assert.equal(t.timers.live, 0);
    t.detector.failure('a:1'); // unknown now: ignored
    t.fail('b:1', 1); // kept its run of two
    assert.deepEqual(t.detector.ejectedIds(), ['b:1']);
    t.detector.setEndpoints(['a:1', 'b:1', 'c:1', 'e:1']);
    t.fail('a:1', 2);
    assert.equal(t.detector.isEjected('a:1'), false);
    assert.deepEqual(t.events, ['eject a:1', 'eject b:1']);
  });

  it('close() cancels every timer and ignores later reports', () => {
    const t = setup();
    t.fail('a:1', 3);
    t.fail('b:1', 3);
    assert.equal(t.timers.live, 2);
    t.detector.close();
    assert.equal(t.timers.live, 0);
    assert.deepEqual(t.detector.ejectedIds(), []);
    t.fail('c:1', 5);
    t.detector.setEndpoints(IDS);
    t.fail('c:1', 5);
    assert.deepEqual(t.detector.ejectedIds(), []);
  });

  it('rejects invalid parameters', () => {
    const deps = { clock: new ManualClock(), onChange: () => {} };
    const ok: OutlierDetectorParams = { consecutiveFailures: 5, ejectionTimeMs: 30_000, maxEjectionTimeMs: 300_000, maxEjectedPercent: 10 };
    assert.throws(() => new OutlierDetector({ ...ok, consecutiveFailures: 0 }, deps), RangeError);
    assert.throws(() => new OutlierDetector({ ...ok, ejectionTimeMs: 0 }, deps), RangeError);
    assert.throws(() => new OutlierDetector({ ...ok, maxEjectedPercent: 101 }, deps), RangeError);
  });

  it('with real timers: ejects, returns, and never keeps the process alive', async () => {
    let changes = 0;
    const detector = new OutlierDetector(
      { consecutiveFailures: 1, ejectionTimeMs: 20, maxEjectionTimeMs: 20, maxEjectedPercent: 100 },
      { clock: { now: () => performance.now(), wall: () => Date.now() }, onChange: () => changes++ },
    );
    detector.setEndpoints(['a:1', 'b:1']);
    detector.failure('a:1');
    assert.equal(detector.isEjected('a:1'), true);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(detector.isEjected('a:1'), false);
    assert.equal(changes, 2);
    // an ejection of an hour, left pending: close() clears it (and it is unref'd regardless)
    const long = new OutlierDetector(
      { consecutiveFailures: 1, ejectionTimeMs: 3_600_000, maxEjectionTimeMs: 3_600_000, maxEjectedPercent: 100 },
      { clock: { now: () => performance.now(), wall: () => Date.now() }, onChange: () => {} },
    );
    long.setEndpoints(['a:1', 'b:1']);
    long.failure('b:1');
    assert.equal(long.isEjected('b:1'), true);
    long.close();
    detector.close();
  });

  it('a pending ejection timer does not keep a process alive (unref)', () => {
    const moduleUrl = new URL('../../src/lb/outlier-detector.ts', import.meta.url).href;
    const script = `
      import { OutlierDetector } from ${JSON.stringify(moduleUrl)};
      const d = new OutlierDetector(
        { consecutiveFailures: 1, ejectionTimeMs: 3600000, maxEjectionTimeMs: 3600000, maxEjectedPercent: 100 },
        { clock: { now: () => performance.now(), wall: () => Date.now() }, onChange: () => {} });
      d.setEndpoints(['a:1', 'b:1']);
      d.failure('a:1');
      if (!d.isEjected('a:1')) process.exit(3);
    `;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      timeout: 20_000,
      encoding: 'utf8',
    });
    assert.equal(result.error, undefined, 'the process did not exit by itself');
    assert.equal(result.status, 0, result.stderr);
  });
});

describe('OutlierDetector: the configured ejection time, in real units', () => {
  // A units slip (seconds read as milliseconds, or the reverse) would end a 30 s ejection after
  // 30 ms; the tests above use 1 000 ms everywhere, where such a slip still looks plausible.
  // Here the time comes from a Service document, as in production, and the clock is injected.
  it('an endpoint ejected with `ejectionTime: 30s` is still out at 29 s and back at 30 s', () => {
    const config = parseConfigText(
      'apiVersion: trellis/v1\nkind: Service\nmetadata: { name: products }\nspec:\n  endpoints: [ { address: 10.0.0.1:80 } ]\n  outlierDetection: { consecutiveFailures: 2, ejectionTime: 30s, maxEjectedPercent: 100 }\n',
    );
    const params = config.services.get('products')?.outlierDetection;
    assert.ok(params !== undefined);
    const clock = new ManualClock();
    const timers = new ManualTimers(clock);
    const returns: number[] = [];
    const d = new OutlierDetector(params, { clock, setTimer: timers.setTimer, onChange: () => undefined, onReturn: () => returns.push(clock.now()) });
    d.setEndpoints(['a:1', 'b:1']);
    const start = clock.now();
    d.failure('a:1');
    d.failure('a:1');
    assert.equal(d.isEjected('a:1'), true);
    timers.advance(1);
    assert.equal(d.isEjected('a:1'), true, 'ejected after 1 ms');
    timers.advance(28_999);
    assert.equal(d.isEjected('a:1'), true, 'still ejected at 29 s');
    timers.advance(999);
    assert.equal(d.isEjected('a:1'), true, 'still ejected at 29.999 s');
    timers.advance(1);
    assert.equal(d.isEjected('a:1'), false, 'back at 30 s');
    assert.deepEqual(returns, [start + 30_000]);
  });

  it('a second ejection lasts 60 s (30 s × 2), not 60 ms', () => {
    const clock = new ManualClock();
    const timers = new ManualTimers(clock);
    const d = new OutlierDetector(
      { consecutiveFailures: 1, ejectionTimeMs: 30_000, maxEjectionTimeMs: 300_000, maxEjectedPercent: 100 },
      { clock, setTimer: timers.setTimer, onChange: () => undefined },
    );
    d.setEndpoints(['a:1', 'b:1']);
    d.failure('a:1');
    timers.advance(30_000);
    assert.equal(d.isEjected('a:1'), false);
    d.failure('a:1');
    timers.advance(59_999);
    assert.equal(d.isEjected('a:1'), true, 'still ejected at 59.999 s');
    timers.advance(1);
    assert.equal(d.isEjected('a:1'), false);
  });
});
