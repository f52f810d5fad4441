/**
 * What each hot-path contender costs in **instructions per request**, counted by valgrind
 * (cachegrind, no cache simulation): a figure the machine's load does not move, unlike req/s and
 * CPU time, which swing 10-20% between rounds on a shared VM.
 *
 * Per contender (bench/contenders.ts), bench/instructions-driver.ts runs under valgrind twice:
 * a warm-up of `--warm` requests then `--small` requests, and the same warm-up then `--large`.
 * Everything both runs share (Node's start, module loading, the JIT's warm-up, the clients'
 * setup and close) cancels in the difference, so
 *
 *   instructions per request = (I(large) − I(small)) / (large − small)
 *
 * counts the steady state: the client's JavaScript, undici, Node's net layer, the garbage
 * collector and the JIT's later work, up to the system call boundary (the kernel's side of a
 * socket write is not counted). The upstream (bench/upstream.ts) is a plain child process, not
 * under valgrind. The ratio baseline/mesh of these counts is what throughput would be on a
 * CPU-bound client with every instruction costing the same; it leaves out cache misses and
 * memory stalls (allocation shows up only as the GC's instructions), so it is a steady companion
 * to bench/run.ts's timed rounds, not a replacement.
 *
 *   npm run build && node --import tsx bench/instructions.ts [--only mesh,raw-pools]
 *       [--warm 4000] [--small 1000] [--large 5000] [--jobs 2]
 *   or: npm run bench -- instructions [...]
 *
 * Needs valgrind (`apt-get install -y valgrind`); without it, says so and exits 1. 10-20 min
 * with two jobs on 2 cores (valgrind runs Node ~50× slower).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startUpstream } from './spawn-upstream.js';
import { BASELINE_OF, CONTENDER_KEYS } from './contenders.js';
import type { ContenderKey } from './contenders.js';
import { benchArgs, machineLine } from './sidecar-env.js';

const { values: args } = parseArgs({
  args: benchArgs('instructions'),
  options: {
    only: { type: 'string' },
    warm: { type: 'string', default: '4000' },
    small: { type: 'string', default: '1000' },
    large: { type: 'string', default: '5000' },
    jobs: { type: 'string', default: '2' },
  },
});
const WARM = Number(args.warm);
const SMALL = Number(args.small);
const LARGE = Number(args.large);
const JOBS = Math.max(1, Number(args.jobs));
if (!(SMALL >= 0 && LARGE > SMALL && WARM >= 0)) throw new Error(`need 0 <= --small < --large and --warm >= 0, got ${SMALL}, ${LARGE}, ${WARM}`);
// raw-balanced is a reference in bench/run.ts, no goal's baseline: left out unless asked for.
const keys = (args.only === undefined ? CONTENDER_KEYS.filter((k) => k !== 'raw-balanced') : args.only.split(',')) as ContenderKey[];
for (const k of keys) if (!CONTENDER_KEYS.includes(k)) throw new Error(`--only: unknown contender "${k}" (known: ${CONTENDER_KEYS.join(', ')})`);
const driver = fileURLToPath(new URL('./instructions-driver.ts', import.meta.url));
/** A run longer than this is stuck: it is killed and the bench fails. */
const RUN_LIMIT_MS = 10 * 60_000;

/** Total instructions of one driver run under cachegrind. */
function countInstructions(key: ContenderKey, count: number, ports: readonly number[]): Promise<number> {
  const child = spawn('valgrind', ['--tool=cachegrind', '--cache-sim=no', '--cachegrind-out-file=/dev/null', process.execPath, '--import', 'tsx', driver, key, String(WARM), String(count), ports.join(',')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_LIMIT_MS);
  return new Promise((resolve, reject) => {
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const refs = /I\s+refs:\s+([\d,]+)/.exec(err);
      const done = /DONE (\d+)/.exec(out);
      if (code !== 0 || refs?.[1] === undefined || done === null) {
        reject(new Error(`${key} × ${count}: valgrind exited ${code}${done === null ? ', the driver did not finish' : ''}\n${err.slice(-2000)}`));
        return;
      }
      if (done[1] !== '0') {
        reject(new Error(`${key} × ${count}: ${done[1]} requests failed`));
        return;
      }
      const total = Number(refs[1].replaceAll(',', ''));
      console.log(`  ${key.padEnd(12)} ${String(count).padStart(5)} requests: ${total.toLocaleString('en-US')} instructions`);
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

const upstream = await startUpstream(3, Math.ceil((RUN_LIMIT_MS * keys.length * 2) / 1000));
try {
  console.log(`bench instructions: ${machineLine()}; ${keys.length} contenders, warm-up ${WARM}, then ${SMALL} and ${LARGE} requests, 32 in flight, ${JOBS} valgrind runs at once`);
  const tasks = keys.flatMap((k) => [SMALL, LARGE].map((n) => () => countInstructions(k, n, upstream.ports)));
  const t0 = Date.now();
  const totals = await pool(tasks, JOBS);
  const perRequest = new Map<ContenderKey, number>();
  keys.forEach((k, i) => perRequest.set(k, ((totals[2 * i + 1] as number) - (totals[2 * i] as number)) / (LARGE - SMALL)));
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
