/**
 * `npm run bench`: what the mesh costs a caller, as ratios against raw undici.
 *
 * Three upstream node:http servers run in a child process (bench/upstream.ts), so their CPU is
 * not charged to the client. In this process, each contender (bench/contenders.ts: raw-pools,
 * raw-balanced, mesh, raw-request, mesh-request, raw-fetch, mesh-fetch) drives the same fixed
 * concurrency of GET requests at them, in interleaved rounds, after one warm-up round each. Each
 * mesh contender runs right next to its own baseline (raw-pools/mesh, raw-request/mesh-request,
 * raw-fetch/mesh-fetch), the pair's order alternating every round and the pairs' order rotating,
 * so each round gives one ratio measured within a few seconds — the machine's slow swings (other
 * VMs, CPU steal) hit both sides of a pair alike.
 *
 * Reported per contender: medians over rounds of req/s, p50/p99 latency and client CPU µs per
 * request; per goal, the median over rounds of each round's paired ratio (and CPU difference),
 * with their range and how many rounds met the goal. Writes docs/benchmarks.md unless
 * --no-write. Bounded: ~2.5 min by default, ~35 s with --quick; a watchdog ends everything
 * (child included) if it ever runs long. `npm run bench -- instructions`: the same contenders'
 * instructions per request under valgrind (bench/instructions.ts), which the machine's load
 * does not move.
 *
 * Usage: node --import tsx bench/run.ts [--quick] [--rounds N] [--seconds S] [--warmup S]
 *        [--concurrency N] [--no-write]
 */
import os from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LatencyBuffer, median, runRound } from './measure.js';
import type { Call, RoundResult } from './measure.js';
import { startUpstream } from './spawn-upstream.js';
import type { Upstream } from './spawn-upstream.js';
import { benchClients, CONTENDER_KEYS, LABELS } from './contenders.js';
import type { BenchClients } from './contenders.js';

// `npm run bench -- overload`: the overload benchmark instead of the hot-path one.
if (process.argv[2] === 'overload') {
  await import('./overload.js');
  process.exit(0);
}
// `npm run bench -- net`: the connection-level edges (mesh.connect, mesh.agent) against raw.
if (process.argv[2] === 'net') {
  await import('./net.js');
  process.exit(0);
}
// `npm run bench -- sidecar | latency | memory`: the sidecar comparison, open-loop latency, memory.
if (process.argv[2] === 'sidecar') await import('./sidecar.js').then(() => process.exit(process.exitCode ?? 0));
if (process.argv[2] === 'latency') await import('./latency.js').then(() => process.exit(process.exitCode ?? 0));
if (process.argv[2] === 'memory') await import('./memory.js').then(() => process.exit(process.exitCode ?? 0));
if (process.argv[2] === 'instructions') await import('./instructions.js').then(() => process.exit(process.exitCode ?? 0));
// `npm run bench -- grpc [--rounds N]`: gRPC unary through the mesh against a plain channel (bench/grpc.ts).
if (process.argv[2] === 'grpc') await import('./grpc.js').then(() => process.exit(process.exitCode ?? 0));
// `npm run bench -- controlplane`: the control plane's push fan-out, memory and reconnect storm.
if (process.argv[2] === 'controlplane') {
  await import('./controlplane-fanout.js');
  process.exit(0);
}

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    concurrency: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
});

