/**
 * What each hot-path contender costs in **instructions per request**, counted by valgrind
 * (callgrind): a figure the machine's load does not move, unlike req/s and CPU time, which
 * swing 10-20% between rounds on a shared VM.
 *
 * Per contender (bench/contenders.ts), bench/instructions-driver.ts runs under callgrind: a
 * warm-up of `--warm` requests (the JIT's tier-up and the pools' connections happen there),
 * then this script zeroes callgrind's counters (`callgrind_control -z`), the driver sends
 * `--count` requests, one at a time by default, and the counters are dumped (`callgrind_control -d`):
 *
 *   instructions per request = instructions counted between zero and dump / count
 *
 * That is the client's JavaScript, undici, Node's net layer, the garbage collector and the JIT's
 * later work, in every thread of the process, up to the system call boundary (the kernel's side
 * of a socket write is not counted). The upstream (bench/upstream.ts) is a plain child process,
 * not under valgrind. The ratio baseline/mesh of these counts is what throughput would be on a
 * CPU-bound client with every instruction costing the same; it leaves out cache misses and
 * memory stalls (allocation shows only as the GC's instructions), so it is a steady companion to
 * bench/run.ts's timed rounds, not a replacement.
 *
 * One request in flight is the default because it is the repeatable setting: with 32 in flight,
 * how many responses each event-loop turn finds ready (one `epoll_wait` and one read per turn
 * however many sockets are ready) depends on how fast the upstream answers, and the raw
 * contenders' counts moved 20-25% between runs; one at a time, raw-pools and mesh repeat within
 * 1%. The undici.request() and fetch() paths still move ~10% between runs (their garbage makes
 * the GC's work lumpy).
 *
 *   npm run build && node --import tsx bench/instructions.ts [--only mesh,raw-pools]
 *       [--warm 2000] [--count 6000] [--jobs 2] [--concurrency 1] [--ablation] [--main-thread]
 *   or: npm run bench -- instructions [...]
 *
 * `--ablation`: raw-pools, the full `mesh` and the mesh with each of bench/bench-service.ts's
 * policies left out in turn (and all of them), so each feature's cost is a difference of counts
 * (full minus the variant without it) that the machine's load does not move. `--variants
 * raw-pools,full,none` runs only those (labels as printed; raw-pools and full are always kept).
 *
 * `--main-thread`: count only the main thread (callgrind `--separate-threads=yes`). Counted over
 * all threads, ~40% of a 6,000-request window is V8's background threads: the optimizing compiler
 * still at work after the warm-up, and concurrent marking when a major GC falls inside the window;
 * the raw-pools baseline moved 155k-195k per request between runs of one build that way. The main
 * thread alone (the JavaScript, undici, the event loop, the GC's main-thread share) moved ~8k
 * (99k-107k), less still without its GC functions (~2k). Timers that fire by wall time (the
 * breaker's window, the budget's) still make a loaded machine's mesh runs count more.
 *
 * Needs valgrind (`apt-get install -y valgrind`); without it, says so and exits 1. 5-10 min
 * with two jobs on 2 cores (callgrind runs Node ~50-100× slower).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startUpstream } from './spawn-upstream.js';
import { BASELINE_OF, CONTENDER_KEYS } from './contenders.js';
import { FULL_POLICY } from './bench-service.js';
import type { ContenderKey } from './contenders.js';
import { benchArgs, machineLine } from './sidecar-env.js';

const { values: args } = parseArgs({
  args: benchArgs('instructions'),
  options: {
    only: { type: 'string' },
    warm: { type: 'string', default: '2000' },
    // 6,000, not 2,000: one-off work after the warm-up (a full GC, late compilation) spread over
    // 2,000 requests moved a run by ~90k per request and made the ablation's rows disagree.
    count: { type: 'string', default: '6000' },
    jobs: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '1' },
    ablation: { type: 'boolean', default: false },
    variants: { type: 'string' },
    'main-thread': { type: 'boolean', default: false },
  },
});
const WARM = Number(args.warm);
const COUNT = Number(args.count);
const JOBS = Math.max(1, Number(args.jobs));
const CONCURRENCY = Math.max(1, Math.round(Number(args.concurrency)));
/** Count the main thread alone (see the header): V8's background threads (compiler, concurrent marking) left out. */
const MAIN_THREAD = args['main-thread'] === true;
if (!(COUNT > 0 && WARM >= 0)) throw new Error(`need --count > 0 and --warm >= 0, got ${COUNT}, ${WARM}`);
// raw-balanced is a reference in bench/run.ts, no goal's baseline: left out unless asked for.
const keys = (args.only === undefined ? CONTENDER_KEYS.filter((k) => k !== 'raw-balanced') : args.only.split(',')) as ContenderKey[];
for (const k of keys) if (!CONTENDER_KEYS.includes(k)) throw new Error(`--only: unknown contender "${k}" (known: ${CONTENDER_KEYS.join(', ')})`);
const driver = fileURLToPath(new URL('./instructions-driver.ts', import.meta.url));
/** A run longer than this is stuck: it is killed and the bench fails. */
const RUN_LIMIT_MS = 10 * 60_000;

