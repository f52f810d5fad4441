import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BackendSpec } from '../../src/config/types.js';
import { CallContext } from '../../src/core/context.js';
import { seededRandom } from '../../src/core/clock.js';
import { backendPicker } from '../../src/traffic/weighted-split.js';
import { routeKeyOf, splitFilter } from '../../src/traffic/split-filter.js';

const v = (version: string, weight: number): BackendSpec => ({ subset: { version }, weight });

function counts(pick: (k: string | undefined) => BackendSpec, n: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const b = pick(undefined).subset.version ?? 'all';
    out.set(b, (out.get(b) ?? 0) + 1);
  }
  return out;
}

test('90/10 over 20k picks lands within 1% of the weights', () => {
  const c = counts(backendPicker([v('v2', 90), v('v3', 10)], seededRandom(42)), 20_000);
  assert.ok(Math.abs((c.get('v2') ?? 0) / 20_000 - 0.9) < 0.01, JSON.stringify([...c]));
  assert.ok(Math.abs((c.get('v3') ?? 0) / 20_000 - 0.1) < 0.01, JSON.stringify([...c]));
});

test('weights are relative: 9/1 picks exactly as 90/10 with the same random source', () => {
  const a = backendPicker([v('v2', 90), v('v3', 10)], seededRandom(7));
  const b = backendPicker([v('v2', 9), v('v3', 1)], seededRandom(7));
  for (let i = 0; i < 1000; i++) assert.equal(a(undefined).subset.version, b(undefined).subset.version);
});

test('a zero-weight backend is never chosen, by draw or by key', () => {
  const pick = backendPicker([v('a', 1), v('dark', 0), v('b', 1)], seededRandom(1));
  const c = counts(pick, 5000);
  assert.equal(c.get('dark'), undefined);
  for (let i = 0; i < 5000; i++) assert.notEqual(pick(`user-${i}`).subset.version, 'dark');
});

test('a single backend is returned without drawing', () => {
  const only = v('v1', 5);
  const pick = backendPicker([only, v('off', 0)], () => assert.fail('no draw expected'));
  assert.equal(pick(undefined), only);
  assert.equal(pick('k'), only);
});

test('all-zero weights are refused', () => {
  assert.throws(() => backendPicker([v('a', 0)], Math.random), RangeError);
  assert.throws(() => backendPicker([], Math.random), RangeError);
});

test('sticky keys: stable, split by weight, and only keys in the moved range move (90/10 → 80/20)', () => {
  const keys = Array.from({ length: 20_000 }, (_, i) => `user-${i}`);
  const before = backendPicker([v('v2', 90), v('v3', 10)], () => assert.fail('keyed picks do not draw'));
  const again = backendPicker([v('v2', 90), v('v3', 10)], Math.random);
  const after = backendPicker([v('v2', 80), v('v3', 20)], Math.random);
  let toV3 = 0;
  let inV3Before = 0;
  for (const k of keys) {
    const b = before(k).subset.version;
    assert.equal(again(k).subset.version, b, 'same key, same weights, same subset');
    const a = after(k).subset.version;
    if (b === 'v3') {
      inV3Before++;
      assert.equal(a, 'v3', 'a key already on the canary stays there as its weight grows');
    } else if (a === 'v3') {
      toV3++;
    }
  }
  assert.ok(Math.abs(inV3Before / keys.length - 0.1) < 0.01, `v3 share before ${inV3Before}`);
  // Only keys whose hash position lies in [0.8, 0.9) move: about 10% of them, none the other way.
  assert.ok(Math.abs(toV3 / keys.length - 0.1) < 0.01, `moved ${toV3}`);
});

test('splitFilter sets ctx.subset before next, undefined for an empty subset', async () => {
  const backends = [{ subset: {}, weight: 1 }, v('v2', 1)];
  const pick = backendPicker(backends, seededRandom(3));
  const filter = splitFilter<string, string>(pick, routeKeyOf);
  const seen = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const ctx = new CallContext('products', true);
    await filter('req', ctx, async (_req, c) => {
      const key = c.subset === undefined ? 'all' : JSON.stringify(c.subset);
      seen.set(key, (seen.get(key) ?? 0) + 1);
      return 'ok';
    });
  }
  assert.deepEqual([...seen.keys()].sort(), ['all', '{"version":"v2"}']);
});

test('splitFilter with a key keeps every attempt of a keyed request on one subset', async () => {
  const pick = backendPicker([v('a', 1), v('b', 1), v('c', 1)], seededRandom(9));
  const filter = splitFilter<string, string>(pick, routeKeyOf);
  const ctx = new CallContext('products', true);
  ctx.routeKey = 'session-17';
  const subsets = new Set<string>();
  for (let attempt = 0; attempt < 20; attempt++) {
    const c = ctx.fork();
    await filter('req', c, async (_r, cc) => {
      subsets.add(cc.subset?.version ?? 'all');
      return 'ok';
    });
  }
  assert.equal(subsets.size, 1);
});
