/**
 * The control plane's store: commit and read latency (p50/p99) for the embedded store and for
 * etcd (one member and a 3-member cluster, real processes on 127.0.0.1 started by the tests'
 * helper), as the control plane uses them:
 *
 *   commit       one ~1 KiB resource put, conditional on its revision (an apply), one at a time
 *   commit x16   the same with 16 commits in flight (instances registering at once; the
 *                embedded store shares one fdatasync among the commits waiting for it)
 *   get          one key
 *   list         the 50 resources under /trellis/resources/
 *
 * Bounded by operation counts. Usage: node --import tsx bench/controlplane-store.ts [--quick]
 * [--no-etcd]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openEmbeddedStore } from '../src/controlplane/store/embedded-store.js';
import { openEtcdStore } from '../src/controlplane/store/etcd-store.js';
import type { Store } from '../src/controlplane/store/store.js';
import { findEtcd, startEtcd } from '../test/helpers/etcd.js';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, 'no-etcd': { type: 'boolean', default: false } } });
const scale = args.quick ? 0.2 : 1;
const N = { commit: Math.round(1000 * scale), concurrent: Math.round(2000 * scale), get: Math.round(5000 * scale), list: Math.round(500 * scale) };
const KEYS = 50;
const value = (i: number): unknown => ({ apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: `svc-${i % KEYS}` }, spec: { pad: 'x'.repeat(900), i } });

function pct(samples: number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] as number;
}

interface Row {
  store: string;
  op: string;
  n: number;
  p50: number;
  p99: number;
  perSec: number;
}

async function measure(store: string, op: string, n: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<Row> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const s = performance.now();
        await fn(i);
        lat.push(performance.now() - s);
      }
    }),
  );
  const wall = performance.now() - t0;
  return { store, op, n, p50: pct(lat, 0.5), p99: pct(lat, 0.99), perSec: (n / wall) * 1000 };
}

async function run(name: string, s: Store): Promise<Row[]> {
  const prefix = `/trellis/resources/Service/`;
  const revs = new Map<number, number>();
  for (let k = 0; k < KEYS; k++) revs.set(k, await s.commit([{ type: 'put', key: `${prefix}svc-${k}`, value: value(k) }]));
  const rows: Row[] = [];
  const conditional = async (i: number): Promise<void> => {
    const k = i % KEYS;
    revs.set(k, await s.commit([{ type: 'put', key: `${prefix}svc-${k}`, value: value(i), ifModRevision: revs.get(k) }]));
  };
  rows.push(await measure(name, 'commit', N.commit, 1, conditional));
  // In flight together: each key is written by one worker at a time (i % 16 spreads them), unconditionally.
  rows.push(await measure(name, 'commit x16', N.concurrent, 16, (i) => s.commit([{ type: 'put', key: `/trellis/instances/bench/${i % 200}`, value: value(i) }])));
  rows.push(await measure(name, 'get', N.get, 1, (i) => s.get(`${prefix}svc-${i % KEYS}`)));
  rows.push(await measure(name, 'list (50)', N.list, 1, () => s.list(prefix)));
  return rows;
}

const rows: Row[] = [];
const dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-bench-store-'));
try {
  const s = await openEmbeddedStore(path.join(dir, 'store'));
  rows.push(...(await run('embedded', s)));
  await s.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}

if (!args['no-etcd'] && findEtcd() !== undefined) {
  for (const size of [1, 3]) {
    const cluster = await startEtcd(size);
    try {
      const s = await openEtcdStore(cluster.endpoints);
      rows.push(...(await run(`etcd (${size} member${size > 1 ? 's' : ''})`, s)));
      await s.close();
    } finally {
      await cluster.stop();
    }
  }
} else if (!args['no-etcd']) {
  console.warn('etcd is not installed: measuring the embedded store only');
}

console.log(`\nStore latency on ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (ms; ops/s over the run)\n`);
console.log('| store | op | n | p50 ms | p99 ms | ops/s |');
console.log('|---|---|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.store} | ${r.op} | ${r.n} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${Math.round(r.perSec)} |`);
