/**
 * The contenders of the hot-path benchmark, one definition for `npm run bench` (bench/run.ts,
 * timed rounds) and `npm run bench -- instructions` (bench/instructions.ts, instructions counted
 * under valgrind): each is a call that sends one `GET /` and consumes the response body.
 *
 *   raw-pools     3 undici Pools, round-robin by hand (the baseline: the mesh's transport is
 *                 also one Pool per endpoint, so the difference is exactly the mesh's layers)
 *   raw-balanced  undici BalancedPool over the 3 origins (for reference)
 *   raw-headers   raw-pools carrying the two request headers every mesh request carries
 *                 (`x-trellis-timeout-ms`, `traceparent`; values of the mesh's length from a
 *                 ring made beforehand): what those headers alone cost undici and the upstream
 *   mesh          mesh.http('products').request(): the full stack of bench/bench-service.ts
 *   raw-request   undici.request(url, { dispatcher: agent }): undici's default Agent, the 3
 *                 upstream URLs round-robin (the baseline of the dispatcher path)
 *   mesh-request  undici.request('http://products/', { dispatcher: mesh.dispatcher })
 *   raw-fetch     Node's fetch(url, { dispatcher: agent }), the same Agent and URLs
 *   mesh-fetch    Node's fetch('http://products/', { dispatcher: mesh.dispatcher })
 */
import { Agent, BalancedPool, Pool, request as undiciRequest } from 'undici';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import type { Call } from './measure.js';
import { benchServiceYaml } from './bench-service.js';

export const CONTENDER_KEYS = ['raw-pools', 'raw-balanced', 'raw-headers', 'mesh', 'raw-request', 'mesh-request', 'raw-fetch', 'mesh-fetch'] as const;
export type ContenderKey = (typeof CONTENDER_KEYS)[number];

/** Each mesh contender's baseline: the same call without the mesh. */
export const BASELINE_OF = { mesh: 'raw-pools', 'mesh-request': 'raw-request', 'mesh-fetch': 'raw-fetch' } as const;

export const LABELS: Record<ContenderKey, string> = {
  'raw-pools': 'raw undici: 3 `Pool`s, round-robin by hand (baseline)',
  'raw-balanced': 'raw undici: `BalancedPool` over the 3 origins',
  'raw-headers': 'raw undici `Pool`s as `raw-pools`, with the two request headers every mesh request carries (`x-trellis-timeout-ms`, `traceparent`)',
  mesh: "`mesh.http('products').request()`: ewma, timeout, retries + per-try timeout + budget, breaker, outlier detection",
  'raw-request': "`undici.request(url, { dispatcher: new Agent() })` over the 3 upstream URLs, round-robin (the dispatcher path's baseline)",
  'mesh-request': "`undici.request('http://products/', { dispatcher: mesh.dispatcher })`: the same stack as `mesh`",
  'raw-fetch': "Node's `fetch(url, { dispatcher: new Agent() })` over the 3 upstream URLs, round-robin",
  'mesh-fetch': "Node's `fetch('http://products/', { dispatcher: mesh.dispatcher })`: the same stack as `mesh`",
};

/**
 * Traceparents of the mesh's length (55 characters), fresh strings from a ring, as the mesh makes
 * a new one per request: `raw-headers` adds only the headers' own cost, no id generation.
 */
const TRACEPARENTS = Array.from({ length: 4096 }, (_, i) => `00-${i.toString(16).padStart(32, '0')}-${(i * 7919).toString(16).padStart(16, '0')}-01`);

/** The raw clients and the mesh client the contenders use, over upstream `ports` on 127.0.0.1. */
export interface BenchClients {
  readonly mesh: Mesh;
  readonly calls: Record<ContenderKey, Call>;
  close(): Promise<void>;
}

/** `policy`: the mesh's policy lines (default: bench/bench-service.ts's full stack). */
export async function benchClients(ports: readonly number[], warn: (m: string) => void, policy?: readonly string[]): Promise<BenchClients> {
  const origins = ports.map((p) => `http://127.0.0.1:${p}`);
  // Raw baselines get undici's defaults, as an application would write them.
  const pools = origins.map((o) => new Pool(o));
  const balanced = new BalancedPool(origins);
  // The dispatcher path's baseline: undici's default Agent, as an application without the mesh has.
  const agent = new Agent();
  const urls = origins.map((o) => `${o}/`);
  const mesh = await meshClient({ service: 'bench', config: benchServiceYaml(ports, policy), logger: { warn } });
  const products = mesh.http('products');
  const dispatcher = mesh.dispatcher;
  let next = 0;
  let traced = 0;
  const calls: Record<ContenderKey, Call> = {
    'raw-pools': async () => {
      const pool = pools[next++ % pools.length] as Pool;
      const res = await pool.request({ method: 'GET', path: '/' });
      await res.body.dump();
      return res.statusCode < 300;
    },
    'raw-headers': async () => {
      const pool = pools[next++ % pools.length] as Pool;
      const res = await pool.request({ method: 'GET', path: '/', headers: ['x-trellis-timeout-ms', '1999', 'traceparent', TRACEPARENTS[traced++ % TRACEPARENTS.length] as string] });
      await res.body.dump();
      return res.statusCode < 300;
    },
    'raw-balanced': async () => {
      const res = await balanced.request({ method: 'GET', path: '/' });
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
  return {
    mesh,
    calls,
    async close() {
      await mesh.close();
      await Promise.all([...pools.map((p) => p.close()), balanced.close(), agent.close()]);
    },
  };
}
