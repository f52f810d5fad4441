/**
 * `npm run bench -- sidecar`: the comparison users ask for. The same closed-loop load (32 GETs
 * in flight) over each path of bench/sidecar-env.ts: direct (raw undici → upstream), two HAProxy
 * processes (one per side, plain and with mTLS between them), and Trellis with mTLS (mesh client
 * → `mesh.serve()` upstream, strict), plus the same mesh client without TLS to the plain server
 * (to split the mesh's layers from mTLS and the inbound side). Interleaved rounds (the order rotates each round), each
 * preceded by an unmeasured 300 ms of the same path; no forced GC.
 *
 * Reported per path: medians over rounds of req/s, p50/p99 and CPU µs per request of every
 * process it runs through (client, each proxy, upstream), and their sum. Prints a markdown
 * table; writes nothing. Bounded: about 5 × rounds × (seconds + 0.3) + 10 s; a watchdog ends
 * everything (children included) if it runs long.
 *
 * Usage: node --import tsx bench/sidecar.ts [--rounds N] [--seconds S] [--concurrency N]
 *        or: npm run bench -- sidecar [...]
 */
import { parseArgs } from 'node:util';
import { LatencyBuffer, median, runRound } from './measure.js';
import type { RoundResult } from './measure.js';
import { benchArgs, cpuUs, fmt, HAPROXY, machineLine, markdownTable, startEnv, guardEnv } from './sidecar-env.js';
import type { Env, Path } from './sidecar-env.js';

const { values: args } = parseArgs({
  args: benchArgs('sidecar'),
  options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '3' }, concurrency: { type: 'string', default: '32' }, warmup: { type: 'string', default: '1' } },
});
const ROUNDS = Number(args.rounds);
const ROUND_MS = Number(args.seconds) * 1000;
const WARMUP_MS = Number(args.warmup) * 1000;
const ROUND_WARMUP_MS = 300;
const CONCURRENCY = Number(args.concurrency);

const budgetMs = 5 * (ROUNDS * (ROUND_MS + ROUND_WARMUP_MS) + WARMUP_MS) + 30_000;
let env: Env | undefined;
const watchdog = guardEnv('sidecar', budgetMs, () => env);

interface Round {
  r: RoundResult;
  /** Connections the upstream accepted during the round (keep-alive holds: ~0 after warm-up). */
  conns: number;
  /** CPU µs per request of each process of the path, in `path.procs` order. */
  cpu: number[];
}

async function measured(path: Path, lat: LatencyBuffer, ms: number): Promise<Round> {
  const c0 = await env!.connections();
  const before = path.procs.map(cpuUs);
  const r = await runRound(path.call, CONCURRENCY, ms, lat);
  const cpu = path.procs.map((p, i) => (cpuUs(p) - (before[i] as number)) / Math.max(1, r.requests));
  const c1 = await env!.connections();
  return { r, cpu, conns: c1.plain + c1.mesh - c0.plain - c0.mesh };
}

/** The first error each path threw, to print with the results (errors are counted, not shown, by runRound). */
const firstError = new Map<string, string>();
function remembering(p: Path): Path {
  return {
    ...p,
    call: () =>
      p.call().catch((err: unknown) => {
        if (!firstError.has(p.key)) firstError.set(p.key, err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err));
        throw err;
      }),
  };
}

