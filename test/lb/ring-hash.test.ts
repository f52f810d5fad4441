import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../../src/core/clock.js';
import type { Balancer } from '../../src/lb/balancer.js';
import type { LbEndpoint } from '../../src/lb/lb-endpoint.js';
import { ringHash } from '../../src/lb/ring-hash.js';
import { countPicks, endpoints, req } from './lb-helpers.js';

const KEYS = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

function assignment(lb: Balancer): Map<string, string> {
  const out = new Map<string, string>();
  for (const k of KEYS) out.set(k, lb.pick(req(k))!.id);
  return out;
}

function moved(a: Map<string, string>, b: Map<string, string>): string[] {
  return KEYS.filter((k) => a.get(k) !== b.get(k));
}

describe('ringHash (consistent hashing)', () => {
  it('returns undefined for an empty set, with or without a key', () => {
    const lb = ringHash(seededRandom(1));
    assert.equal(lb.pick(req('k')), undefined);
    lb.update([]);
    assert.equal(lb.pick(req('k')), undefined);
    assert.equal(lb.pick(req()), undefined);
  });

  it('sends the same key to the same endpoint, whatever order the set arrives in', () => {
    const eps = endpoints(5);
    const a = ringHash(seededRandom(1));
    a.update(eps);
    const b = ringHash(seededRandom(2));
    b.update([...eps].reverse());
    for (const k of KEYS.slice(0, 1_000)) {
      const first = a.pick(req(k));
      assert.equal(a.pick(req(k)), first);
      assert.equal(b.pick(req(k)), first);
    }
  });

  it('spreads keys roughly evenly', () => {
    const eps = endpoints(4);
    const lb = ringHash(seededRandom(1));
    lb.update(eps);
    const counts = new Map<string, number>();
    for (const id of assignment(lb).values()) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const e of eps) {
      const c = counts.get(e.id) ?? 0;
      assert.ok(c > 2_500 * 0.75 && c < 2_500 * 1.25, `${e.id}: ${c}`);
    }
  });

  it('adding a 4th endpoint to 3 remaps about a quarter of the keys, all onto the new one', () => {
    const eps = endpoints(4);
    const lb = ringHash(seededRandom(1));
    lb.update(eps.slice(0, 3));
    const before = assignment(lb);
    lb.update(eps);
    const after = assignment(lb);
    const changed = moved(before, after);
    assert.ok(changed.length < 3_500, `moved ${changed.length}`);
    assert.ok(changed.length > 1_500, `moved ${changed.length}`);
    for (const k of changed) assert.equal(after.get(k), eps[3]!.id);
  });

  it('removing an endpoint remaps only the keys that were on it', () => {
    const eps = endpoints(4);
    const lb = ringHash(seededRandom(1));
    lb.update(eps);
    const before = assignment(lb);
    lb.update([eps[0]!, eps[2]!, eps[3]!]);
    const after = assignment(lb);
    const changed = moved(before, after);
    assert.ok(changed.length > 0);
    for (const k of changed) assert.equal(before.get(k), eps[1]!.id);
    for (const k of KEYS) if (before.get(k) === eps[1]!.id) assert.notEqual(after.get(k), eps[1]!.id);
  });

  it('gives keys in proportion to weight', () => {
    const eps = endpoints(3, [1, 1, 2]);
    const lb = ringHash(seededRandom(1));
    lb.update(eps);
    const counts = new Map<string, number>();
    for (const id of assignment(lb).values()) counts.set(id, (counts.get(id) ?? 0) + 1);
    const heavy = counts.get(eps[2]!.id) ?? 0;
    assert.ok(heavy > 4_000 && heavy < 6_000, `weight-2 endpoint: ${heavy}`);
  });

  it('avoid: walks clockwise to the next endpoint, the same one for the same key', () => {
    const eps = endpoints(4);
    const lb = ringHash(seededRandom(1));
    lb.update(eps);
    const spread = new Set<LbEndpoint>();
    for (const k of KEYS.slice(0, 500)) {
      const first = lb.pick(req(k))!;
      const second = lb.pick(req(k, [first.id]))!;
      assert.notEqual(second, first);
      assert.equal(lb.pick(req(k, [first.id])), second);
      spread.add(second);
      // the retry target is where the key goes if its first endpoint is removed
      const without = ringHash(seededRandom(1));
      without.update(eps.filter((e) => e !== first));
      assert.equal(without.pick(req(k)), second);
      // everything avoided: still an answer
      assert.equal(lb.pick(req(k, eps.map((e) => e.id))), first);
    }
    assert.equal(spread.size, 4);
  });

  it('falls back to random choice without a key, honouring avoid', () => {
    const eps = endpoints(3);
    const lb = ringHash(seededRandom(11));
    lb.update(eps);
    const counts = countPicks(lb, 30_000);
    for (const e of eps) {
      const c = counts.get(e.id) ?? 0;
      assert.ok(c > 9_500 && c < 10_500, `${e.id}: ${c}`);
    }
    const avoided = countPicks(lb, 1_000, req(undefined, [eps[0]!.id]));
    assert.equal(avoided.get(eps[0]!.id), undefined);
  });

  it('rejects a bad replica count', () => {
    assert.throws(() => ringHash(seededRandom(1), { replicas: 0 }), RangeError);
    assert.throws(() => ringHash(seededRandom(1), { replicas: 1.5 }), RangeError);
  });
});
