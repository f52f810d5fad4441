/**
 * `npm run bench -- memory`: what the mesh holds in memory per destination and per endpoint, at
 * 1, 100 and 1,000 destinations, and how long a config swap takes at 1,000 services.
 *
 * Each case (N destinations × E endpoints each, E = 1 and 4) runs in its own process, started
 * with --expose-gc, against its own upstream process (bench/memory-upstream.ts: one node:http
 * server per endpoint, all on 127.0.0.1). In the case process:
 *   h0  heap after a warm-up mesh (one service, one request, closed), so code loaded lazily on
 *       first use is not charged to the first destination
 *   h1  after `meshClient()` with N Service documents (stacks are built at load)
 *   h2  after one request to each destination (pools and connections are made lazily, as in
 *       real use: one endpoint per destination touched)
 *   h3  after E requests more per destination (round-robin: every endpoint has a pool and a
 *       keep-alive connection)
 * each after three forced full GCs (heapUsed; RSS for reference). Per destination is
 * (h − h0) / N; per endpoint compares E = 4 with E = 1 at the same N.
 *
 * Swap (N = 1,000 cases), three kinds of change, each a config parsed once and swapped back and
 * forth with the base by `mesh.applyConfig()` (p50 and max over the swaps), then by
 * `mesh.reload(documents)` (validate + apply): one route's timeout of one service; the Mesh
 * document's tracing sampling (a Mesh setting no destination's build reads); every service's
 * route timeout (what a Mesh-wide setting every destination inherits, such as mtls, costs). Then
 * one request per destination: the upstream must see no new connection (pools survived) and the
 * destinations' counters must carry on from before the swaps (state, breakers included, survived).
 *
 * Bounded: each case has a hard limit; the whole bench takes about a minute.
 * Usage: node --import tsx bench/memory.ts   (or npm run bench -- memory)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadConfig, meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { benchArgs, fmt, machineLine, markdownTable } from './sidecar-env.js';

const CASES: [number, number][] = [
  [1, 1],
  [100, 1],
  [1000, 1],
  [1, 4],
  [100, 4],
  [1000, 4],
];
const CASE_LIMIT_S = 90;
const SWAPS = 21;
const self = fileURLToPath(import.meta.url);

interface CaseResult {
  n: number;
  e: number;
  h0: number;
  h1: number;
  h2: number;
  h3: number;
  rss0: number;
  rss3: number;
  conns2: number;
  conns3: number;
  swap?: { rows: SwapRow[]; newConns: number; countersCarried: boolean; heapAfterMb: number; buildMs: number };
}

/** One kind of change, swapped back and forth with the base config. */
interface SwapRow {
  change: string;
  applyP50Ms: number;
  applyMaxMs: number;
  /** CPU time of the process (user + system) per applyConfig, median: what the swap costs without the machine's contention. */
  applyCpuP50Ms: number;
  /** `mesh.reload(documents)` (validate + apply), or why it could not run. */
  reloadP50Ms: number | string;
}

// ---------------------------------------------------------------- one case (child process)

function serviceDoc(name: string, ports: number[], routeTimeout: string): object {
  return {
    apiVersion: 'trellis/v1',
    kind: 'Service',
    metadata: { name },
    spec: {
      endpoints: ports.map((p) => ({ address: `127.0.0.1:${p}` })),
      loadBalancer: 'round-robin',
      connection: { keepAliveTimeout: '120s' },
      // Generous timeouts: what is measured is memory, and a loaded machine must not fail a case.
      timeout: '20s',
      retries: { attempts: 3, perTryTimeout: '8s', on: ['connect-failure', 'reset', 'gateway-error'], backoff: { base: '25ms', max: '250ms' }, budget: { ratio: 0.2, minPerSecond: 10 } },
      circuitBreaker: { errorThresholdPercent: 50, volumeThreshold: 20, resetTimeout: '5s' },
      outlierDetection: { consecutiveFailures: 5, ejectionTime: '10s', maxEjectedPercent: 50 },
      routes: [{ name: 'api', match: { pathPrefix: ['/api'] }, timeout: routeTimeout }, { name: 'default' }],
    },
  };
}