/** Runs `cmd` to its end; rejects on a non-zero exit. */
function run(cmd: string, argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { stdio: 'ignore' });
    p.once('error', reject);
    p.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${argv.join(' ')} exited ${code}`))));
  });
}

/** Instructions of `count` requests of `key` (its mesh without the `drop` policies), after the warm-up, in one driver run under callgrind. */
function countInstructions(key: ContenderKey, count: number, ports: readonly number[], drop: readonly string[] = [], label: string = key): Promise<number> {
  const out = path.join(tmpdir(), `trellis-instructions-${process.pid}-${label}.out`);
  const child = spawn('valgrind', ['--tool=callgrind', ...(MAIN_THREAD ? ['--separate-threads=yes'] : []), `--callgrind-out-file=${out}`, process.execPath, '--import', 'tsx', driver, key, String(WARM), String(count), ports.join(','), String(CONCURRENCY), drop.join(',')], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString().slice(-4000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_LIMIT_MS);
  const pid = String(child.pid);
  return new Promise<number>((resolve, reject) => {
    let buf = '';
    let total: number | undefined;
    const fail = (e: Error): void => {
      child.kill('SIGKILL');
      reject(e);
    };
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('READY\n')) {
        buf = buf.replace('READY\n', '');
        // Zero the counters, then start the measured requests.
        run('callgrind_control', ['-z', pid]).then(() => child.stdin.write('go\n'), fail);
      }
      const done = /DONE (\d+)\n/.exec(buf);
      if (done !== null) {
        buf = '';
        if (done[1] !== '0') {
          fail(new Error(`${key}: ${done[1]} of ${count} requests failed`));
          return;
        }
        run('callgrind_control', ['-d', pid]).then(() => {
          // The dump after the zeroing is the first numbered file: its summary line is Ir.
          const dump = readdirSync(tmpdir()).map((f) => path.join(tmpdir(), f)).filter((f) => f.startsWith(`${out}.`));
          // With --main-thread, callgrind writes one file per thread (`.1-01` is the main thread's).
          const text = dump.filter((f) => !MAIN_THREAD || f.endsWith('-01')).map((f) => readFileSync(f, 'utf8')).join('\n');
          for (const f of [out, ...dump]) rmSync(f, { force: true });
          const m = /^summary:\s+(\d+)/m.exec(text);
          if (m?.[1] === undefined) throw new Error(`${key}: no callgrind dump with a summary in ${out}.*`);
          total = Number(m[1]);
          child.stdin.write('bye\n');
        }).catch(fail);
      }
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      rmSync(out, { force: true });
      if (code !== 0 || total === undefined) {
        reject(new Error(`${key}: valgrind exited ${code} before the count was read\n${err.slice(-2000)}`));
        return;
      }
      console.log(`  ${label.padEnd(12)} ${count} requests: ${total.toLocaleString('en-US')} instructions`);
      resolve(total);
    });
  });
}

/** Runs `tasks` with at most `jobs` at once, results in order. */
async function pool<T>(tasks: (() => Promise<T>)[], jobs: number): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await (tasks[i] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, worker));
  return results;
}

const probe = await new Promise<boolean>((resolve) => {
  const p = spawn('valgrind', ['--version'], { stdio: 'ignore' });
  p.once('error', () => resolve(false));
  p.once('close', (code) => resolve(code === 0));
});
if (!probe) {
  process.stderr.write('bench instructions: valgrind is not installed (apt-get install -y valgrind); nothing measured\n');
  process.exit(1);
}

/** The mesh's policies one at a time left out, and all of them: instructions per request, and each one's cost. */
async function ablation(ports: readonly number[]): Promise<void> {
  const policies = Object.keys(FULL_POLICY);
  type Variant = { label: string; key: ContenderKey; drop: string[] };
  const all: Variant[] = [
    { label: 'raw-pools', key: 'raw-pools', drop: [] },
    { label: 'full', key: 'mesh', drop: [] },
    ...policies.map((p) => ({ label: `no ${p}`, key: 'mesh' as const, drop: [p] })),
    { label: 'none', key: 'mesh', drop: policies },
  ];
  const variants = all.filter((v, i) => i < 2 || args.variants === undefined || args.variants.split(',').includes(v.label));
  console.log(`bench instructions --ablation: ${machineLine()}; ${variants.length} runs, warm-up ${WARM} requests, then ${COUNT} counted, ${CONCURRENCY} in flight, ${JOBS} valgrind runs at once${MAIN_THREAD ? "; main thread only" : ""}`);
  const t0 = Date.now();
  const totals = await pool(variants.map((v) => () => countInstructions(v.key, COUNT, ports, v.drop, v.label)), JOBS);
  const per = totals.map((t) => t / COUNT);
  const raw = per[0] as number;
  const full = per[1] as number;
  console.log(`\n| variant | instructions per request | over raw-pools | feature's cost (full − variant) |\n| :-- | --: | --: | --: |`);
  variants.forEach((v, i) => {
    const n = per[i] as number;
    const cost = i >= 2 ? Math.round(full - n).toLocaleString('en-US') : '';
    console.log(`| ${v.label} | ${Math.round(n).toLocaleString('en-US')} | ${i === 0 ? '' : Math.round(n - raw).toLocaleString('en-US')} | ${cost} |`);
  });
  console.log(`\n(${Math.round((Date.now() - t0) / 1000)} s; "none" keeps what every mesh call has: the timeout-free route, metrics, tracing, the balancer's default)`);
}