async function main(): Promise<void> {
  console.log(`sidecar bench: ${machineLine()}`);
  env = await startEnv(Math.ceil(budgetMs / 1000) + 30, { haproxyPlain: true, trellisPlain: true });
  if (env.haproxyMissing) {
    console.log(`\n*** ${HAPROXY} NOT FOUND: the HAProxy (sidecar) contenders are SKIPPED. Install Debian's haproxy to compare. ***\n`);
  }
  const lat = new LatencyBuffer();
  env.paths = env.paths.map(remembering);
  const rounds = new Map<string, Round[]>(env.paths.map((p) => [p.key, []]));
  console.log(`${env.paths.length} paths, concurrency ${CONCURRENCY}, warm-up ${WARMUP_MS / 1000} s each, ${ROUNDS} interleaved rounds × ${ROUND_MS / 1000} s`);
  for (const p of env.paths) {
    // Ramp up, so the first connections (and TLS handshakes) are not all opened at once.
    for (const c of [1, 4]) await runRound(p.call, c, 200, lat);
    const w = await runRound(p.call, CONCURRENCY, WARMUP_MS, lat);
    console.log(`  warm-up  ${p.key.padEnd(14)} ${fmt(w.rps).padStart(6)} req/s  ${w.errors} errors`);
  }
  for (let i = 0; i < ROUNDS; i++) {
    const order = env.paths.map((_, j) => env!.paths[(i + j) % env!.paths.length] as Path);
    for (const p of order) {
      await runRound(p.call, CONCURRENCY, ROUND_WARMUP_MS, lat);
      const m = await measured(p, lat, ROUND_MS);
      rounds.get(p.key)?.push(m);
      const cpu = p.procs.map((q, k) => `${q.name} ${fmt(m.cpu[k] ?? NaN, 1)}`).join(', ');
      console.log(`  round ${i + 1}  ${p.key.padEnd(14)} ${fmt(m.r.rps).padStart(6)} req/s  p50 ${fmt(m.r.p50Ms, 2)} ms  p99 ${fmt(m.r.p99Ms, 2)} ms  µs/req: ${cpu}  ${m.r.errors} errors, ${m.conns} new upstream connections`);
    }
  }

  const direct = median((rounds.get('direct') ?? []).map((x) => x.r.rps));
  const cell = (p: Path, name: string, rs: Round[]): string => {
    const k = p.procs.findIndex((q) => q.name === name);
    return k === -1 ? '—' : fmt(median(rs.map((x) => x.cpu[k] ?? NaN)), 1);
  };
  const body = env.paths.map((p) => {
    const rs = rounds.get(p.key) ?? [];
    const rps = median(rs.map((x) => x.r.rps));
    const proxies = p.procs.filter((q) => q.name.startsWith('proxy')).length > 0 ? fmt(median(rs.map((x) => p.procs.reduce((a, q, k) => a + (q.name.startsWith('proxy') ? (x.cpu[k] ?? 0) : 0), 0))), 1) : '—';
    const total = median(rs.map((x) => x.cpu.reduce((a, b) => a + b, 0)));
    return [
      p.key,
      fmt(rps),
      fmt(rps / direct, 2),
      fmt(median(rs.map((x) => x.r.p50Ms)), 2),
      fmt(median(rs.map((x) => x.r.p99Ms)), 2),
      cell(p, 'client', rs),
      cell(p, 'proxy-c', rs),
      cell(p, 'proxy-s', rs),
      proxies,
      cell(p, 'upstream', rs),
      fmt(total, 1),
      String(rs.reduce((a, x) => a + x.r.errors, 0)),
    ];
  });
  const head = ['path', 'req/s', 'x direct', 'p50 ms', 'p99 ms', 'client µs/req', 'proxy-c µs/req', 'proxy-s µs/req', 'both proxies', 'upstream µs/req', 'total µs/req', 'errors'];
  console.log(`\nmedians over ${ROUNDS} rounds (closed loop, ${CONCURRENCY} in flight):\n\n${markdownTable(head, body)}\n`);
  for (const p of env.paths) console.log(`- \`${p.key}\`: ${p.label}`);
  for (const [k, e] of firstError) console.log(`first error of ${k}: ${e}`);
  const per = (k: string): number[] => (rounds.get(k) ?? []).map((x) => x.r.rps);
  console.log(`\nreq/s per round: ${env.paths.map((p) => `${p.key} ${per(p.key).map((v) => fmt(v)).join('/')}`).join('; ')}`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`sidecar bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await env?.close();
  clearTimeout(watchdog);
  setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
}