function numberArg(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got "${value}"`);
  return n;
}

const quick = args.quick ?? false;
const ROUNDS = Math.round(numberArg(args.rounds, quick ? 2 : 8, 'rounds'));
const ROUND_MS = numberArg(args.seconds, quick ? 1.5 : 2, 'seconds') * 1000;
const WARMUP_MS = numberArg(args.warmup, quick ? 1 : 1.5, 'warmup') * 1000;
const CONCURRENCY = Math.round(numberArg(args.concurrency, 32, 'concurrency'));
const WRITE = !(args['no-write'] ?? false);
/** The hot-path goals: mesh.http() with the full stack at >= 0.90 of raw, <= 10 µs added CPU. */
const TARGET_THROUGHPUT = 0.9;
const TARGET_ADDED_CPU_US = 10;
/** fetch() and undici.request() through mesh.dispatcher: >= 0.95 of the same call without the mesh. */
const TARGET_DISPATCHER = 0.95;
/** How many contenders run (for the watchdog's bound). */
const CONTENDERS = 7;
/** Unmeasured run of a contender right before each of its measured rounds (steady state). */
const ROUND_WARMUP_MS = 300;

interface Contender {
  key: string;
  label: string;
  call: Call;
  rounds: RoundResult[];
}

// No forced GC between rounds: a full GC throws away V8's optimized code, so the mesh paid to
// recompile inside every measured round (60-70 deopts per round against 0-4 without). Each
// round is instead preceded by a short unmeasured run of the same contender, so what is
// measured is the steady state, and one contender's garbage is mostly collected on its own time.

const expectedMs = (CONTENDERS * (ROUNDS * (ROUND_MS + ROUND_WARMUP_MS) + WARMUP_MS)) + 10_000;
let upstream: Upstream | undefined;
const watchdog = setTimeout(() => {
  process.stderr.write(`bench: still running after ${Math.round((expectedMs + 30_000) / 1000)} s; giving up\n`);
  upstream?.stop();
  process.exit(1);
}, expectedMs + 30_000);
process.once('SIGINT', () => {
  upstream?.stop();
  process.exit(130);
});
process.once('SIGTERM', () => {
  upstream?.stop();
  process.exit(143);
});

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const pct = (n: number): string => `${fmt(n * 100, 1)}%`;

interface Summary {
  key: string;
  label: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerReq: number;
  cpuShare: number;
  requests: number;
  errors: number;
}

function summarize(c: Contender): Summary {
  const m = (f: (r: RoundResult) => number): number => median(c.rounds.map(f));
  return {
    key: c.key,
    label: c.label,
    rps: m((r) => r.rps),
    p50Ms: m((r) => r.p50Ms),
    p99Ms: m((r) => r.p99Ms),
    cpuUsPerReq: m((r) => r.cpuUsPerReq),
    cpuShare: m((r) => r.cpuShare),
    requests: c.rounds.reduce((a, r) => a + r.requests, 0),
    errors: c.rounds.reduce((a, r) => a + r.errors, 0),
  };
}

const HEAD = ['contender', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'client CPU', 'errors'];

function rows(summaries: Summary[]): string[][] {
  return summaries.map((s) => [s.key, fmt(s.rps), fmt(s.p50Ms, 2), fmt(s.p99Ms, 2), fmt(s.cpuUsPerReq, 1), pct(s.cpuShare), String(s.errors)]);
}

function textTable(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

function markdownTable(head: string[], body: string[][]): string {
  const align = head.map((_, i) => (i === 0 ? ':--' : '--:'));
  return [head, align, ...body].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

async function main(): Promise<void> {
  upstream = await startUpstream(3, Math.ceil((expectedMs + 60_000) / 1000));
  let clients: BenchClients | undefined;
  try {
    clients = await benchClients(upstream.ports, (m) => process.stderr.write(`[trellis] ${m}\n`));
    const { mesh, calls } = clients;
    const contenders: Contender[] = CONTENDER_KEYS.map((key) => ({ key, label: LABELS[key], call: calls[key], rounds: [] }));

    const lat = new LatencyBuffer();
    console.log(`bench: node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}`);
    console.log(`bench: ${contenders.length} contenders, concurrency ${CONCURRENCY}, warm-up ${WARMUP_MS / 1000} s each, ${ROUNDS} rounds × ${ROUND_MS / 1000} s each${quick ? ' (quick)' : ''}`);
    for (const c of contenders) {
      const w = await runRound(c.call, CONCURRENCY, WARMUP_MS, lat);
      console.log(`  warm-up  ${c.key.padEnd(12)} ${fmt(w.rps).padStart(7)} req/s  ${w.errors} errors`);
    }
    const byKey = (k: string): Contender => contenders.find((c) => c.key === k) as Contender;
    // Each pair runs back to back, its order alternating by round; the units' order rotates.
    // raw-headers runs beside raw-pools too (raw-pools in the middle of the three, its order alternating).
    const units: Contender[][] = [[byKey('raw-headers'), byKey('raw-pools'), byKey('mesh')], [byKey('raw-balanced')], [byKey('raw-request'), byKey('mesh-request')], [byKey('raw-fetch'), byKey('mesh-fetch')]];
    for (let r = 0; r < ROUNDS; r++) {
      const order = units.map((_, i) => units[(i + r) % units.length] as Contender[]).flatMap((u) => (r % 2 === 1 ? [...u].reverse() : u));
      for (const c of order) {
        await runRound(c.call, CONCURRENCY, ROUND_WARMUP_MS, lat);
        const result = await runRound(c.call, CONCURRENCY, ROUND_MS, lat);
        c.rounds.push(result);
        console.log(`  round ${r + 1}  ${c.key.padEnd(12)} ${fmt(result.rps).padStart(7)} req/s  p50 ${fmt(result.p50Ms, 2)} ms  p99 ${fmt(result.p99Ms, 2)} ms  ${fmt(result.cpuUsPerReq, 1)} µs/req  ${result.errors} errors`);
      }
    }

    const summaries = contenders.map(summarize);
    const by = (k: string): Summary => summaries.find((s) => s.key === k) as Summary;
    const raw = by('raw-pools');
    const balancedS = by('raw-balanced');
    const meshS = by('mesh');
    const meshRequest = by('mesh-request');
    const http = paired(byKey('raw-pools'), byKey('mesh'));
    const req = paired(byKey('raw-request'), byKey('mesh-request'));
    const fet = paired(byKey('raw-fetch'), byKey('mesh-fetch'));
    // The contract's two request headers alone, and the mesh beyond them (rounds of one unit).
    const headersOnly = paired(byKey('raw-pools'), byKey('raw-headers'));
    const beyondHeaders = paired(byKey('raw-headers'), byKey('mesh'));
    const throughput = http.ratio;
    const addedCpu = http.cpu;
    const requestRatio = req.ratio;
    const fetchRatio = fet.ratio;
    const throughputMet = throughput >= TARGET_THROUGHPUT;
    const cpuMet = addedCpu <= TARGET_ADDED_CPU_US;
    const svc = mesh.inspect().services.find((s) => s.name === 'products');

    const table = textTable(HEAD, rows(summaries));
    const line = (name: string, p: PairStats, goal: number, withCpuGoal = false): string =>
      `${name.padEnd(27)} ${pct(p.ratio)} (rounds ${pct(p.ratioMin)}-${pct(p.ratioMax)}, ${p.ratioMet(goal)}/${p.n} >= ${goal * 100}%), CPU ${fmt(p.cpu, 1)} µs (rounds ${fmt(p.cpuMin, 1)} to ${fmt(p.cpuMax, 1)}${withCpuGoal ? `, ${p.cpuMet(TARGET_ADDED_CPU_US)}/${p.n} <= ${TARGET_ADDED_CPU_US} µs` : ''})`;
    const ratios = [
      'paired rounds (each mesh round against the baseline round run next to it; medians of those):',
      line('mesh / raw-pools', http, TARGET_THROUGHPUT, true),
      line('mesh-request / raw-request', req, TARGET_DISPATCHER),
      line('mesh-fetch / raw-fetch', fet, TARGET_DISPATCHER),
      `goals: mesh.http() >= ${TARGET_THROUGHPUT * 100}% ${throughputMet ? 'met' : 'not yet'}, <= ${TARGET_ADDED_CPU_US} µs ${cpuMet ? 'met' : 'not yet'}; undici.request() >= ${TARGET_DISPATCHER * 100}% ${requestRatio >= TARGET_DISPATCHER ? 'met' : 'not yet'}; fetch() >= ${TARGET_DISPATCHER * 100}% ${fetchRatio >= TARGET_DISPATCHER ? 'met' : 'not yet'}`,
      `raw-headers / raw-pools        ${pct(headersOnly.ratio)}, CPU ${fmt(headersOnly.cpu, 1)} µs (the two headers every mesh request carries, alone)`,
      `mesh / raw-headers             ${pct(beyondHeaders.ratio)}, CPU ${fmt(beyondHeaders.cpu, 1)} µs (the mesh beyond its headers)`,
      `mesh / raw-balanced (medians)   ${pct(meshS.rps / balancedS.rps)}, CPU ${fmt(meshS.cpuUsPerReq - balancedS.cpuUsPerReq, 1)} µs`,
      `mesh-request / raw-pools        ${pct(meshRequest.rps / raw.rps)}, CPU ${fmt(meshRequest.cpuUsPerReq - raw.cpuUsPerReq, 1)} µs`,
    ];
    console.log(`\nmedians over ${ROUNDS} rounds:\n${table}\n\n${ratios.join('\n')}`);
    if (svc !== undefined) {
      console.log(`mesh counters: ${svc.counters.requests} requests, ${svc.counters.retries} retries, breaker ${svc.breaker}`);
    }

    if (WRITE) {
      const file = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));
      writeFileSync(file, markdown({ summaries, contenders, http, req, fet, headersOnly, beyondHeaders, throughputMet, cpuMet, stack: svc?.stack, counters: svc?.counters }) + handWritten(file));
      console.log(`wrote ${file}`);
    }
  } finally {
    await clients?.close();
    upstream.stop();
  }
}

/** A mesh contender against its baseline, round by round (each pair ran back to back): medians, ranges, rounds meeting a goal. */
interface PairStats {
  readonly n: number;
  readonly ratio: number;
  readonly ratioMin: number;
  readonly ratioMax: number;
  readonly cpu: number;
  readonly cpuMin: number;
  readonly cpuMax: number;
  /** Rounds whose throughput ratio is at least `goal`. */
  ratioMet(goal: number): number;
  /** Rounds whose added CPU per request is at most `goal` µs. */
  cpuMet(goal: number): number;
}

function paired(base: Contender, mesh: Contender): PairStats {
  const ratios = mesh.rounds.map((m, i) => m.rps / (base.rounds[i] as RoundResult).rps);
  const cpus = mesh.rounds.map((m, i) => m.cpuUsPerReq - (base.rounds[i] as RoundResult).cpuUsPerReq);
  return {
    n: ratios.length,
    ratio: median(ratios),
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
    cpu: median(cpus),
    cpuMin: Math.min(...cpus),
    cpuMax: Math.max(...cpus),
    ratioMet: (goal) => ratios.filter((x) => x >= goal).length,
    cpuMet: (goal) => cpus.filter((x) => x <= goal).length,
  };
}

interface Report {
  summaries: Summary[];
  contenders: Contender[];
  http: PairStats;
  req: PairStats;
  fet: PairStats;
  /** raw-headers against raw-pools, and mesh against raw-headers. */
  headersOnly: PairStats;
  beyondHeaders: PairStats;
  throughputMet: boolean;
  cpuMet: boolean;
  stack: string | undefined;
  counters: { requests: number; retries: number; budgetExhausted: number } | undefined;
}

/** Marks where docs/benchmarks.md turns hand-written (other benches' results): kept by every rewrite. */
const HAND_WRITTEN = '<!-- Written by hand from here on: bench/run.ts keeps everything below this line. -->';

/** The hand-written tail of the current file, from the marker on ('' when there is none). */
function handWritten(file: string): string {
  let old: string;
  try {
    old = readFileSync(file, 'utf8');
  } catch {
    return '';
  }
  const at = old.indexOf(HAND_WRITTEN);
  return at === -1 ? '' : `\n${old.slice(at)}`;
}

function markdown(r: Report): string {
  const cpus = os.cpus();
  const date = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const perRound = r.contenders.map((c) => [c.key, ...c.rounds.map((x) => fmt(x.rps))]);
  const roundCount = r.contenders[0]?.rounds.length ?? 0;
  const roundHead = ['contender', ...Array.from({ length: roundCount }, (_, i) => `round ${i + 1}`)];
  return `# Benchmarks

