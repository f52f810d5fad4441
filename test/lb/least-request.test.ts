import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../../src/core/clock.js';
import { leastRequest } from '../../src/lb/least-request.js';
import { countPicks, endpoints, req } from './lb-helpers.js';

describe('leastRequest (P2C)', () => {
  it('returns undefined for an empty set and the only endpoint of one', () => {
    const lb = leastRequest(seededRandom(1));
    assert.equal(lb.pick(req()), undefined);
    const eps = endpoints(1);
    eps[0]!.outstanding = 100;
    lb.update(eps);
    assert.equal(lb.pick(req()), eps[0]);
    assert.equal(lb.pick(req(undefined, [eps[0]!.id])), eps[0]);
  });

  it('is roughly uniform when idle (ties broken at random)', () => {
    const eps = endpoints(3);
    const lb = leastRequest(seededRandom(5));
    lb.update(eps);
    const counts = countPicks(lb, 30_000);
    for (const e of eps) {
      const c = counts.get(e.id) ?? 0;
      assert.ok(c > 9_500 && c < 10_500, `${e.id}: ${c}`);
    }
  });

  it('avoids an endpoint with many requests outstanding', () => {
    const eps = endpoints(3);
    eps[0]!.outstanding = 50;
    const lb = leastRequest(seededRandom(6));
    lb.update(eps);
    const counts = countPicks(lb, 30_000);
    // P2C: the busy endpoint wins no pair it is in.
    assert.equal(counts.get(eps[0]!.id), undefined);
  });

  it('keeps outstanding balanced under a closed-loop simulation', () => {
    const eps = endpoints(4);
    eps[0]!.outstanding = 10; // one endpoint starts loaded
    const lb = leastRequest(seededRandom(8));
    lb.update(eps);
    for (let i = 0; i < 200; i++) lb.pick(req())!.outstanding++;
    const loads = eps.map((e) => e.outstanding);
    assert.ok(Math.max(...loads) - Math.min(...loads) <= 3, `loads ${loads.join(',')}`);
  });

  it('honours avoid', () => {
    const eps = endpoints(3);
    eps[2]!.outstanding = 20;
    const lb = leastRequest(seededRandom(10));
    lb.update(eps);
    const counts = countPicks(lb, 3_000, req(undefined, [eps[0]!.id]));
    assert.equal(counts.get(eps[0]!.id), undefined);
    assert.equal(counts.get(eps[1]!.id), 3_000); // the remaining pair is {1, 2}; 2 is busy
    assert.equal(lb.pick(req(undefined, [eps[0]!.id, eps[1]!.id])), eps[2]);
  });
});