/**
 * The config as parsed documents, as a control plane hands them over. As YAML text, 1,000 such
 * Service documents are ~127,000 YAML nodes, past the loader's default `maxYamlNodes` (100,000;
 * `meshClient({ configLimits: { maxYamlNodes } })` raises it).
 */
function configDocs(n: number, e: number, ports: number[], changed: boolean | 'all'): object[] {
  // Plaintext (no identity: the heap measured is the mesh's, not TLS sockets'). No Mesh document
  // here (the swap cases add one): until maxDocuments rose to 10,000, 1,000 Services filled the loader.
  const docs: object[] = [];
  for (let i = 0; i < n; i++) docs.push(serviceDoc(`s${i}`, ports.slice(i * e, i * e + e), changed === 'all' ? '1200ms' : i === 0 && changed ? '1500ms' : '1s'));
  return docs;
}

function meshDoc(sampling: number): object {
  return { apiVersion: 'trellis/v1', kind: 'Mesh', metadata: { name: 'default' }, spec: { tracing: { sampling } } };
}

async function heap(): Promise<{ heap: number; rss: number }> {
  const gc = (globalThis as { gc?: () => void }).gc as () => void;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

interface UpstreamChild {
  ports: number[];
  conns(): Promise<number>;
  stop(): void;
}

function startServers(count: number): Promise<UpstreamChild> {
  const script = fileURLToPath(new URL('./memory-upstream.ts', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script, String(count), String(CASE_LIMIT_S)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const stop = (): void => {
    child.stdin?.end();
    child.kill('SIGTERM');
  };
  return new Promise((resolve, reject) => {
    let buf = '';
    const waiting: ((n: number) => void)[] = [];
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let m = /CONNS (\d+) (\d+)\n/.exec(buf); m !== null; m = /CONNS (\d+) (\d+)\n/.exec(buf)) {
        buf = buf.slice(m.index + m[0].length);
        waiting.shift()?.(Number(m[1]));
      }
      const m = /PORTS ([\d ]+)\n/.exec(buf);
      if (m?.[1] === undefined) return;
      buf = buf.slice(m.index + m[0].length);
      const conns = (): Promise<number> =>
        new Promise((res) => {
          waiting.push(res);
          child.stdin?.write('\n');
        });
      resolve({ ports: m[1].trim().split(' ').map(Number), conns, stop });
    });
    child.once('exit', (code) => reject(new Error(`memory upstream exited (${code})`)));
  });
}

async function eachDestination(n: number, times: number, mesh: Mesh): Promise<void> {
  let next = 0;
  const total = n * times;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++ % n;
      const res = await mesh.http(`s${i}`).request({ method: 'GET', path: '/' });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`s${i} answered ${res.statusCode}`);
    }
  };
  // One at a time per destination round, so round-robin walks every endpoint of each.
  await Promise.all(Array.from({ length: Math.min(50, n) }, worker));
}

