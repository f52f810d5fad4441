/**
 * `npm run bench -- latency`: latency under a fixed offered load, open loop, at 1,000 and 5,000
 * req/s, over three paths of bench/sidecar-env.ts: direct (raw undici → upstream), the HAProxy
 * pair with mTLS (the sidecar pattern) and Trellis with mTLS (mesh client → `mesh.serve()`).
 *
 * Open loop: request i is due at t0 + i / rate whatever happened to earlier ones, and its
 * latency runs from that due time, not from when it was actually sent — so a stalled client or
 * a slow path is charged for the requests it delayed (no coordinated omission). A timer starts
 * every request that is due (1 ms granularity). Requests in flight are capped (MAX_IN_FLIGHT);
 * a request due while the cap is reached is counted as `late`, not sent.
 *
 * Schedule: per rate, each path runs `--seconds` per round, interleaved (the order rotates each
 * round), after a 1 s unmeasured warm-up at that rate, each measured run preceded by 0.5 s
 * unmeasured (connections idle-closed meanwhile reopen); samples are pooled over rounds. Reported:
 * p50, p99, p99.9 and max from the due time, requests sent, errors, and CPU per request of
 * every process of the path (the cost of that rate, in µs per request and in cores).
 * Bounded: about 2 rates × 3 paths × rounds × (seconds + 1) + 15 s; a watchdog ends everything.
 *
 * Usage: node --import tsx bench/latency.ts [--rates 1000,5000] [--seconds S] [--rounds N]
 *        or: npm run bench -- latency [...]
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { benchArgs, cpuUs, fmt, HAPROXY, machineLine, markdownTable, startEnv, guardEnv } from './sidecar-env.js';
import type { Env, Path } from './sidecar-env.js';

const { values: args } = parseArgs({
  args: benchArgs('latency'),
  options: { rates: { type: 'string', default: '1000,5000' }, seconds: { type: 'string', default: '4' }, rounds: { type: 'string', default: '2' } },
});
const RATES = (args.rates ?? '').split(',').map(Number);
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);
const WARMUP_S = 1;
const MAX_IN_FLIGHT = 1000;
/** How long a round waits for its last requests after the schedule ends. */
const DRAIN_MS = 3000;
/** Unmeasured run at the same rate right before each measured one: reopens connections idle-closed meanwhile. */
const PRE_S = 0.5;

// Schedules (plus a second of slack per run) and the first warm-up; the watchdog allows a drain per run on top.
const runs = RATES.length * 3 * (ROUNDS * 2 + 1) + 3;
const budgetMs = (RATES.length * 3 * (ROUNDS * (SECONDS + PRE_S) + WARMUP_S) + 3) * 1000 + runs * (DRAIN_MS + 1000) + 30_000;
let env: Env | undefined;
const watchdog = guardEnv('latency', budgetMs, () => env);

interface Cell {
  lat: number[];
  sent: number;
  late: number;
  errors: number;
  /** CPU µs of each process of the path, summed over rounds. */
  cpu: number[];
  wallMs: number;
  firstError?: string;
}

/** One open-loop run of `path` at `rate` for `seconds`; latencies (ms from due time) into `cell` when given. */
function openLoop(path: Path, rate: number, seconds: number, cell: Cell | undefined): Promise<void> {
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const t0 = performance.now() + 2;
  let next = 0;
  let inFlight = 0;
  let finished = 0;
  return new Promise((resolve) => {
    let drainTimer: NodeJS.Timeout | undefined;
    const done = (): void => {
      if (drainTimer !== undefined) clearTimeout(drainTimer);
      resolve();
    };
    const settle = (): void => {
      finished++;
      inFlight--;
      if (next >= total && finished >= total) done();
    };
    const start = (due: number): void => {
      if (inFlight >= MAX_IN_FLIGHT) {
        if (cell !== undefined) cell.late++;
        finished++;
        return;
      }
      inFlight++;
      if (cell !== undefined) cell.sent++;
      path.call().then(
        (ok) => {
          if (cell !== undefined) {
            cell.lat.push(performance.now() - due);
            if (!ok) cell.errors++;
          }
          settle();
        },
        (err: unknown) => {
          if (cell !== undefined) {
            cell.lat.push(performance.now() - due);
            cell.errors++;
            cell.firstError ??= err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err);
          }
          settle();
        },
      );
    };
    const tick = (): void => {
      const now = performance.now();
      while (next < total && t0 + next * interval <= now) {
        start(t0 + next * interval);
        next++;
      }
      if (next < total) setTimeout(tick, Math.max(0, t0 + next * interval - performance.now()));
      else if (finished >= total) done();
      else drainTimer = setTimeout(done, DRAIN_MS);
    };
    setTimeout(tick, 2);
  });
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number;
}

