/**
 * The fleet view's cost at the control plane: 1,000 simulated instances (50 services of 20,
 * each instance calling 3 services on 2 routes and called by 3) report every 5 s for eleven
 * simulated minutes (the ten-minute ring full and turning), on an injected clock, in this
 * process. Reported: report size, CPU per report ingested, heap held by the aggregation at
 * steady state, and the time of `stat()` for the fleet and for one service.
 *
 * Usage: node --expose-gc --import tsx bench/fleet.ts [--instances N] [--minutes M]
 */
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { ManualClock } from '../src/core/clock.js';
import { createFleet } from '../src/controlplane/fleet/index.js';
import { MemoryStore } from '../src/controlplane/store/memory-store.js';
import { OTEL_HTTP_DURATION_BUCKETS } from '../src/observability/metrics.js';
import type { FleetEdgeReport, FleetReport } from '../src/controlplane-client/fleet-report.js';

const { values } = parseArgs({ options: { instances: { type: 'string' }, minutes: { type: 'string' } } });
const INSTANCES = Number(values.instances ?? 1000);
const MINUTES = Number(values.minutes ?? 11);
const SERVICES = 50;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

function edge(dir: 'in' | 'out', from: string, to: string, route: string, n: number, seed: number): FleetEdgeReport {
  const counts = OTEL_HTTP_DURATION_BUCKETS.map((_, i) => (i >= 1 && i <= 7 ? Math.floor((n / 7) * (1 + ((seed + i) % 3) / 10)) : 0));
  counts.push(0);
  const requests = counts.reduce((a, b) => a + b, 0);
  const failed = seed % 17 === 0 ? 2 : 0;
  return { dir, from, to, route, protocol: 'http', requests, outcomes: { success: requests - failed, ...(failed ? { failure: failed } : {}) }, status: { '2xx': requests - failed, ...(failed ? { '5xx': failed } : {}) }, latency: { counts, sum: requests * 0.021 } };
}

function reportOf(i: number, t: number): FleetReport {
  const s = i % SERVICES;
  const name = (k: number): string => `svc-${(k + SERVICES) % SERVICES}`;
  const edges: FleetEdgeReport[] = [];
  for (const d of [1, 2, 3]) for (const route of ['catalog', 'default']) edges.push(edge('out', name(s), name(s + d), route, 40, i + d + t));
  for (const d of [1, 2, 3]) edges.push(edge('in', name(s - d), name(s), 'unknown', 40, i + d + t));
  const destinations = [1, 2, 3].map((d) => ({
    service: name(s + d),
    breaker: 'closed' as const,
    endpoints: { healthy: 20, ejected: 0 },
    // Sent when it changed, else every 6th report (ENDPOINTS_EVERY): here every 6th.
    ...(Math.floor(t / 5000) % 6 === 0 ? { endpointList: Array.from({ length: 20 }, (_, k) => ({ id: `10.0.${d}.${k}:8080`, ejected: false, outstanding: k % 3, ewmaMs: 12.5, labels: { version: k % 2 ? 'v1' : 'v2' } })) } : {}),
    ejections: 0,
    retries: t % 7 === 0 ? 1 : 0,
    rateLimited: 0,
  }));
  return { v: 1, interval: { from: t - 5000, to: t }, bounds: OTEL_HTTP_DURATION_BUCKETS, edges, destinations, certificateNotAfter: t + 86_400_000 };
}

const sample = JSON.stringify({ type: 'report', ...reportOf(0, 0) });
const noEndpoints = JSON.stringify({ type: 'report', ...reportOf(0, 5000) });

const clock = new ManualClock(0, 1_800_000_000_000);
const store = new MemoryStore();
const fleet = createFleet({ store, clock });
gc();
const heapBefore = process.memoryUsage().heapUsed;
const rounds = (MINUTES * 60) / 5;
let cpuMicros = 0;
let ingested = 0;
const wall0 = performance.now();
for (let r = 0; r < rounds; r++) {
  clock.advance(5000);
  const t = clock.wall();
  // What the stream hands over: parsed JSON, as it arrives. Made before the clock starts, so
  // only the fleet's work is measured.
  const round = Array.from({ length: INSTANCES }, (_, i) => JSON.parse(JSON.stringify({ type: 'report', ...reportOf(i, t) })) as unknown);
  const c0 = process.cpuUsage();
  for (let i = 0; i < INSTANCES; i++) {
    fleet.ingest({ id: `inst-${i}`, service: `svc-${i % SERVICES}` }, round[i]);
    ingested++;
  }
  const c = process.cpuUsage(c0);
  cpuMicros += c.user + c.system;
}
const wall = performance.now() - wall0;
gc();
const heapAfter = process.memoryUsage().heapUsed;
/** Best of five (the first call pays for compilation). */
const time = async (q: string): Promise<number> => {
  let best = Infinity;
  for (let k = 0; k < 5; k++) {
    const t0 = performance.now();
    await fleet.stat(new URLSearchParams(q));
    best = Math.min(best, performance.now() - t0);
  }
  return best;
};
const statFleet1m = await time('window=1m');
const statFleet10m = await time('window=10m&series=true');
const statOne = await time('window=10m&service=svc-7&series=true');
const usPerReport = cpuMicros / ingested;
const out = {
  instances: INSTANCES,
  simulatedMinutes: MINUTES,
  reportsIngested: ingested,
  reportBytes: noEndpoints.length,
  reportBytesWithEndpointLists: sample.length,
  reportBytesWithEndpointListsGzip: gzipSync(sample).length,
  cpuMicrosPerReport: Math.round(usPerReport),
  cpuShareAt5sReports: `${((usPerReport * INSTANCES) / 5_000_000 * 100).toFixed(2)} % of one core`,
  heapHeldMiB: Math.round(((heapAfter - heapBefore) / 2 ** 20) * 10) / 10,
  heapPerInstanceKiB: Math.round((heapAfter - heapBefore) / INSTANCES / 1024),
  cells: fleet.size().cells,
  statMs: { fleet1m: Math.round(statFleet1m), fleet10mSeries: Math.round(statFleet10m), oneService10mSeries: Math.round(statOne) },
  wallSeconds: Math.round(wall / 100) / 10,
};
console.log(JSON.stringify(out, null, 2));
await store.close();