async function runCase(n: number, e: number): Promise<CaseResult> {
  const up = await startServers(Math.max(1, n * e));
  const quiet = { warn: (m: string) => process.stderr.write(`[trellis] ${m}\n`) };
  let mesh: Mesh | undefined;
  try {
    const warm = await meshClient({ service: 'bench', config: configDocs(1, 1, up.ports, false), logger: quiet });
    await eachDestination(1, 2, warm);
    await warm.close({ drainTimeoutMs: 0 });
    const base = await up.conns();
    const { heap: h0, rss: rss0 } = await heap();

    const docs = configDocs(n, e, up.ports, false);
    mesh = await meshClient({ service: 'bench', config: docs, logger: quiet });
    const { heap: h1 } = await heap();
    await eachDestination(n, 1, mesh);
    const { heap: h2 } = await heap();
    const conns2 = (await up.conns()) - base;
    await eachDestination(n, e, mesh);
    const { heap: h3, rss: rss3 } = await heap();
    const conns3 = (await up.conns()) - base;
    const result: CaseResult = { n, e, h0, h1, h2, h3, rss0, rss3, conns2, conns3 };

    if (n >= 1000) {
      const t0 = performance.now();
      const a = await loadConfig(docs);
      const changedDocs = configDocs(n, e, up.ports, true);
      const b = await loadConfig(changedDocs);
      const buildMs = (performance.now() - t0) / 2;
      const allDocs = configDocs(n, e, up.ports, 'all');
      const all = await loadConfig(allDocs);
      const before = mesh.inspect().services.find((s) => s.name === 's1')?.counters.requests ?? NaN;
      const connsBefore = await up.conns();
      const sorted = (xs: number[]): number[] => [...xs].sort((x, y) => x - y);
      const m = mesh;
      const swaps = (from: Parameters<Mesh['applyConfig']>[0], to: Parameters<Mesh['applyConfig']>[0]): { p50: number; max: number; cpu: number } => {
        const t: number[] = [];
        const cpu: number[] = [];
        for (let i = 0; i < SWAPS; i++) {
          const s = performance.now();
          const c = process.cpuUsage();
          m.applyConfig(i % 2 === 0 ? to : from);
          const d = process.cpuUsage(c);
          t.push(performance.now() - s);
          cpu.push((d.user + d.system) / 1000);
        }
        return { p50: sorted(t)[Math.floor(t.length / 2)] as number, max: Math.max(...t), cpu: sorted(cpu)[Math.floor(cpu.length / 2)] as number };
      };
      const reloads = async (from: object[], to: object[]): Promise<number | string> => {
        const t: number[] = [];
        try {
          for (let i = 0; i < 3; i++) {
            const s = performance.now();
            await m.reload(i % 2 === 0 ? to : from);
            t.push(performance.now() - s);
          }
        } catch (err) {
          return `refused: ${(err as { issues?: { message: string }[] }).issues?.[0]?.message ?? String(err)}`;
        }
        return sorted(t)[1] as number;
      };
      const rows: SwapRow[] = [];
      const one = swaps(a, b);
      rows.push({ change: 'one route of one service', applyP50Ms: one.p50, applyMaxMs: one.max, applyCpuP50Ms: one.cpu, reloadP50Ms: await reloads(docs, changedDocs) });
      // A Mesh setting no destination's build reads (tracing is updated in place): the Mesh
      // document makes it 1,001 documents, past the old maxDocuments.
      let meshRow: SwapRow;
      try {
        const withMesh = [meshDoc(1), ...docs];
        const withMesh2 = [meshDoc(0.5), ...docs];
        const ma = await loadConfig(withMesh);
        const mb = await loadConfig(withMesh2);
        const ms = swaps(ma, mb);
        meshRow = { change: 'Mesh tracing sampling', applyP50Ms: ms.p50, applyMaxMs: ms.max, applyCpuP50Ms: ms.cpu, reloadP50Ms: await reloads(withMesh, withMesh2) };
      } catch (err) {
        const why = `refused: ${(err as { issues?: { message: string }[] }).issues?.[0]?.message ?? String(err)}`;
        meshRow = { change: 'Mesh tracing sampling', applyP50Ms: NaN, applyMaxMs: NaN, applyCpuP50Ms: NaN, reloadP50Ms: why };
      }
      rows.push(meshRow);
      // Every service changed: what a Mesh-wide setting every destination inherits (mtls) costs.
      const every = swaps(a, all);
      rows.push({ change: 'every service (as a Mesh-wide mtls change)', applyP50Ms: every.p50, applyMaxMs: every.max, applyCpuP50Ms: every.cpu, reloadP50Ms: await reloads(docs, allDocs) });
      m.applyConfig(a);
      await eachDestination(n, 1, mesh);
      const after = mesh.inspect().services.find((s) => s.name === 's1')?.counters.requests ?? NaN;
      const newConns = (await up.conns()) - connsBefore;
      const { heap: h4 } = await heap();
      result.swap = {
        rows,
        newConns,
        countersCarried: after === before + 1,
        heapAfterMb: (h4 - h0) / 2 ** 20,
        buildMs,
      };
    }
    return result;
  } finally {
    await mesh?.close({ drainTimeoutMs: 0 });
    up.stop();
  }
}

// ---------------------------------------------------------------- the bench (parent process)

function runChild(n: number, e: number): Promise<CaseResult> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', self, '--case', `${n},${e}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const kill = setTimeout(() => child.kill('SIGKILL'), CASE_LIMIT_S * 1000);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(kill);
      const m = /RESULT (.*)\n/.exec(out);
      if (m?.[1] !== undefined) resolve(JSON.parse(m[1]) as CaseResult);
      else reject(new Error(`case ${n}×${e} exited ${code} without a result: ${out}`));
    });
  });
}

