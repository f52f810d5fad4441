/**
 * A CPU profile of each contender of one call path, taken in one process in interleaved rounds
 * (node:inspector's Profiler, started and stopped around each measured round), so the profiles
 * of raw and mesh share the machine's load and V8's warm state and leave out startup. Prints,
 * per contender, µs of CPU per request by function (self time) or by file (`--by file`), and the
 * difference mesh − raw, largest first; with `--alloc`, bytes allocated per request instead.
 * Self time is V8's: a function inlined into its caller is counted in the caller.
 *
 *   npm run build && node --import tsx bench/path-profile.ts --path fetch [--rounds 6] [--seconds 1.5] [--top 50]
 *
 * `--drop timeout,retries,...` leaves those parts of the full stack out (FULL_POLICY's keys).
 * `--save PREFIX` writes each contender's last round as PREFIX-raw.cpuprofile / PREFIX-mesh.cpuprofile.
 * `--path`: `http` (mesh.http().request() vs raw Pools), `request` (undici.request through
 * mesh.dispatcher vs undici's default Agent), `fetch` (Node's fetch() the same way) or `h2`
 * (mesh.http() on a `protocol: http2` Service vs raw h2c Pools, against bench/http2.ts's
 * node:http2 upstreams), or `inbound`: the server side, in this process — the same raw undici
 * Pool calls to a plain node:http server and to the same handler served by `mesh.serve()` with
 * `mtls: off` (the inbound stack: peer, authorization, rate limit, faults, trace extraction,
 * metrics), so the difference is the inbound stack's own cost.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { constants as perfConstants, PerformanceObserver } from 'node:perf_hooks';
import { Agent, Pool, request as undiciRequest } from 'undici';
import { meshClient } from 'trellis';
import type { Call } from './measure.js';
import { LatencyBuffer, runRound } from './measure.js';
import { startUpstream } from './spawn-upstream.js';
import { benchServiceYaml, FULL_POLICY } from './bench-service.js';
import { okHandler } from './ok-handler.js';

const { values: args } = parseArgs({
  options: {
    path: { type: 'string', default: 'fetch' },
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '1.5' },
    top: { type: 'string', default: '50' },
    by: { type: 'string', default: 'fn' },
    save: { type: 'string' },
    alloc: { type: 'boolean', default: false },
    drop: { type: 'string', default: '' },
  },
});
const PATH = args.path as string;
const ROUNDS = Number(args.rounds);
const ROUND_MS = Number(args.seconds) * 1000;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Adds a profile's self time (µs) by key into `into`. */
function addProfile(p: Profile, by: string, into: Map<string, number>): void {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  for (let i = 0; i < p.samples.length; i++) {
    const cf = (byId.get(p.samples[i] as number) as ProfileNode).callFrame;
    const file = cf.url.replace(/.*\/(node_modules\/)?/, '') || cf.functionName;
    const key = by === 'file' ? file : `${cf.functionName || '(anon)'} ${file}:${cf.lineNumber + 1}`;
    into.set(key, (into.get(key) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
}

interface AllocNode {
  head?: AllocNode;
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: AllocNode[];
}

/** Adds a sampling heap profile's self sizes (bytes) by key into `into`. */
function addAllocations(root: AllocNode, by: string, into: Map<string, number>): void {
  const walk = (n: AllocNode): void => {
    const cf = n.callFrame;
    const file = cf.url.replace(/.*\/(node_modules\/)?/, '') || cf.functionName;
    const key = by === 'file' ? file : `${cf.functionName || '(anon)'} ${file}:${cf.lineNumber + 1}`;
    if (n.selfSize > 0) into.set(key, (into.get(key) ?? 0) + n.selfSize);
    for (const c of n.children) walk(c);
  };
  walk(root.head ?? root);
}

const H2 = PATH === 'h2';
const upstream = H2 ? await startH2Upstream() : await startUpstream(3, Math.ceil((ROUNDS * 2 * (ROUND_MS + 300)) / 1000) + 60);
// `--drop timeout,retries`: the full stack minus those parts (bench-service.ts's FULL_POLICY keys).
const dropped = new Set((args.drop as string).split(',').filter((x) => x !== ''));
const policy = Object.entries(FULL_POLICY).filter(([k]) => !dropped.has(k)).map(([, v]) => v);
if (H2) policy.push('protocol: http2');
const mesh = await meshClient({ service: 'bench', config: benchServiceYaml(upstream.ports, policy), logger: { warn: () => {} } });
// The h2 contender's raw side: the options the mesh gives its own HTTP/2 pools (src/client/http2-pool.ts).
const h2Options = { allowH2: true, connect: { useH2c: true } as Record<string, unknown>, connections: 1, pipelining: 100 };
const pools = upstream.ports.map((p) => new Pool(`http://127.0.0.1:${p}`, H2 ? h2Options : {}));
// `--path inbound`: both servers in this process, one Pool to each.
const inbound = PATH === 'inbound' ? await startInbound() : undefined;

/** A plain node:http server and the same handler behind `mesh.serve()` (mtls off), with a Pool to each. */
async function startInbound(): Promise<{ plain: Pool; served: Pool; close(): Promise<void> }> {
  const plain = http.createServer(okHandler);
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  const upstreamMesh = await meshClient({
    service: 'products',
    config: 'apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { mtls: off }\n',
    logger: { warn: () => {} },
  });
  const served = await upstreamMesh.serve(okHandler, { port: 0, host: '127.0.0.1' });
  const plainPool = new Pool(`http://127.0.0.1:${(plain.address() as AddressInfo).port}`);
  const servedPool = new Pool(`http://127.0.0.1:${served.port}`);
  return {
    plain: plainPool,
    served: servedPool,
    close: async () => {
      await Promise.all([plainPool.close(), servedPool.close()]);
      plain.closeAllConnections();
      plain.close();
      await upstreamMesh.close({ drainTimeoutMs: 0 });
    },
  };
}

/** bench/http2.ts's three node:http2 h2c upstreams, in a child process that dies with its stdin. */
async function startH2Upstream(): Promise<{ ports: number[]; stop(): void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./http2.ts', import.meta.url)), '--server'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const ports = await new Promise<number[]>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()) as number[])));
  return { ports, stop: () => child.stdin.end() };
}
const agent = new Agent();
const urls = upstream.ports.map((p) => `http://127.0.0.1:${p}/`);
const session = new Session();
session.connect();
try {
  const products = mesh.http('products');
  const dispatcher = mesh.dispatcher;
  let n = 0;
  // Raw undici Pools round-robin (h2: with the `host` the mesh's requests carry) against mesh.http().
  const rawPools = (headers?: Record<string, string>): Call => async () => {
    const res = await (pools[n++ % pools.length] as Pool).request({ method: 'GET', path: '/', headers });
    await res.body.dump();
    return res.statusCode < 300;
  };
  const viaMesh: Call = async () => {
    const res = await products.request({ method: 'GET', path: '/' });
    await res.body.dump();
    return res.statusCode < 300;
  };
  const poolCall = (pool: Pool | undefined): Call => async () => {
    const res = await (pool as Pool).request({ method: 'GET', path: '/' });
    await res.body.dump();
    return res.statusCode < 300;
  };
  const calls: Record<string, [Call, Call]> = {
    http: [rawPools(), viaMesh],
    h2: [rawPools({ host: 'products' }), viaMesh],
    inbound: [poolCall(inbound?.plain), poolCall(inbound?.served)],
    request: [
      async () => {
        const res = await undiciRequest(urls[n++ % urls.length] as string, { dispatcher: agent });
        await res.body.dump();
        return res.statusCode < 300;
      },
      async () => {
        const res = await undiciRequest('http://products/', { dispatcher });
        await res.body.dump();
        return res.statusCode < 300;
      },
    ],
    fetch: [
      async () => {
        const res = await fetch(urls[n++ % urls.length] as string, { dispatcher: agent } as unknown as RequestInit);
        await res.arrayBuffer();
        return res.status < 300;
      },
      async () => {
        const res = await fetch('http://products/', { dispatcher } as unknown as RequestInit);
        await res.arrayBuffer();
        return res.status < 300;
      },
    ],
  };
  const pair = calls[PATH];
  if (pair === undefined) throw new Error(`--path must be http, h2, inbound, request or fetch, got "${PATH}"`);
  const contenders = [
    { key: 'raw', call: pair[0], requests: 0, self: new Map<string, number>(), gc: new Map<string, number>() },
    { key: 'mesh', call: pair[1], requests: 0, self: new Map<string, number>(), gc: new Map<string, number>() },
  ];
  const lat = new LatencyBuffer();
  // GC per contender: count and ms by kind (minor = scavenge: allocation; major = mark-compact: promotion).
  let gcInto: Map<string, number> | undefined;
  const gcKind = (k: number): string => (k === perfConstants.NODE_PERFORMANCE_GC_MINOR ? 'minor' : k === perfConstants.NODE_PERFORMANCE_GC_MAJOR ? 'major' : 'other');
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (gcInto === undefined) continue;
      const k = gcKind((e as unknown as { detail: { kind: number } }).detail.kind);
      gcInto.set(`${k} count`, (gcInto.get(`${k} count`) ?? 0) + 1);
      gcInto.set(`${k} ms`, (gcInto.get(`${k} ms`) ?? 0) + e.duration);
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  for (const c of contenders) await runRound(c.call, 32, 1500, lat);
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < contenders.length; i++) {
      const c = contenders[(i + r) % contenders.length] as (typeof contenders)[number];
      await runRound(c.call, 32, 300, lat);
      if (args.alloc) {
        // Bytes allocated by function (every allocation sampled, collected or not).
        await session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
        const res = await runRound(c.call, 32, ROUND_MS, lat);
        const { profile } = await session.post('HeapProfiler.stopSampling');
        c.requests += res.requests;
        addAllocations(profile as unknown as AllocNode, args.by as string, c.self);
        continue;
      }
      await session.post('Profiler.start');
      gcInto = c.gc;
      const res = await runRound(c.call, 32, ROUND_MS, lat);
      gcInto = undefined;
      const { profile } = await session.post('Profiler.stop');
      c.requests += res.requests;
      addProfile(profile as unknown as Profile, args.by as string, c.self);
      if (args.save !== undefined) writeFileSync(`${args.save}-${c.key}.cpuprofile`, JSON.stringify(profile));
    }
  }
  const [raw, meshC] = contenders as [(typeof contenders)[number], (typeof contenders)[number]];
  const per = (c: typeof raw, k: string): number => (c.self.get(k) ?? 0) / c.requests;
  const total = (c: typeof raw): number => [...c.self].filter(([k]) => !k.startsWith('(idle)') && !k.startsWith('dispatch dispatch:0') && k !== 'dispatch').reduce((a, [, v]) => a + v, 0) / c.requests;
  const unit = args.alloc ? 'bytes allocated per request' : 'µs of CPU per request (busy; the profiler\'s own stop excluded)';
  console.log(`--path ${PATH}: ${raw.requests} raw and ${meshC.requests} mesh requests profiled; ${unit}: raw ${total(raw).toFixed(1)}, mesh ${total(meshC).toFixed(1)}, diff ${(total(meshC) - total(raw)).toFixed(1)}`);
  for (const c of contenders) console.log(`GC ${c.key}: ${[...c.gc].sort().map(([k, v]) => `${k} per 1k req ${((v * 1000) / c.requests).toFixed(2)}`).join(', ')}`);
  obs.disconnect();
  const keys = new Set([...raw.self.keys(), ...meshC.self.keys()]);
  const rows = [...keys].map((k) => ({ k, a: per(raw, k), b: per(meshC, k) })).sort((x, y) => Math.abs(y.b - y.a) - Math.abs(x.b - x.a));
  console.log('   diff     raw    mesh  function');
  for (const r of rows.slice(0, Number(args.top))) console.log(`${(r.b - r.a).toFixed(2).padStart(7)} ${r.a.toFixed(2).padStart(7)} ${r.b.toFixed(2).padStart(7)}  ${r.k}`);
} finally {
  session.disconnect();
  await mesh.close();
  await Promise.all([...pools.map((p) => p.close()), agent.close()]);
  await inbound?.close();
  upstream.stop();
}
