/**
 * Ablation of the hot path: what each feature of `npm run bench`'s full stack costs per request,
 * in one process, against raw undici Pools. Each variant is the full config minus one feature
 * (its own mesh client, same upstream child); rounds interleave raw, full and every variant, with
 * the steady-state rule of bench/run.ts (an unmeasured 300 ms of the same contender before each
 * round, no forced GC). Reported: median req/s and client CPU µs per request over rounds, the
 * ratio to raw, and the feature's cost (full's CPU minus the variant's).
 *
 *   npm run build && node --import tsx bench/ablation.ts [--rounds 4] [--seconds 1.5]
 */
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { LatencyBuffer, median, runRound } from './measure.js';
import type { Call, RoundResult } from './measure.js';
import { startUpstream } from './spawn-upstream.js';
import { benchServiceYaml, FULL_POLICY } from './bench-service.js';

const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '4' }, seconds: { type: 'string', default: '1.5' } },
});
const ROUNDS = Number(args.rounds);
const ROUND_MS = Number(args.seconds) * 1000;
const CONCURRENCY = 32;

const FULL = FULL_POLICY;
type Part = keyof typeof FULL;
/** Variant name → what replaces the full config's parts (undefined: the part is left out). */
const VARIANTS: Record<string, Partial<Record<Part, string | undefined>>> = {
  full: {},
  'no per-try timeout': { retries: 'retries: { attempts: 3, on: [connect-failure, reset, gateway-error], backoff: { base: 25ms, max: 250ms }, budget: { ratio: 0.2, minPerSecond: 10 } }' },
  'no retries block': { retries: undefined },
  'no reset retry (no body buffering)': { retries: 'retries: { attempts: 3, perTryTimeout: 500ms, on: [connect-failure, gateway-error], backoff: { base: 25ms, max: 250ms }, budget: { ratio: 0.2, minPerSecond: 10 } }' },
  'no breaker': { circuitBreaker: undefined },
  'no outlier detection': { outlierDetection: undefined },
  'round-robin, not ewma': { loadBalancer: 'loadBalancer: round-robin' },
  'none of the above': { retries: undefined, circuitBreaker: undefined, outlierDetection: undefined, loadBalancer: 'loadBalancer: round-robin' },
};

function yamlFor(ports: number[], v: Partial<Record<Part, string | undefined>>): string {
  const lines = (Object.keys(FULL) as Part[]).map((k) => (k in v ? v[k] : FULL[k])).filter((l): l is string => l !== undefined);
  return benchServiceYaml(ports, lines);
}

const names = Object.keys(VARIANTS);
const upstream = await startUpstream(3, Math.ceil((ROUNDS * (names.length + 1) * (ROUND_MS + 300) + 40_000) / 1000) + 60);
const pools = upstream.ports.map((p) => new Pool(`http://127.0.0.1:${p}`));
const meshes: Mesh[] = [];
try {
  let n = 0;
  const contenders: { key: string; call: Call; rounds: RoundResult[] }[] = [{
    key: 'raw-pools',
    rounds: [],
    call: async () => {
      const res = await (pools[n++ % pools.length] as Pool).request({ method: 'GET', path: '/' });
      await res.body.dump();
      return res.statusCode < 300;
    },
  }];
  for (const name of names) {
    const mesh = await meshClient({ service: 'bench', config: yamlFor(upstream.ports, VARIANTS[name] ?? {}), logger: { warn: () => {} } });
    meshes.push(mesh);
    const products = mesh.http('products');
    contenders.push({
      key: name,
      rounds: [],
      call: async () => {
        const res = await products.request({ method: 'GET', path: '/' });
        await res.body.dump();
        return res.statusCode < 300;
      },
    });
  }
  const lat = new LatencyBuffer();
  for (const c of contenders) await runRound(c.call, CONCURRENCY, 1000, lat);
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < contenders.length; i++) {
      const c = contenders[(i + r) % contenders.length] as (typeof contenders)[number];
      await runRound(c.call, CONCURRENCY, 300, lat);
      c.rounds.push(await runRound(c.call, CONCURRENCY, ROUND_MS, lat));
    }
  }
  const raw = contenders[0] as (typeof contenders)[number];
  const full = contenders[1] as (typeof contenders)[number];
  const med = (c: typeof raw, f: (x: RoundResult) => number): number => median(c.rounds.map(f));
  const rawCpu = med(raw, (x) => x.cpuUsPerReq);
  const fullCpu = med(full, (x) => x.cpuUsPerReq);
  console.log(`bench/ablation.ts: ${ROUNDS} interleaved rounds × ${ROUND_MS / 1000} s, concurrency ${CONCURRENCY}, Node ${process.version}`);
  console.log('| variant | req/s | ratio to raw | CPU µs/req | added vs raw | feature cost (full − variant) | errors |');
  console.log('| :-- | --: | --: | --: | --: | --: | --: |');
  for (const c of contenders) {
    const rps = med(c, (x) => x.rps);
    const cpu = med(c, (x) => x.cpuUsPerReq);
    const cost = c === raw || c === full ? '' : (fullCpu - cpu).toFixed(1);
    console.log(`| ${c.key} | ${rps.toFixed(0)} | ${(rps / med(raw, (x) => x.rps)).toFixed(2)} | ${cpu.toFixed(1)} | ${c === raw ? '' : (cpu - rawCpu).toFixed(1)} | ${cost} | ${c.rounds.reduce((a, x) => a + x.errors, 0)} |`);
  }
} finally {
  for (const m of meshes) await m.close();
  await Promise.all(pools.map((p) => p.close()));
  upstream.stop();
}