const kb = (bytes: number): string => fmt(bytes / 1024, 1);

async function parent(): Promise<void> {
  console.log(`memory bench: ${machineLine()}`);
  const results: CaseResult[] = [];
  for (const [n, e] of CASES) {
    const r = await runChild(n, e);
    results.push(r);
    console.log(`  ${n} × ${e}: heap +${kb(r.h1 - r.h0)} KiB loaded, +${kb(r.h2 - r.h0)} KiB after 1 request each, +${kb(r.h3 - r.h0)} KiB every endpoint used; ${r.conns2}/${r.conns3} connections`);
  }
  const at = (n: number, e: number): CaseResult => results.find((r) => r.n === n && r.e === e) as CaseResult;
  const rows = results.map((r) => [
    String(r.n),
    String(r.e),
    kb((r.h1 - r.h0) / r.n),
    kb((r.h2 - r.h0) / r.n),
    kb((r.h3 - r.h0) / r.n),
    `${r.conns2} / ${r.conns3}`,
    fmt((r.rss3 - r.rss0) / 2 ** 20, 1),
  ]);
  const head = ['destinations', 'endpoints each', 'KiB/dest loaded', 'KiB/dest after 1 req each', 'KiB/dest every endpoint used', 'connections', 'RSS growth MiB'];
  console.log(`\nheap (heapUsed after 3 forced GCs) over the warm baseline, per destination:\n\n${markdownTable(head, rows)}\n`);

  const perEp = [100, 1000].map((n) => {
    const one = at(n, 1);
    const four = at(n, 4);
    return [String(n), kb((four.h1 - one.h1) / (3 * n)), kb((four.h3 - one.h3) / (3 * n)), kb((at(1000, 1).h2 - at(100, 1).h2) / 900)];
  });
  console.log(
    `${markdownTable(['destinations', 'KiB per extra endpoint, loaded', 'KiB per extra endpoint, used (pool + connection)', 'marginal KiB per destination (100 → 1,000, 1 req each, E = 1)'], perEp)}\n`,
  );
  const swaps = results.filter((r) => r.swap !== undefined);
  const swapRows = swaps.flatMap((r) => {
    const s = r.swap as NonNullable<CaseResult['swap']>;
    return s.rows.map((row) => [
      `${r.n} × ${r.e}`,
      row.change,
      Number.isNaN(row.applyP50Ms) ? '-' : fmt(row.applyP50Ms, 1),
      Number.isNaN(row.applyMaxMs) ? '-' : fmt(row.applyMaxMs, 1),
      Number.isNaN(row.applyCpuP50Ms) ? '-' : fmt(row.applyCpuP50Ms, 1),
      typeof row.reloadP50Ms === 'number' ? fmt(row.reloadP50Ms, 1) : row.reloadP50Ms,
      fmt(s.buildMs, 1),
      String(s.newConns),
      s.countersCarried ? 'yes' : 'NO',
    ]);
  });
  console.log(
    `config swap at 1,000 services (${SWAPS} applyConfig swaps per change, 3 reloads):\n\n${markdownTable(['services × endpoints', 'change', 'applyConfig p50 ms', 'applyConfig max ms', 'applyConfig CPU p50 ms', 'reload(documents) p50 ms', 'loadConfig (validate, first) ms', 'new upstream connections after swaps', 'counters carried on'], swapRows)}`,
  );
}

const args = benchArgs('memory');
const caseAt = args.indexOf('--case');
if (caseAt !== -1) {
  const [n, e] = (args[caseAt + 1] ?? '1,1').split(',').map(Number) as [number, number];
  if (typeof (globalThis as { gc?: unknown }).gc !== 'function') throw new Error('a memory case needs --expose-gc');
  const limit = setTimeout(() => {
    process.stderr.write(`memory case ${n}×${e}: over ${CASE_LIMIT_S} s; giving up\n`);
    process.exit(1);
  }, CASE_LIMIT_S * 1000);
  limit.unref();
  const r = await runCase(n, e);
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
  process.exit(0);
} else {
  const watchdog = setTimeout(() => process.exit(1), CASES.length * CASE_LIMIT_S * 1000 + 10_000);
  watchdog.unref();
  try {
    await parent();
  } catch (err) {
    process.stderr.write(`memory bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
