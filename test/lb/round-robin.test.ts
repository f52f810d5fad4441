import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../../src/core/clock.js';
import { roundRobin } from '../../src/lb/round-robin.js';
import { countPicks, endpoints, req } from './lb-helpers.js';

describe('roundRobin', () => {
  it('returns undefined for an empty set', () => {
    const lb = roundRobin();
    assert.equal(lb.pick(req()), undefined);
    lb.update([]);
    assert.equal(lb.pick(req()), undefined);
  });

  it('is exact plain round-robin when weights are equal', () => {
    const eps = endpoints(3);
    const lb = roundRobin();
    lb.update(eps);
    const seq = Array.from({ length: 6 }, () => lb.pick(req())?.id);
    assert.deepEqual(seq, [eps[0]!.id, eps[1]!.id, eps[2]!.id, eps[0]!.id, eps[1]!.id, eps[2]!.id]);
    const counts = countPicks(lb, 30_000);
    for (const e of eps) assert.equal(counts.get(e.id), 10_000);
  });

  it('with a random start still cycles exactly', () => {
    const eps = endpoints(5);
    const lb = roundRobin(seededRandom(3));
    lb.update(eps);
    const first = lb.pick(req())!;
    const start = eps.indexOf(first);
    for (let i = 1; i < 50; i++) assert.equal(lb.pick(req()), eps[(start + i) % 5]);
  });

  it('is smooth weighted round-robin (nginx) when weights differ', () => {
    const eps = endpoints(3, [5, 1, 1]);
    const lb = roundRobin();
    lb.update(eps);
    // nginx's documented sequence for weights {a:5, b:1, c:1}: a a b a c a a
    const seq = Array.from({ length: 7 }, () => eps.indexOf(lb.pick(req())!));
    assert.deepEqual(seq, [0, 0, 1, 0, 2, 0, 0]);
    const counts = countPicks(lb, 70_000);
    assert.deepEqual([counts.get(eps[0]!.id), counts.get(eps[1]!.id), counts.get(eps[2]!.id)], [50_000, 10_000, 10_000]);
  });

  it('honours avoid, in plain and weighted mode', () => {
    for (const weights of [[], [3, 2, 1]]) {
      const eps = endpoints(3, weights);
      const lb = roundRobin();
      lb.update(eps);
      const counts = countPicks(lb, 3_000, req(undefined, [eps[1]!.id]));
      assert.equal(counts.get(eps[1]!.id), undefined);
      assert.ok((counts.get(eps[0]!.id) ?? 0) > 0 && (counts.get(eps[2]!.id) ?? 0) > 0);
      // every endpoint avoided: still answers
      assert.ok(lb.pick(req(undefined, eps.map((e) => e.id))) !== undefined);
    }
  });

  it('skipping an avoided endpoint keeps the rotation going', () => {
    const eps = endpoints(3);
    const lb = roundRobin();
    lb.update(eps);
    assert.equal(lb.pick(req(undefined, [eps[0]!.id])), eps[1]);
    assert.equal(lb.pick(req()), eps[2]);
    assert.equal(lb.pick(req()), eps[0]);
  });

  it('keeps its position across updates', () => {
    const eps = endpoints(4);
    const lb = roundRobin();
    lb.update(eps);
    lb.pick(req());
    lb.pick(req());
    lb.update(eps.slice(0, 3));
    assert.equal(lb.pick(req()), eps[2]);
    assert.equal(lb.pick(req()), eps[0]);
  });
});
