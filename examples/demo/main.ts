/**
 * `npm run demo`: the whole mesh on its control plane, on loopback.
 *
 *   1. `trellis control-plane` with its embedded store in a temporary data directory, its
 *      dashboard beside it;
 *   2. `trellis apply -f examples/demo/shop.yaml` and a bootstrap token per service
 *      (`trellis token create`);
 *   3. a three-tier shop, each instance its own process and a meshClient given only the control
 *      plane's URL and its token (certificate from the control plane's CA, mTLS between them,
 *      configuration and endpoints pushed, registered while serving): frontend -> products v1
 *      (two instances, one failing 4 s in every 12) and v2 (HTTP) -> reviews (gRPC);
 *   4. a load generator (a meshClient in this process) calling the frontend;
 *   5. midway, `trellis apply -f examples/demo/canary.yaml` moves half of products' traffic to v2.
 *
 * Every 5 s it prints what the load generator saw (and which products version answered), the
 * events (retries, ejections, outages), and `trellis stat`. Stops after --duration seconds of
 * traffic or on Ctrl-C, prints a summary, stops every process and removes the temporary directory.
 *
 * Usage: node --import tsx examples/demo/main.ts [--duration SECONDS] [--port-offset N] [--help]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { running, startControlPlane, startInstance, stop, trellis, type Child } from './processes.js';
import { percentile, Traffic, type CallerStats } from './traffic.js';

const INTERVAL_MS = 5_000;
const RATE = 40;
const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

const USAGE = `usage: npm run demo -- [--duration SECONDS] [--port-offset N]
  (or: node --import tsx examples/demo/main.ts [--duration SECONDS])

  -d, --duration SECONDS  how long the traffic runs (default 60); Ctrl-C stops earlier
  --port-offset N         move the control plane (7400) and dashboard (7401) ports by N, to run
                          beside another demo (the shop's instances take free ports)
  -h, --help              print this and exit`;

function parseOptions(): { seconds: number; portOffset: number } {
  let values: { duration?: string | undefined; help?: boolean | undefined; 'port-offset'?: string | undefined };
  try {
    ({ values } = parseArgs({ options: { duration: { type: 'string', short: 'd', default: '60' }, help: { type: 'boolean', short: 'h' }, 'port-offset': { type: 'string', default: '0' } } }));
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help === true) {
    console.log(USAGE);
    process.exit(0);
  }
  const seconds = Number(values.duration);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    console.error(`--duration must be a positive number of seconds, got "${values.duration}"\n${USAGE}`);
    process.exit(2);
  }
  const portOffset = Number(values['port-offset']);
  if (!Number.isInteger(portOffset) || portOffset < 0 || portOffset > 50_000) {
    console.error(`--port-offset must be an integer from 0 to 50000, got "${values['port-offset']}"\n${USAGE}`);
    process.exit(2);
  }
  return { seconds, portOffset };
}

const { seconds: durationS, portOffset } = parseOptions();
const tmp = await mkdtemp(path.join(os.tmpdir(), 'trellis-demo-'));
const events: string[] = [];
let t0 = performance.now();
const elapsedS = (): number => (performance.now() - t0) / 1000;
const event = (text: string): void => void events.push(`${`+${elapsedS().toFixed(1)}`.padStart(7)} s  ${text}`);

let loadgen: Mesh | undefined;
let traffic: Traffic | undefined;
let finishing: Promise<void> | undefined;
const timers: NodeJS.Timeout[] = [];
const instances: Child[] = [];
let cpChild: Child | undefined;
let retries = 0;
let ejections = 0;
/** Which products version answered, before and after the canary apply was started. */
const versions = { before: { v1: 0, v2: 0 }, after: { v1: 0, v2: 0 } };
let phase: 'before' | 'after' = 'before';
let intervalVersions = { v1: 0, v2: 0 };

