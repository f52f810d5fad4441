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
import { LatencyBuffer, runRound } from './measure.js';
import { startUpstream } from './spawn-upstream.js';
import { benchClients, CONTENDER_KEYS } from './contenders.js';
import type { ContenderKey } from './contenders.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '32' },
    target: { type: 'string', default: 'mesh' },
  },
});
// `raw` is bench/contenders.ts's `raw-pools` (its name here before the contenders were shared).
const target = (args.target === 'raw' ? 'raw-pools' : args.target) as ContenderKey;
if (!CONTENDER_KEYS.includes(target)) throw new Error(`--target must be one of raw, ${CONTENDER_KEYS.join(', ')}, got "${args.target}"`);
const seconds = Number(args.seconds);
const concurrency = Number(args.concurrency);

const upstream = await startUpstream(3, seconds + 30);
const clients = await benchClients(upstream.ports, (m) => process.stderr.write(`[trellis] ${m}\n`));
try {
  const result = await runRound(clients.calls[target], concurrency, seconds * 1000, new LatencyBuffer());
  console.log(`${args.target}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, ${result.cpuUsPerReq.toFixed(1)} µs CPU/req, ${result.errors} errors`);
} finally {
  await clients.close();
  upstream.stop();
}
