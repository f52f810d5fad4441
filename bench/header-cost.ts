/**
 * What the contract's two request headers cost, on each side of the wire. Every mesh request
 * carries `x-trellis-timeout-ms` (the remaining deadline) and `traceparent` (DESIGN.md: deadline
 * propagation and W3C trace context); raw undici sends neither. This runs, in paired rounds of one
 * process against the same upstream child (bench/upstream.ts):
 *
 *   raw          raw undici `Pool.request`, 3 Pools round-robin (bench/contenders.ts's raw-pools)
 *   raw+headers  the same, plus the two headers with values of the mesh's length (contenders.ts's
 *                raw-headers): a deadline and a traceparent taken from a ring made beforehand
 *                (so no id is generated here: only the headers' own cost is added)
 *   mesh         `mesh.http('products').request()`, the full stack (bench/bench-service.ts)
 *
 * and reports per contender the client's CPU per request, the **upstream process's** CPU per
 * request (from /proc/<pid>/stat, clock ticks) and throughput; per round, raw+headers and mesh
 * are paired with the raw round next to them. On a 2-core machine the client and the upstream
 * share the cores, so throughput falls with the upstream's cost too: a header the upstream must
 * parse (node:http builds `req.headers` and `rawHeaders` entries for it) lowers the ratio even
 * though the client's mesh did nothing more.
 *
 *   npm run build && node --import tsx bench/header-cost.ts [--rounds 8] [--seconds 2] [--concurrency 32]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Call } from './measure.js';
import { LatencyBuffer, median, runRound } from './measure.js';
import { startUpstream } from './spawn-upstream.js';
import { benchClients } from './contenders.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '32' },
  },
});
const ROUNDS = Number(args.rounds);
const ROUND_MS = Number(args.seconds) * 1000;
const CONCURRENCY = Number(args.concurrency);

/** User + system CPU of process `pid` in µs (Linux /proc; clock ticks of 10 ms). */
function processCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  return (ticks / 100) * 1e6;
}

const upstream = await startUpstream(3, Math.ceil((ROUNDS * 3 * (ROUND_MS + 400)) / 1000) + 60);
const pid = upstream.pid as number;
// All three are bench/contenders.ts's: raw-pools, raw-headers and mesh.
const clients = await benchClients(upstream.ports, () => undefined);
const calls: Record<string, Call> = {
  raw: clients.calls['raw-pools'],
  'raw+headers': clients.calls['raw-headers'],
  mesh: clients.calls.mesh,
};

interface Row {
  rps: number;
  clientUs: number;
  upstreamUs: number;
  errors: number;
}
const lat = new LatencyBuffer();
async function measure(name: string): Promise<Row> {
  const call = calls[name] as Call;
  await runRound(call, CONCURRENCY, 300, lat); // steady state: an unmeasured stretch first
  const u0 = processCpuUs(pid);
  const r = await runRound(call, CONCURRENCY, ROUND_MS, lat);
  const upstreamUs = (processCpuUs(pid) - u0) / r.requests;
  return { rps: r.rps, clientUs: r.cpuUsPerReq, upstreamUs, errors: r.errors };
}

const names = Object.keys(calls);
const rows: Record<string, Row[]> = Object.fromEntries(names.map((n) => [n, []]));
const paired: Record<string, { ratio: number[]; client: number[]; upstream: number[] }> = {
  'raw+headers': { ratio: [], client: [], upstream: [] },
  mesh: { ratio: [], client: [], upstream: [] },
};
try {
  for (const n of names) await runRound(calls[n] as Call, CONCURRENCY, 1500, lat); // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    // raw between the other two, their order alternating: each is paired with the raw round beside it.
    const order = round % 2 === 0 ? ['raw+headers', 'raw', 'mesh'] : ['mesh', 'raw', 'raw+headers'];
    const got: Record<string, Row> = {};
    for (const n of order) {
      const row = await measure(n);
      got[n] = row;
      (rows[n] as Row[]).push(row);
    }
    const raw = got.raw as Row;
    for (const n of Object.keys(paired)) {
      const r = got[n] as Row;
      const p = paired[n] as { ratio: number[]; client: number[]; upstream: number[] };
      p.ratio.push(r.rps / raw.rps);
      p.client.push(r.clientUs - raw.clientUs);
      p.upstream.push(r.upstreamUs - raw.upstreamUs);
    }
    console.log(`round ${round + 1}: ${order.map((n) => `${n} ${Math.round((got[n] as Row).rps)} req/s, client ${(got[n] as Row).clientUs.toFixed(1)} µs, upstream ${(got[n] as Row).upstreamUs.toFixed(1)} µs`).join('; ')}`);
  }
} finally {
  await clients.close();
  upstream.stop();
}

const f = (x: number, d = 1): string => x.toFixed(d);
console.log(`\nmedians over ${ROUNDS} rounds of ${ROUND_MS / 1000} s, ${CONCURRENCY} in flight\n`);
console.log('| contender | req/s | client CPU µs/req | upstream CPU µs/req | errors |\n| :-- | --: | --: | --: | --: |');
for (const n of names) {
  const rs = rows[n] as Row[];
  console.log(`| ${n} | ${Math.round(median(rs.map((r) => r.rps)))} | ${f(median(rs.map((r) => r.clientUs)))} | ${f(median(rs.map((r) => r.upstreamUs)))} | ${rs.reduce((s, r) => s + r.errors, 0)} |`);
}
console.log('\n| against raw, paired rounds | throughput ratio (median, range) | client CPU added µs | upstream CPU added µs |\n| :-- | --: | --: | --: |');
for (const [n, p] of Object.entries(paired)) {
  console.log(`| ${n} | ${f(median(p.ratio) * 100)}% (${f(Math.min(...p.ratio) * 100)}-${f(Math.max(...p.ratio) * 100)}%) | ${f(median(p.client))} | ${f(median(p.upstream))} |`);
}