async function finish(reason: string, code: number): Promise<void> {
  finishing ??= (async () => {
    for (const t of timers) clearTimeout(t);
    console.log(`\nstopping (${reason})...`);
    await traffic?.stop(2_000);
    if (traffic !== undefined) console.log(summary());
    await loadgen?.close().catch(() => {});
    const pids = [...instances, ...(cpChild !== undefined ? [cpChild] : [])].map((c) => c.pid);
    await stop(instances, 10_000);
    if (cpChild !== undefined) await stop([cpChild], 10_000);
    await stop(undefined, 5_000); // anything else (a CLI run in flight)
    await rm(tmp, { recursive: true, force: true });
    console.log(`stopped ${pids.length} processes (${pids.join(', ')}), ${running()} left; removed ${tmp}`);
    process.exitCode = code;
    setTimeout(() => {
      console.error('demo: an open handle kept the process alive after close; exiting');
      process.exit(code);
    }, 3_000).unref();
  })().catch((err: unknown) => {
    console.error(`demo: shutdown failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  });
  return finishing;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (finishing !== undefined) {
      console.error('demo: second signal, exiting now');
      process.exit(130);
    }
    void finish(signal, 0);
  });
}

function failures(stats: CallerStats): string {
  if (stats.failures.size === 0) return '';
  return ` (${[...stats.failures].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')})`;
}

const pct = (n: number, of: number): string => (of > 0 ? `${((n / of) * 100).toFixed(0)}%` : '-');

function summary(): string {
  const t = traffic?.totals().get('frontend');
  if (t === undefined) return '';
  const ms = (q: number): string => (t.latencies.length > 0 ? `${percentile(t.latencies, q).toFixed(1)} ms` : '-');
  return [
    '',
    `══ summary: ${elapsedS().toFixed(1)} s of traffic`,
    `loadgen -> frontend: ${t.requests} requests, ${t.ok} ok (${t.requests > 0 ? ((t.ok / t.requests) * 100).toFixed(2) : '-'}%), ${t.requests - t.ok} failed${failures(t)}${t.shed > 0 ? `, ${t.shed} shed` : ''}`,
    `  latency p50 ${ms(0.5)}, p99 ${ms(0.99)}`,
    `  products answered: before the canary v1 ${versions.before.v1} v2 ${versions.before.v2}; after it v1 ${versions.after.v1} v2 ${versions.after.v2}`,
    `  frontend -> products: ${retries} retries, ${ejections} ejections`,
  ].join('\n');
}

async function main(): Promise<void> {
  // 1. The control plane.
  const cpListen = `127.0.0.1:${7400 + portOffset}`;
  const dashListen = `127.0.0.1:${7401 + portOffset}`;
  console.log(`Trellis demo: starting a control plane (data in ${tmp}) and a three-tier shop...`);
  cpChild = startControlPlane(path.join(tmp, 'cp'), cpListen, dashListen);
  const listening = await cpChild.waitFor(/listening on (https:\/\/\S+)[^]*?dashboard: (\S+)/, 60_000).catch((err: unknown) => {
    throw new Error(`the control plane did not start (is port ${7400 + portOffset} or ${7401 + portOffset} taken? --port-offset moves them): ${(err as Error).message}`);
  });
  if (finishing !== undefined) return;
  const cp = { url: listening[1] as string, adminToken: readFileSync(path.join(tmp, 'cp', 'admin-token'), 'utf8').trim() };
  const dashboard = listening[2] as string;

  // 2. Configuration and tokens, with the CLI.
  const applied = await trellis(['apply', '-f', here('./shop.yaml')], cp);
  if (applied.code !== 0) throw new Error(`trellis apply -f shop.yaml failed: ${applied.err}`);
  const tokens = new Map<string, string>();
  await Promise.all(
    ['frontend', 'products', 'reviews', 'loadgen'].map(async (service) => {
      const r = await trellis(['token', 'create', '--service', service, '--ttl', '1h'], cp);
      if (r.code !== 0) throw new Error(`trellis token create --service ${service} failed: ${r.err}`);
      tokens.set(service, r.out.trim());
    }),
  );

  if (finishing !== undefined) return;

  // 3. The shop, each instance its own process.
  const shop: { role: 'frontend' | 'products' | 'reviews'; name: string; version: string; failing?: boolean }[] = [
    { role: 'reviews', name: 'reviews-1', version: 'v1' },
    { role: 'products', name: 'products-v1a', version: 'v1' },
    { role: 'products', name: 'products-v1b', version: 'v1', failing: true },
    { role: 'products', name: 'products-v2', version: 'v2' },
    { role: 'frontend', name: 'frontend-1', version: 'v1' },
  ];
  for (const s of shop) {
    const child = startInstance({ ...s, urls: [cp.url], token: tokens.get(s.role) as string, cacheDir: path.join(tmp, `cache-${s.name}`) });
    instances.push(child);
    child.onLine((line) => {
      if (line.startsWith('EVENT ')) {
        event(line.slice(6));
        if (/ ejected /.test(line)) ejections++;
      } else if (line.startsWith('RETRIES ')) retries = Number(line.slice(8));
    });
  }
  await Promise.all(instances.map((c) => c.waitFor(/^READY$/m, 120_000)));
  if (finishing !== undefined) return;

  // 4. The load generator: a meshClient too, calling the frontend through the mesh.
  loadgen = await meshClient({ service: 'loadgen', controlPlane: [cp.url], token: tokens.get('loadgen') as string, cacheDir: path.join(tmp, 'cache-loadgen'), logger: { warn: (m) => event(`loadgen warning: ${m}`) } });
  const mesh = loadgen;
  for (let i = 0; i < 300 && (mesh.config?.services.get('frontend')?.endpoints?.length ?? 0) === 0; i++) await new Promise((r) => setTimeout(r, 100));
  // One request through every tier before the clock starts: the first connections (TLS
  // handshakes, gRPC channels) are made here rather than counted as the demo's latency.
  for (let i = 0; i < 30 && finishing === undefined; i++) {
    const ok = await mesh.http('frontend').request({ method: 'GET', path: '/products/1' }).then(
      async (res) => (await res.body.text(), res.statusCode === 200),
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (finishing !== undefined) return;

  console.log(`
control plane  ${cp.url}   (admin token: ${path.join(tmp, 'cp', 'admin-token')})
dashboard      ${dashboard}
try the CLI    export TRELLIS_CONTROL_PLANE=${cp.url} TRELLIS_ADMIN_TOKEN=$(cat ${path.join(tmp, 'cp', 'admin-token')})
               npx trellis stat products    npx trellis get instances    npx trellis check
processes      control-plane ${cpChild.pid}, ${instances.map((c) => `${c.name} ${c.pid}`).join(', ')}
traffic        ${RATE} req/s loadgen -> frontend -> products v1 (v1b fails 4 s in every 12) | v2 -> reviews (gRPC)
               for ${durationS} s; at ${(durationS / 2).toFixed(0)} s the canary: trellis apply -f examples/demo/canary.yaml (v2 0% -> 50%)
`);

  traffic = new Traffic([
    {
      client: mesh.http('frontend'),
      rate: RATE,
      maxInFlight: 32,
      path: () => `/products/${1 + Math.floor(Math.random() * 500)}`,
      onBody: (text) => {
        const v = /"version":"(v\d)"/.exec(text)?.[1];
        if (v !== 'v1' && v !== 'v2') return;
        versions[phase][v]++;
        intervalVersions[v]++;
      },
    },
  ]);
  t0 = performance.now();
  traffic.start();

  timers.push(setTimeout(() => {
    phase = 'after';
    event('canary: trellis apply -f examples/demo/canary.yaml (products v1 50%, v2 50%)');
    void trellis(['apply', '-f', here('./canary.yaml')], cp).then((r) => event(`canary: ${r.code === 0 ? r.out.trim().replace(/\n/g, '; ') : `failed: ${r.err.trim()}`}`));
  }, (durationS * 1000) / 2));
  timers.push(setTimeout(() => void finish(`${durationS} s elapsed`, 0), durationS * 1000));

  let printing = false;
  const print = async (): Promise<void> => {
    if (printing || finishing !== undefined || traffic === undefined) return;
    printing = true;
    const s = traffic.takeInterval().get('frontend');
    const split = intervalVersions;
    intervalVersions = { v1: 0, v2: 0 };
    const stat = await trellis(['stat', '--window', '10s'], cp);
    printing = false;
    if (finishing !== undefined || s === undefined) return;
    const answered = split.v1 + split.v2;
    const lines = [
      `── t=${elapsedS().toFixed(0)} s ${'─'.repeat(80)}`,
      `loadgen: ${s.requests} req, ${s.ok} ok, ${s.requests - s.ok} failed${failures(s)}; p50 ${percentile(s.latencies, 0.5).toFixed(1)} ms, p99 ${percentile(s.latencies, 0.99).toFixed(1)} ms`,
      `products answered: v1 ${pct(split.v1, answered)}, v2 ${pct(split.v2, answered)}   frontend -> products retries so far: ${retries}`,
      ...events.splice(0).map((e) => `  ${e}`),
      '$ trellis stat --window 10s',
      (stat.code === 0 ? stat.out : stat.err).trimEnd(),
    ];
    console.log(`${lines.join('\n')}\n`);
  };
  const ticker = setInterval(() => void print(), INTERVAL_MS);
  timers.push(ticker);
}

main().catch(async (err: unknown) => {
  console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
  await finish('error', 1);
});
