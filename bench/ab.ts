/**
 * Before/after in one process: raw undici Pools, the mesh of another build (`--other`, e.g. a
 * `git archive` of the base commit, built, with this node_modules linked in) and the mesh of
 * this build, in interleaved rounds against the same upstream child. On a shared machine whose
 * load swings from run to run, two separate `npm run bench` runs cannot be compared; rounds of
 * both builds interleaved in one process see the same load.
 *
 *   git archive <base> | tar -x -C /tmp/base && ln -s "$PWD/node_modules" /tmp/base/node_modules
 *   (cd /tmp/base && npm run build) && npm run build
 *   node --import tsx bench/ab.ts --other /tmp/base [--rounds 6] [--seconds 2] [--path http|request|fetch]
 *
 * `--path` picks the call measured: `http` (default) is mesh.http().request() against raw Pools;
 * `request` is undici.request('http://products/', { dispatcher: mesh.dispatcher }) and `fetch`
 * Node's fetch() the same way, each against the same call through undici's default Agent to the
 * upstream URLs round-robin. Besides medians, the median of per-round differences to the raw
 * contender of the same round (paired: both saw the same load) is reported.
 *
 * Same mesh config, concurrency (32) and steady-state rule (an unmeasured 300 ms of the same
 * contender before each round, no forced GC) as bench/run.ts. Reported: medians over rounds.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, Pool, request as undiciRequest } from 'undici';
import type { Mesh } from 'trellis';
import { LatencyBuffer, median, runRound } from './measure.js';
import type { Call, RoundResult } from './measure.js';
import { startUpstream } from './spawn-upstream.js';
import { benchServiceYaml } from './bench-service.js';

const { values: args } = parseArgs({
  options: {
    other: { type: 'string' },
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '2' },
    path: { type: 'string', default: 'http' },
  },
});
if (args.other === undefined) throw new Error('--other DIR (a built checkout of the other version) is required');
const PATH = args.path ?? 'http';
if (PATH !== 'http' && PATH !== 'request' && PATH !== 'fetch') throw new Error(`--path must be http, request or fetch, got "${PATH}"`);
const ROUNDS = Number(args.rounds);
const ROUND_MS = Number(args.seconds) * 1000;
const CONCURRENCY = 32;
const here = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
const builds = [
  ['other', path.join(path.resolve(args.other), 'dist/index.js')],
  ['this', path.join(here, 'dist/index.js')],
] as const;

const upstream = await startUpstream(3, Math.ceil((ROUNDS * 3 * (ROUND_MS + 300) + 30_000) / 1000) + 60);
const yaml = benchServiceYaml(upstream.ports);
const pools = upstream.ports.map((p) => new Pool(`http://127.0.0.1:${p}`));
const agent = new Agent();
const urls = upstream.ports.map((p) => `http://127.0.0.1:${p}/`);
const meshes: Mesh[] = [];
try {
  let n = 0;
  const rawCalls: Record<string, Call> = {
    http: async () => {
      const res = await (pools[n++ % pools.length] as Pool).request({ method: 'GET', path: '/' });
      await res.body.dump();
      return res.statusCode < 300;
    },
    request: async () => {
      const res = await undiciRequest(urls[n++ % urls.length] as string, { dispatcher: agent });
      await res.body.dump();
      return res.statusCode < 300;
    },
    fetch: async () => {
      const res = await fetch(urls[n++ % urls.length] as string, { dispatcher: agent } as unknown as RequestInit);
      await res.arrayBuffer();
      return res.status < 300;
    },
  };
  const contenders: { key: string; call: Call; rounds: RoundResult[] }[] = [{ key: PATH === 'http' ? 'raw-pools' : `raw-${PATH}`, rounds: [], call: rawCalls[PATH] as Call }];
  for (const [key, file] of builds) {
    const { meshClient } = (await import(pathToFileURL(file).href)) as typeof import('trellis');
    const mesh = await meshClient({ service: 'bench', config: yaml, logger: { warn: () => {} } });
    meshes.push(mesh);
    const products = mesh.http('products');
    const dispatcher = mesh.dispatcher;
    const calls: Record<string, Call> = {
      http: async () => {
        const res = await products.request({ method: 'GET', path: '/' });
        await res.body.dump();
        return res.statusCode < 300;
      },
      request: async () => {
        const res = await undiciRequest('http://products/', { dispatcher });
        await res.body.dump();
        return res.statusCode < 300;
      },
      fetch: async () => {
        const res = await fetch('http://products/', { dispatcher } as unknown as RequestInit);
        await res.arrayBuffer();
        return res.status < 300;
      },
    };
    contenders.push({ key: `mesh-${key}`, rounds: [], call: calls[PATH] as Call });
  }
  const lat = new LatencyBuffer();
  for (const c of contenders) await runRound(c.call, CONCURRENCY, 1500, lat);
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < contenders.length; i++) {
      const c = contenders[(i + r) % contenders.length] as (typeof contenders)[number];
      await runRound(c.call, CONCURRENCY, 300, lat);
      c.rounds.push(await runRound(c.call, CONCURRENCY, ROUND_MS, lat));
    }
  }
  const raw = contenders[0] as (typeof contenders)[number];
  const med = (c: typeof raw, f: (x: RoundResult) => number): number => median(c.rounds.map(f));
  console.log(`bench/ab.ts (--path ${PATH}): ${ROUNDS} interleaved rounds × ${ROUND_MS / 1000} s, concurrency ${CONCURRENCY}; other = ${builds[0][1]}`);
  const range = (xs: number[], d: number): string => `${Math.min(...xs).toFixed(d)}..${Math.max(...xs).toFixed(d)}`;
  for (const c of contenders) {
    const rps = med(c, (x) => x.rps);
    const cpu = med(c, (x) => x.cpuUsPerReq);
    // Paired with the raw round of the same index (adjacent in time, same load).
    const ratios = c.rounds.map((x, i) => x.rps / (raw.rounds[i] as RoundResult).rps);
    const added = c.rounds.map((x, i) => x.cpuUsPerReq - (raw.rounds[i] as RoundResult).cpuUsPerReq);
    console.log(`  ${c.key.padEnd(12)} ${rps.toFixed(0).padStart(7)} req/s  ${cpu.toFixed(1).padStart(6)} µs CPU/req  ratio ${(rps / med(raw, (x) => x.rps)).toFixed(2)} (paired median ${median(ratios).toFixed(2)}, ${range(ratios, 2)})  added ${(cpu - med(raw, (x) => x.cpuUsPerReq)).toFixed(1)} µs (paired median ${median(added).toFixed(1)}, ${range(added, 1)})  errors ${c.rounds.reduce((a, x) => a + x.errors, 0)}`);
  }
} finally {
  for (const m of meshes) await m.close();
  await Promise.all([...pools.map((p) => p.close()), agent.close()]);
  upstream.stop();
}