What the mesh costs a caller, measured against raw undici. Generated by \`npm run bench\`
(bench/run.ts); rerun it rather than editing this file.

- Date: ${date}${quick ? ' — **quick run** (`--quick`): indicative only' : ''}
- Node.js: ${process.version} (${process.platform} ${os.release()}, ${process.arch})
- Machine: ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM

## Method

- Upstream: 3 node:http servers on 127.0.0.1 answering \`200 {"ok":true}\` (keep-alive), in a
  **child process** (bench/upstream.ts), so their CPU is not counted against the client.
- Load: closed loop, ${CONCURRENCY} requests in flight, \`GET /\`, every response body consumed
  (\`body.dump()\`). All contenders run in the same client process.
- Schedule: one ${WARMUP_MS / 1000} s warm-up round per contender, then ${roundCount} rounds of ${ROUND_MS / 1000} s per
  contender, **interleaved and paired**: each mesh contender runs right next to its baseline
  (raw-pools/mesh, raw-request/mesh-request, raw-fetch/mesh-fetch; raw-headers beside raw-pools
  too), the pair's order alternating every round and the order of the pairs rotating, so no contender always runs first or after
  the same neighbour. Steady state:
  each measured round is preceded by ${ROUND_WARMUP_MS} ms of the same contender, unmeasured, and no GC is
  forced (a forced full GC discards V8's compiled code, so the mesh paid to recompile inside
  every measured round; the same build measured 0.40 of raw with forced GC, 0.48-0.56 without).
- Latency: each request timed with \`performance.now()\` into a preallocated \`Float64Array\`;
  p50/p99 are nearest-rank percentiles per round.
- CPU: \`process.cpuUsage()\` (user + system) delta over the round divided by the requests
  completed. "client CPU" is that CPU time over wall time (100% = one core busy): below 100%
  the client is not the bottleneck, and throughput is bounded by the upstream process.
- Reported: the **median over rounds** of each metric; the goals, from paired rounds (below).
- Contenders:
${r.summaries.map((s) => `  - \`${s.key}\` — ${s.label}`).join('\n')}
- Baseline: \`raw-pools\`. The mesh's transport is also one undici \`Pool\` per endpoint, so the
  difference between \`raw-pools\` and \`mesh\` is exactly the cost of the mesh's layers.
  \`BalancedPool\` is shown for reference: it adds its own weighting logic and is not what the
  mesh builds on. The dispatcher path has its own baselines: \`raw-request\` and \`raw-fetch\`
  are the same calls (\`undici.request()\`, Node's \`fetch()\`) through undici's default \`Agent\`
  to the 3 upstream URLs round-robin, so \`mesh-request\` and \`mesh-fetch\` differ from them
  only by \`mesh.dispatcher\` (and the service name in the URL).
- The mesh config (one Service, three static endpoints):
  \`loadBalancer: ewma\`, \`timeout: 2s\`, \`retries: { attempts: 3, perTryTimeout: 500ms,
  on: [connect-failure, reset, gateway-error], backoff: { base: 25ms, max: 250ms },
  budget: { ratio: 0.2, minPerSecond: 10 } }\`, \`circuitBreaker: { errorThresholdPercent: 50,
  volumeThreshold: 20, resetTimeout: 5s }\`, \`outlierDetection: { consecutiveFailures: 5,
  ejectionTime: 10s, maxEjectedPercent: 50 }\`.${r.stack !== undefined ? `\n- The stack, as \`mesh.inspect()\` describes it:\n\n\`\`\`\n${r.stack}\n\`\`\`` : ''}

