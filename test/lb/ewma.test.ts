import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, seededRandom } from '../../src/core/clock.js';
import { peakEwma } from '../../src/lb/ewma.js';
import type { LbEndpoint } from '../../src/lb/lb-endpoint.js';
import { countPicks, endpoints, req } from './lb-helpers.js';

/**
 * Open-loop simulation: one request every `intervalMs`, each holding its endpoint
 * (`outstanding`) for that endpoint's latency and then reporting it through `observe`.
 * Returns the picks per endpoint index during the last `measureMs`.
 */
function simulate(
  clock: ManualClock,
  pick: () => LbEndpoint,
  eps: readonly LbEndpoint[],
  latencyMs: (i: number) => number,
  durationMs: number,
  measureMs: number,
  intervalMs = 2,
): number[] {
  const inFlight: { done: number; e: LbEndpoint; latency: number }[] = [];
  const counts = eps.map(() => 0);
  const end = clock.now() + durationMs;
  while (clock.now() < end) {
    clock.advance(intervalMs);
    const now = clock.now();
    for (let k = inFlight.length - 1; k >= 0; k--) {
      const f = inFlight[k]!;
      if (f.done <= now) {
        f.e.outstanding--;
        f.e.observe(f.latency, now);
        inFlight.splice(k, 1);
      }
    }
    const e = pick();
    const i = eps.indexOf(e);
    if (now > end - measureMs) counts[i]!++;
    e.outstanding++;
    inFlight.push({ done: now + latencyMs(i), e, latency: latencyMs(i) });
  }
  return counts;
}

describe('peakEwma (P2C on latency × load)', () => {
  it('returns undefined for an empty set and the only endpoint of one', () => {
    const lb = peakEwma(seededRandom(1), new ManualClock());
    assert.equal(lb.pick(req()), undefined);
    const eps = endpoints(1);
    lb.update(eps);
    assert.equal(lb.pick(req()), eps[0]);
  });

  it('is roughly uniform when idle and unobserved', () => {
    const eps = endpoints(3);
    const lb = peakEwma(seededRandom(2), new ManualClock());
    lb.update(eps);
    const counts = countPicks(lb, 30_000);
    for (const e of eps) {
      const c = counts.get(e.id) ?? 0;
      assert.ok(c > 9_500 && c < 10_500, `${e.id}: ${c}`);
    }
  });

  it('never picks an endpoint whose observed latency is 10x when loads are equal', () => {
    const clock = new ManualClock();
    const eps = endpoints(3);
    eps[0]!.observe(300, 0);
    const lb = peakEwma(seededRandom(3), clock);
    lb.update(eps);
    const counts = countPicks(lb, 30_000);
    assert.equal(counts.get(eps[0]!.id), undefined);
  });

  it('steers away from a 10x slower endpoint under load, and returns to it after it recovers', () => {
    const clock = new ManualClock();
    const eps = endpoints(3);
    const lb = peakEwma(seededRandom(4), clock);
    lb.update(eps);
    const pick = (): LbEndpoint => lb.pick(req())!;

    let slow = true;
    const latency = (i: number): number => (i === 0 && slow ? 100 : 10);
    const degraded = simulate(clock, pick, eps, latency, 20_000, 10_000);
    const degradedShare = degraded[0]! / degraded.reduce((a, b) => a + b, 0);
    assert.ok(degradedShare < 0.1, `slow endpoint share while slow: ${degradedShare.toFixed(3)}`);

    slow = false;
    const recovered = simulate(clock, pick, eps, latency, 60_000, 10_000);
    const recoveredShare = recovered[0]! / recovered.reduce((a, b) => a + b, 0);
    assert.ok(recoveredShare > 0.25, `share after recovery: ${recoveredShare.toFixed(3)}`);
  });

  it('reads the clock: an idle estimate decays, so a once-slow endpoint is tried again', () => {
    const clock = new ManualClock();
    const eps = endpoints(2);
    eps[0]!.observe(500, 0);
    eps[1]!.observe(20, 0);
    clock.advance(5_000);
    eps[1]!.observe(20, 5_000); // the fast one keeps being used; the slow one sits idle
    const lb = peakEwma(seededRandom(5), clock);
    lb.update(eps);
    assert.equal(lb.pick(req()), eps[1]);
    clock.advance(40_000);
    eps[1]!.observe(20, clock.now()); // fresh: costs 20
    // idle 45 s: 500 · e^-4.5 ≈ 5.6, now cheaper than the endpoint in use
    assert.ok(eps[0]!.cost(clock.now()) < eps[1]!.cost(clock.now()));
    assert.equal(lb.pick(req()), eps[0]);
  });

  it('honours avoid', () => {
    const clock = new ManualClock();
    const eps = endpoints(3);
    eps[1]!.observe(1, 0);
    eps[0]!.observe(100, 0);
    eps[2]!.observe(100, 0);
    const lb = peakEwma(seededRandom(6), clock);
    lb.update(eps);
    const counts = countPicks(lb, 3_000, req(undefined, [eps[1]!.id]));
    assert.equal(counts.get(eps[1]!.id), undefined);
    assert.equal((counts.get(eps[0]!.id) ?? 0) + (counts.get(eps[2]!.id) ?? 0), 3_000);
  });
});