async function main(): Promise<void> {
  console.log(`latency bench: ${machineLine()}`);
  env = await startEnv(Math.ceil(budgetMs / 1000) + 30, { haproxyPlain: false, trellisPlain: false });
  if (env.haproxyMissing) {
    console.log(`\n*** ${HAPROXY} NOT FOUND: the HAProxy (sidecar) path is SKIPPED. Install Debian's haproxy to compare. ***\n`);
  }
  const paths = env.paths;
  // Open the connections and warm the JIT of every path once, before any rate.
  for (const p of paths) await openLoop(p, 500, 1, undefined);
  const rows: string[][] = [];
  const errorsSeen: string[] = [];
  for (const rate of RATES) {
    const cells = new Map<string, Cell>(paths.map((p) => [p.key, { lat: [], sent: 0, late: 0, errors: 0, cpu: p.procs.map(() => 0), wallMs: 0 }]));
    for (const p of paths) await openLoop(p, rate, WARMUP_S, undefined);
    for (let r = 0; r < ROUNDS; r++) {
      for (let j = 0; j < paths.length; j++) {
        const p = paths[(r + j) % paths.length] as Path;
        const cell = cells.get(p.key) as Cell;
        await openLoop(p, rate, PRE_S, undefined);
        const before = p.procs.map(cpuUs);
        const w0 = performance.now();
        const sent0 = cell.sent;
        await openLoop(p, rate, SECONDS, cell);
        cell.wallMs += performance.now() - w0;
        p.procs.forEach((q, k) => {
          cell.cpu[k] = (cell.cpu[k] as number) + cpuUs(q) - (before[k] as number);
        });
        const recent = cell.lat.slice(-(cell.sent - sent0)).sort((a, b) => a - b);
        console.log(`  ${rate} req/s round ${r + 1}  ${p.key.padEnd(13)} p50 ${fmt(pct(recent, 0.5), 2)} ms  p99 ${fmt(pct(recent, 0.99), 2)} ms  p99.9 ${fmt(pct(recent, 0.999), 2)} ms  ${cell.errors} errors  ${cell.late} late`);
      }
    }
    for (const p of paths) {
      const c = cells.get(p.key) as Cell;
      if (c.firstError !== undefined) errorsSeen.push(`first error of ${p.key} at ${rate} req/s: ${c.firstError}`);
      const s = c.lat.sort((a, b) => a - b);
      const cpuPerReq = c.cpu.map((v) => v / Math.max(1, c.sent));
      const proxies = p.procs.reduce((a, q, k) => a + (q.name.startsWith('proxy') ? (cpuPerReq[k] as number) : 0), 0);
      const total = cpuPerReq.reduce((a, b) => a + b, 0);
      const cores = (v: number): string => fmt((v * rate) / 1e6, 2);
      const k = (name: string): number => p.procs.findIndex((q) => q.name === name);
      rows.push([
        `${rate}`,
        p.key,
        fmt(pct(s, 0.5), 2),
        fmt(pct(s, 0.99), 2),
        fmt(pct(s, 0.999), 2),
        fmt(s[s.length - 1] ?? NaN, 1),
        String(c.sent),
        String(c.errors + c.late),
        fmt(cpuPerReq[k('client')] ?? NaN, 1),
        p.procs.some((q) => q.name.startsWith('proxy')) ? `${fmt(proxies, 1)} (${cores(proxies)} cores)` : '—',
        fmt(cpuPerReq[k('upstream')] ?? NaN, 1),
        `${fmt(total, 1)} (${cores(total)} cores)`,
      ]);
    }
  }
  for (const e of errorsSeen) console.log(e);
  const head = ['req/s', 'path', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'sent', 'errors + late', 'client µs/req', 'proxies µs/req', 'upstream µs/req', 'total µs/req'];
  console.log(`\nopen loop, latency from each request's due time, ${ROUNDS} rounds × ${SECONDS} s pooled per cell:\n\n${markdownTable(head, rows)}\n`);
  for (const p of paths) console.log(`- \`${p.key}\`: ${p.label}`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`latency bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await env?.close();
  clearTimeout(watchdog);
  setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
}
