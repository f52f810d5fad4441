import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../../src/core/clock.js';
import { randomBalancer } from '../../src/lb/random.js';
import { countPicks, endpoints, req } from './lb-helpers.js';

describe('randomBalancer', () => {
  it('returns undefined for an empty set', () => {
    const lb = randomBalancer(seededRandom(1));
    assert.equal(lb.pick(req()), undefined);
  });

  it('is roughly uniform with equal weights', () => {
    const eps = endpoints(3);
    const lb = randomBalancer(seededRandom(42));
    lb.update(eps);
    const counts = countPicks(lb, 30_000);
    for (const e of eps) {
      const c = counts.get(e.id) ?? 0;
      assert.ok(c > 9_500 && c < 10_500, `${e.id}: ${c}`);
    }
  });

  it('is proportional to weight', () => {
    const eps = endpoints(3, [1, 2, 7]);
    const lb = randomBalancer(seededRandom(7));
    lb.update(eps);
    const counts = countPicks(lb, 30_000);
    const expected = [3_000, 6_000, 21_000];
    eps.forEach((e, i) => {
      const c = counts.get(e.id) ?? 0;
      assert.ok(Math.abs(c - expected[i]!) < expected[i]! * 0.06, `${e.id}: ${c}`);
    });
  });

  it('honours avoid, uniformly over the rest', () => {
    const eps = endpoints(4);
    const lb = randomBalancer(seededRandom(9));
    lb.update(eps);
    const counts = countPicks(lb, 30_000, req(undefined, [eps[1]!.id]));
    assert.equal(counts.get(eps[1]!.id), undefined);
    for (const i of [0, 2, 3]) {
      const c = counts.get(eps[i]!.id) ?? 0;
      assert.ok(c > 9_500 && c < 10_500, `${eps[i]!.id}: ${c}`);
    }
    assert.ok(lb.pick(req(undefined, eps.map((e) => e.id))) !== undefined);
  });

  it('survives a random source returning values next to 1', () => {
    const lb = randomBalancer(() => 1 - Number.EPSILON / 2);
    const eps = endpoints(3);
    lb.update(eps);
    assert.equal(lb.pick(req()), eps[2]);
  });
});
