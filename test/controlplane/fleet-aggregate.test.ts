/**
 * The fleet's aggregation with an injected clock: sliding windows, quantiles as Prometheus's
 * histogram_quantile computes them, identity from the stream (never from the report), refusal
 * of malformed reports, and expiry of instances that stopped reporting.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/core/clock.js';
import { createFleet } from '../../src/controlplane/fleet/index.js';
import { MemoryStore } from '../../src/controlplane/store/memory-store.js';
import { OTEL_HTTP_DURATION_BUCKETS } from '../../src/observability/metrics.js';
import type { FleetEdgeReport, FleetReport } from '../../src/controlplane-client/fleet-report.js';

const B = OTEL_HTTP_DURATION_BUCKETS;

function edge(dir: 'in' | 'out', from: string, to: string, requests: number, failures = 0, bucket = 2, route = 'default'): FleetEdgeReport {
  const counts = new Array<number>(B.length + 1).fill(0);
  counts[bucket] = requests;
  return {
    dir, from, to, route, protocol: 'http', requests,
    outcomes: { success: requests - failures, ...(failures > 0 ? { failure: failures } : {}) },
    status: { '2xx': requests - failures, ...(failures > 0 ? { '5xx': failures } : {}) },
    latency: { counts, sum: requests * 0.015 },
  };
}

function report(edges: FleetEdgeReport[]): FleetReport {
  return { v: 1, interval: { from: 0, to: 0 }, bounds: B, edges, destinations: [] };
}

async function setup() {
  const clock = new ManualClock(0, 1_800_000_000_000);
  const store = new MemoryStore();
  const fleet = createFleet({ store, clock });
  const stat = (q: string) => fleet.stat(new URLSearchParams(q));
  return { clock, store, fleet, stat };
}

describe('fleet aggregation', () => {
  it('sums each window over its slots, and rates over the time covered', async () => {
    const { clock, store, fleet, stat } = await setup();
    clock.advance(20 * 60_000);
    fleet.ingest({ id: 'a', service: 'products' }, report([edge('in', 'frontend', 'products', 100)]));
    clock.advance(5 * 60_000);
    fleet.ingest({ id: 'a', service: 'products' }, report([edge('in', 'frontend', 'products', 60)]));
    clock.advance(1000);
    const w10s = await stat('window=10s');
    const w1m = await stat('window=1m');
    const w10m = await stat('window=10m');
    const products = (b: typeof w10s) => b.services.find((s) => s.name === 'products');
    assert.equal(products(w10s)?.inbound?.requests, 60);
    assert.equal(products(w1m)?.inbound?.requests, 60);
    assert.equal(products(w10m)?.inbound?.requests, 160);
    // 10 m window: 160 requests over 600 s and the current slot's elapsed part.
    const covered = w10m.windowSeconds + ((clock.wall() % 10_000) / 1000);
    assert.equal(products(w10m)?.inbound?.rps, Math.round((160 / covered) * 1000) / 1000);
    await store.close();
  });

  it('computes quantiles by interpolating inside buckets, as histogram_quantile does', async () => {
    const { clock, store, fleet, stat } = await setup();
    clock.advance(60_000);
    // 100 requests in (10 ms, 25 ms], 100 in (50 ms, 75 ms]
    fleet.ingest({ id: 'a', service: 'products' }, report([edge('in', 'x', 'products', 100, 0, 2), edge('in', 'y', 'products', 100, 0, 4)]));
    const s = (await stat('window=1m')).services.find((x) => x.name === 'products');
    assert.equal(s?.inbound?.latencyMs.p50, 25); // rank 100 of 200 = top of the first bucket
    assert.equal(s?.inbound?.latencyMs.p95, 72.5); // 50 + 25 * (90/100)
    assert.equal(s?.inbound?.latencyMs.p99, 74.5);
    await store.close();
  });

  it('takes the instance service from the stream, never from the report', async () => {
    const { clock, store, fleet, stat } = await setup();
    clock.advance(60_000);
    fleet.ingest({ id: 'a', service: 'frontend' }, report([edge('out', 'admin', 'products', 10), edge('in', 'x', 'billing', 5)]));
    const body = await stat('window=1m');
    assert.deepEqual(body.edges.map((e) => `${e.from}->${e.to}`), ['frontend->products', 'x->frontend']);
    assert.equal(body.services.find((s) => s.name === 'billing'), undefined);
    await store.close();
  });

  it('marks an edge failing under 95 % success, and counts failures by outcome', async () => {
    const { clock, store, fleet, stat } = await setup();
    clock.advance(60_000);
    fleet.ingest({ id: 'a', service: 'frontend' }, report([edge('out', 'frontend', 'products', 100, 4), edge('out', 'frontend', 'ratings', 100, 6)]));
    const body = await stat('window=1m');
    assert.deepEqual(body.edges.map((e) => [e.to, e.successRate, e.failing, e.failures]), [['products', 0.96, false, { failure: 4 }], ['ratings', 0.94, true, { failure: 6 }]]);
    await store.close();
  });

  it('refuses a malformed report whole and says why', async () => {
    const { store, fleet } = await setup();
    const r = fleet.ingest({ id: 'a', service: 'frontend' }, { v: 1, interval: { from: 0, to: 0 }, bounds: B, edges: [{ ...edge('out', 'a', 'b', 1), requests: -1 }], destinations: [] });
    assert.equal(r.accepted, false);
    assert.match(r.accepted ? '' : r.reason, /edges\.0\.requests/);
    assert.equal(fleet.ingest({ id: 'a', service: 'frontend' }, 'nonsense').accepted, false);
    // Names end up in terminals and pages: no escape sequences, services are DNS labels.
    const escape = fleet.ingest({ id: 'a', service: 'frontend' }, report([edge('out', 'frontend', 'products', 1, 0, 2, 'x\u001b[2Jy')]));
    assert.match(escape.accepted ? '' : escape.reason, /edges\.0\.route: control characters/);
    assert.equal(fleet.ingest({ id: 'a', service: 'frontend' }, report([edge('out', 'frontend', 'Products!', 1)])).accepted, false);
    assert.deepEqual(fleet.counters, { accepted: 0, refused: 4 });
    // Unknown fields (a newer agent) are dropped, not refused.
    assert.equal(fleet.ingest({ id: 'a', service: 'frontend' }, { ...report([]), type: 'report', future: { x: 1 } }).accepted, true);
    await store.close();
  });

  it('forgets an instance that stopped reporting, and its series, after ten minutes', async () => {
    const { clock, store, fleet, stat } = await setup();
    clock.advance(60_000);
    for (let i = 0; i < 50; i++) fleet.ingest({ id: `i${i}`, service: 'products' }, report([edge('in', 'frontend', 'products', 1), edge('out', 'products', 'reviews', 1)]));
    assert.equal(fleet.size().instances, 50);
    const held = fleet.size().cells;
    assert.ok(held > 0);
    // One keeps reporting every 5 s; the other 49 left.
    for (let t = 0; t < 11 * 60_000; t += 5_000) {
      clock.advance(5_000);
      fleet.ingest({ id: 'i0', service: 'products' }, report([edge('in', 'frontend', 'products', 1), edge('out', 'products', 'reviews', 1)]));
    }
    const body = await stat('window=10m&service=products');
    assert.equal(fleet.size().instances, 1);
    assert.deepEqual(body.instances?.map((i) => i.id), ['i0']);
    assert.equal(body.reportingInstances, 1);
    // Cells are bounded by series x slots, whatever the number of reports (8 series per
    // instance here: 3 for its in edge, 5 for its out edge).
    assert.ok(fleet.size().cells <= 61 * 8, `${fleet.size().cells} cells`);
    clock.advance(11 * 60_000);
    await stat('window=10s');
    assert.deepEqual(fleet.size(), { cells: 0, instances: 0 });
    await store.close();
  });

  it('keeps the last endpoint list of a destination when a report leaves it out', async () => {
    const { clock, store, fleet, stat } = await setup();
    clock.advance(60_000);
    const dest = (list: boolean) => ({ service: 'reviews', breaker: 'open' as const, endpoints: { healthy: 1, ejected: 1 }, ...(list ? { endpointList: [{ id: '10.0.0.1:80', ejected: true, outstanding: 0, ewmaMs: 3, labels: {} }, { id: '10.0.0.2:80', ejected: false, outstanding: 1, ewmaMs: 4, labels: {} }] } : {}), ejections: 1, retries: 3, rateLimited: 0 });
    fleet.ingest({ id: 'a', service: 'products' }, { ...report([]), destinations: [dest(true)] });
    clock.advance(5_000);
    fleet.ingest({ id: 'a', service: 'products' }, { ...report([]), destinations: [dest(false)] });
    const d = (await stat('window=1m&service=products')).instances?.[0]?.destinations[0];
    assert.deepEqual(d?.endpointList.map((e) => [e.id, e.ejected]), [['10.0.0.1:80', true], ['10.0.0.2:80', false]]);
    assert.equal(d?.breaker, 'open');
    assert.equal(d?.ejections, 2, 'counters summed over the window');
    assert.equal(d?.retries, 6);
    await store.close();
  });

  it('gives per-service steps over ten minutes with series=true', async () => {
    const { clock, store, fleet, stat } = await setup();
    clock.advance(60_000 - (clock.wall() % 10_000));
    fleet.ingest({ id: 'a', service: 'products' }, report([edge('in', 'frontend', 'products', 50)]));
    clock.advance(10_000);
    fleet.ingest({ id: 'a', service: 'products' }, report([edge('in', 'frontend', 'products', 20)]));
    const s = (await stat('window=1m&series=true')).services.find((x) => x.name === 'products');
    assert.equal(s?.series?.t.length, 61);
    assert.deepEqual(s?.series?.rps.slice(-2), [5, 2]);
    assert.equal(s?.series?.successRate.at(-3), null);
    await store.close();
  });
});
