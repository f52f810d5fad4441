import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, seededRandom } from '../../src/core/clock.js';
import type { BalancerKind } from '../../src/lb/balancer.js';
import { makeBalancer } from '../../src/lb/make-balancer.js';
import { endpoints, req } from './lb-helpers.js';

const KINDS: readonly BalancerKind[] = ['round-robin', 'random', 'least-request', 'ewma', 'ring-hash'];

describe('makeBalancer', () => {
  const deps = { random: seededRandom(1), clock: new ManualClock() };

  for (const kind of KINDS) {
    describe(kind, () => {
      it('has the requested kind and returns undefined for an empty set', () => {
        const lb = makeBalancer(kind, deps);
        assert.equal(lb.kind, kind);
        assert.equal(lb.pick(req()), undefined);
        assert.equal(lb.pick(req('key')), undefined);
        lb.update(endpoints(2));
        lb.update([]);
        assert.equal(lb.pick(req('key', ['x'])), undefined);
      });

      it('honours avoid while another endpoint exists, with and without a key', () => {
        const eps = endpoints(5);
        const lb = makeBalancer(kind, deps);
        lb.update(eps);
        const avoid = [eps[0]!.id, eps[3]!.id];
        for (let i = 0; i < 2_000; i++) {
          const e = lb.pick(req(i % 2 === 0 ? `k${i}` : undefined, avoid))!;
          assert.ok(!avoid.includes(e.id), `${kind} picked avoided ${e.id}`);
        }
      });

      it('still answers when every endpoint is avoided', () => {
        const eps = endpoints(3);
        const lb = makeBalancer(kind, deps);
        lb.update(eps);
        const all = eps.map((e) => e.id);
        for (let i = 0; i < 20; i++) assert.ok(eps.includes(lb.pick(req(`k${i}`, all))!));
      });

      it('uses every endpoint of the set it was last given', () => {
        const eps = endpoints(4);
        const lb = makeBalancer(kind, deps);
        lb.update(eps);
        lb.update(eps.slice(1));
        const seen = new Set<string>();
        for (let i = 0; i < 3_000; i++) seen.add(lb.pick(req(`k${i}`))!.id);
        assert.deepEqual([...seen].sort(), eps.slice(1).map((e) => e.id).sort());
      });
    });
  }

  it('rejects an unknown kind', () => {
    assert.throws(() => makeBalancer('nope' as BalancerKind, deps), TypeError);
  });
});