const upstream = await startUpstream(3, Math.ceil((RUN_LIMIT_MS * (args.ablation ? 8 : keys.length) * 2) / 1000));
if (args.ablation) {
  try {
    await ablation(upstream.ports);
  } finally {
    upstream.stop();
  }
  process.exit(0);
}
try {
  console.log(`bench instructions: ${machineLine()}; ${keys.length} contenders, warm-up ${WARM} requests, then ${COUNT} counted, ${CONCURRENCY} in flight, ${JOBS} valgrind runs at once${MAIN_THREAD ? "; main thread only" : ""}`);
  const tasks = keys.map((k) => () => countInstructions(k, COUNT, upstream.ports));
  const t0 = Date.now();
  const totals = await pool(tasks, JOBS);
  const perRequest = new Map<ContenderKey, number>();
  keys.forEach((k, i) => perRequest.set(k, (totals[i] as number) / COUNT));
  console.log(`\n| contender | instructions per request |\n| :-- | --: |`);
  for (const k of keys) console.log(`| ${k} | ${Math.round(perRequest.get(k) as number).toLocaleString('en-US')} |`);
  const pairs = Object.entries(BASELINE_OF).filter(([m, b]) => perRequest.has(m as ContenderKey) && perRequest.has(b as ContenderKey));
  if (pairs.length > 0) {
    console.log(`\n| mesh contender | its baseline | instructions added per request | baseline / mesh |\n| :-- | :-- | --: | --: |`);
    for (const [m, b] of pairs) {
      const mi = perRequest.get(m as ContenderKey) as number;
      const bi = perRequest.get(b as ContenderKey) as number;
      console.log(`| ${m} | ${b} | ${Math.round(mi - bi).toLocaleString('en-US')} | ${((bi / mi) * 100).toFixed(1)}% |`);
    }
  }
  console.log(`\n(${Math.round((Date.now() - t0) / 1000)} s)`);
} finally {
  upstream.stop();
}