## Results (medians over rounds)

${markdownTable(HEAD, rows(r.summaries))}
${r.counters !== undefined ? `\nThe mesh counted ${r.counters.requests} requests (both mesh contenders, warm-up included), ${r.counters.retries} retries, ${r.counters.budgetExhausted} refused by the budget.\n` : ''}
## Goals and where the mesh stands

The reason to pick an in-process mesh is cost, so the project holds itself to these goals
(issue 11). Each is judged on **paired rounds**: every round runs the mesh contender right next
to its own baseline, so a round gives one ratio and one CPU difference measured within seconds of
each other; the figure is the median over rounds, the range and the count of rounds that met the
goal are beside it. On this shared 2-core VM a contender's throughput moves by 10-20% between
rounds of one run, more than the goals' margins: read the range and the count, not one number.

| goal | median of paired rounds | range over rounds | rounds meeting it | status |
| :-- | --: | --: | --: | :-: |
| \`mesh.http()\` throughput >= ${TARGET_THROUGHPUT * 100}% of raw undici \`Pool\`s | ${pct(r.http.ratio)} | ${pct(r.http.ratioMin)}-${pct(r.http.ratioMax)} | ${r.http.ratioMet(TARGET_THROUGHPUT)}/${r.http.n} | ${r.throughputMet ? 'met' : 'not yet'} |
| \`mesh.http()\` added client CPU per request <= ${TARGET_ADDED_CPU_US} µs | ${fmt(r.http.cpu, 1)} µs | ${fmt(r.http.cpuMin, 1)} to ${fmt(r.http.cpuMax, 1)} µs | ${r.http.cpuMet(TARGET_ADDED_CPU_US)}/${r.http.n} | ${r.cpuMet ? 'met' : 'not yet'} |
| \`undici.request()\` through \`mesh.dispatcher\` >= ${TARGET_DISPATCHER * 100}% of it through \`Agent\` | ${pct(r.req.ratio)} (${fmt(r.req.cpu, 1)} µs added) | ${pct(r.req.ratioMin)}-${pct(r.req.ratioMax)} | ${r.req.ratioMet(TARGET_DISPATCHER)}/${r.req.n} | ${r.req.ratio >= TARGET_DISPATCHER ? 'met' : 'not yet'} |
| \`fetch()\` through \`mesh.dispatcher\` >= ${TARGET_DISPATCHER * 100}% of it through \`Agent\` | ${pct(r.fet.ratio)} (${fmt(r.fet.cpu, 1)} µs added) | ${pct(r.fet.ratioMin)}-${pct(r.fet.ratioMax)} | ${r.fet.ratioMet(TARGET_DISPATCHER)}/${r.fet.n} | ${r.fet.ratio >= TARGET_DISPATCHER ? 'met' : 'not yet'} |

The two \`mesh.http()\` goals ask different things of a client that is CPU-bound: throughput
ratio is about raw CPU / (raw CPU + added CPU), so with raw \`Pool.request\` at ${fmt(median(r.contenders.find((c) => c.key === 'raw-pools')?.rounds.map((x) => x.cpuUsPerReq) ?? []), 1)} µs per request
here, >= ${TARGET_THROUGHPUT * 100}% needs about ${fmt(median(r.contenders.find((c) => c.key === 'raw-pools')?.rounds.map((x) => x.cpuUsPerReq) ?? []) * (1 / TARGET_THROUGHPUT - 1), 1)} µs added at most, well under the ${TARGET_ADDED_CPU_US} µs
CPU goal. Of that, the two request headers every mesh request carries (\`x-trellis-timeout-ms\`
and \`traceparent\`) take their share before any policy: \`raw-headers\` (raw \`Pool\`s sending
the same two headers) measured ${pct(r.headersOnly.ratio)} of \`raw-pools\` (${fmt(r.headersOnly.cpu, 1)} µs added, paired rounds;
range ${pct(r.headersOnly.ratioMin)}-${pct(r.headersOnly.ratioMax)}), and \`mesh\` ${pct(r.beyondHeaders.ratio)} of \`raw-headers\` (${fmt(r.beyondHeaders.cpu, 1)} µs:
the whole stack beyond its headers; range ${pct(r.beyondHeaders.ratioMin)}-${pct(r.beyondHeaders.ratioMax)}). Where the added CPU goes now: \`node --import tsx bench/path-profile.ts --path http\`
(per function, mesh − raw, in one process).

## Throughput per round (req/s)

${markdownTable(roundHead, perRound)}

## Reproduce and profile

\`\`\`sh
npm run bench                 # ~2.5 min; writes this file
npm run bench -- --quick      # ~35 s, indicative only
npm run bench -- --rounds 10 --seconds 3 --concurrency 64 --no-write
npm run bench -- instructions # instructions per request under valgrind (~10 min): load-proof
\`\`\`

Where the mesh's CPU goes: \`bench/hotpath.ts\` drives one contender alone (the mesh by
default, \`--target raw\` for the baseline), so a V8 CPU profile of each shows one request path
and the two can be diffed. Open the larger \`.cpuprofile\` of each run (the main thread; the
smaller one is tsx's loader thread) in Chrome DevTools → Performance, or VS Code:

\`\`\`sh
npm run build
node --cpu-prof --cpu-prof-dir=.trellis-tmp/prof --import tsx bench/hotpath.ts --seconds 10
node --cpu-prof --cpu-prof-dir=.trellis-tmp/prof-raw --import tsx bench/hotpath.ts --seconds 10 --target raw
\`\`\`

Numbers from a shared or 2-core machine are noisy (client and upstream compete for cores):
compare ratios within one run, not absolute numbers across machines.
`;
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  upstream?.stop();
  clearTimeout(watchdog);
  // Everything is closed; if a handle still holds the loop open, say so and leave anyway.
  setTimeout(() => {
    process.stderr.write('bench: an open handle kept the process alive after cleanup; exiting\n');
    process.exit(process.exitCode ?? 0);
  }, 3000).unref();
}
