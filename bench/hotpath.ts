/**
 * One contender of bench/run.ts alone, for CPU profiling: the same upstream child, config and
 * concurrency, so a profile shows one request path only. `--target mesh` (default) drives
 * mesh.http('products').request(); `--target raw` drives 3 undici Pools round-robin, the
 * baseline, to diff the two profiles. The dispatcher path: `--target mesh-request` drives
 * undici.request('http://products/', { dispatcher: mesh.dispatcher }), `--target raw-request`
 * undici.request(url, { dispatcher: new Agent() }) over the upstream URLs; `mesh-fetch` and
 * `raw-fetch` the same with Node's fetch().
 *
 *   npm run build
 *   node --cpu-prof --cpu-prof-dir=.trellis-tmp/prof --import tsx bench/hotpath.ts --seconds 10
 *   node --cpu-prof --cpu-prof-dir=.trellis-tmp/prof-raw --import tsx bench/hotpath.ts --target raw
 *
 * Open the larger .cpuprofile (the main thread; the smaller one is tsx's loader thread) in
 * Chrome DevTools (Performance) or VS Code.
 */
import { parseArgs } from 'node:util';
import { Agent, Pool, request as undiciRequest } from 'undici';
import { meshClient } from 'trellis';
import type { Call } from './measure.js';
import { LatencyBuffer, runRound } from './measure.js';
import { startUpstream } from './spawn-upstream.js';
import { benchServiceYaml } from './bench-service.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '32' },
    target: { type: 'string', default: 'mesh' },
  },
});
const TARGETS = ['mesh', 'raw', 'mesh-request', 'raw-request', 'mesh-fetch', 'raw-fetch'];
if (!TARGETS.includes(args.target ?? '')) throw new Error(`--target must be one of ${TARGETS.join(', ')}, got "${args.target}"`);
const seconds = Number(args.seconds);
const concurrency = Number(args.concurrency);

const upstream = await startUpstream(3, seconds + 30);
const mesh = await meshClient({
  service: 'bench',
  config: benchServiceYaml(upstream.ports),
});
const pools = upstream.ports.map((p) => new Pool(`http://127.0.0.1:${p}`));
const agent = new Agent();
const urls = upstream.ports.map((p) => `http://127.0.0.1:${p}/`);
try {
  const products = mesh.http('products');
  const dispatcher = mesh.dispatcher;
  let next = 0;
  const calls: Record<string, Call> = {
    raw: async () => {
      const res = await (pools[next++ % pools.length] as Pool).request({ method: 'GET', path: '/' });
      await res.body.dump();
      return res.statusCode < 300;
    },
    mesh: async () => {
      const res = await products.request({ method: 'GET', path: '/' });
      await res.body.dump();
      return res.statusCode < 300;
    },
    'raw-request': async () => {
      const res = await undiciRequest(urls[next++ % urls.length] as string, { dispatcher: agent });
      await res.body.dump();
      return res.statusCode < 300;
    },
    'mesh-request': async () => {
      const res = await undiciRequest('http://products/', { dispatcher });
      await res.body.dump();
      return res.statusCode < 300;
    },
    'raw-fetch': async () => {
      const res = await fetch(urls[next++ % urls.length] as string, { dispatcher: agent } as unknown as RequestInit);
      await res.arrayBuffer();
      return res.status < 300;
    },
    'mesh-fetch': async () => {
      const res = await fetch('http://products/', { dispatcher } as unknown as RequestInit);
      await res.arrayBuffer();
      return res.status < 300;
    },
  };
  const call = calls[args.target as string] as Call;
  const result = await runRound(call, concurrency, seconds * 1000, new LatencyBuffer());
  console.log(`${args.target}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, ${result.cpuUsPerReq.toFixed(1)} µs CPU/req, ${result.errors} errors`);
} finally {
  await mesh.close();
  await Promise.all([...pools.map((p) => p.close()), agent.close()]);
  upstream.stop();
}
