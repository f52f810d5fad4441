/**
 * `npm run demo`: five example services on loopback (examples/demo/services.ts), one caller
 * meshed with examples/demo/mesh.yaml, and live traffic through it. Every 2 s it prints what
 * each endpoint served and how the mesh sees it (ewma latency, load, ejection), what the caller
 * saw (outcomes, latency, retries, budget, breaker) and the events in between. Stops after
 * --duration seconds or on Ctrl-C, prints a summary, closes everything and exits 0.
 *
 * Usage: node --import tsx examples/demo/main.ts [--duration SECONDS] [--help]
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { meshClient } from 'trellis';
import type { Mesh, MeshInspection } from 'trellis';
import { PortInUseError, startServices } from './services.js';
import type { DemoServices } from './services.js';
import { Traffic } from './traffic.js';
import { View } from './view.js';

const INTERVAL_MS = 2_000;

const USAGE = `usage: npm run demo -- [--duration SECONDS]
  (or: node --import tsx examples/demo/main.ts [--duration SECONDS])

  -d, --duration SECONDS  how long to run (default 60); Ctrl-C stops earlier
  --port-offset N         move every demo port by N (7081+N, ...), to run beside another demo;
                          mesh.yaml is then read once, with the ports moved, and not watched
  -h, --help              print this and exit`;

function parseOptions(): { seconds: number; portOffset: number } {
  let values: { duration?: string | undefined; help?: boolean | undefined; 'port-offset'?: string | undefined };
  try {
    ({ values } = parseArgs({ options: { duration: { type: 'string', short: 'd', default: '60' }, help: { type: 'boolean', short: 'h' }, 'port-offset': { type: 'string', default: '0' } } }));
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    process.exit(2);
  }
  // Asked-for help is not a mistake: usage on stdout, exit 0.
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
const t0 = performance.now();
const elapsedS = (): number => (performance.now() - t0) / 1000;
const events: string[] = [];
const eventCounts = new Map<string, number>();
const event = (kind: string, text: string): void => {
  events.push(`${`+${elapsedS().toFixed(2)}`.padStart(7)} s  ${text}`);
  if (kind !== '') eventCounts.set(kind, (eventCounts.get(kind) ?? 0) + 1);
};

let services: DemoServices;
try {
  services = await startServices((m) => event('', m), portOffset);
} catch (err) {
  console.error(`demo: ${err instanceof PortInUseError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
}

const configPath = fileURLToPath(new URL('./mesh.yaml', import.meta.url));
/** mesh.yaml with every loopback port moved by `offset` (the services moved with it). */
function movePorts(text: string, offset: number): string {
  return text.replace(/127\.0\.0\.1:(\d+)/g, (_, port: string) => `127.0.0.1:${Number(port) + offset}`);
}

let mesh: Mesh;
try {
  mesh = await meshClient({
    service: 'demo-caller',
    config: portOffset === 0 ? configPath : movePorts(readFileSync(configPath, 'utf8'), portOffset),
    logger: { warn: (m) => event('warnings', `warning   ${m}`) },
  });
} catch (err) {
  console.error(`demo: cannot create the mesh client: ${err instanceof Error ? err.message : String(err)}`);
  await services.close();
  process.exit(1);
}

const breakerStates = new Map<string, string>();
mesh.on('breaker', ({ service, state }) => {
  event('breaker changes', `breaker   ${service.padEnd(9)} ${breakerStates.get(service) ?? 'closed'} → ${state}`);
  breakerStates.set(service, state);
});
mesh.on('ejection', ({ service, endpoint, ejected }) => {
  event(ejected ? 'ejections' : 'returns from ejection', `ejection  ${service.padEnd(9)} ${endpoint} ${ejected ? 'ejected' : 'back in rotation'}`);
});
mesh.on('config', ({ version }) => {
  if (version > 1) event('config reloads', `config    mesh.yaml changed: version ${version} applied`);
});
mesh.on('config-error', (err) => event('config errors', `config    mesh.yaml refused, previous version kept: ${err.message}`));

const traffic = new Traffic([
  { client: mesh.http('products'), rate: 140, maxInFlight: 32, path: () => `/products/${1 + Math.floor(Math.random() * 500)}` },
  { client: mesh.http('reviews'), rate: 60, maxInFlight: 16, path: () => `/reviews/${1 + Math.floor(Math.random() * 500)}` },
]);
const view = new View(services.list, INTERVAL_MS / 1000);

console.log(`Trellis demo: ${traffic.rate} req/s from one caller to products (3 endpoints) and reviews (2),`);
console.log(`meshed by examples/demo/mesh.yaml, for ${durationS} s (Ctrl-C stops early).`);
for (const s of services.list) console.log(`  ${s.name.padEnd(11)} 127.0.0.1:${s.port}  ${s.version}  ${s.behaviour}`);
console.log();
traffic.start();

const printer = setInterval(() => {
  const out = view.snapshot(elapsedS(), traffic.rate, mesh.inspect(), traffic.takeInterval(), events.splice(0));
  console.log(`${out}\n`);
}, INTERVAL_MS);

let finishing: Promise<void> | undefined;
function finish(reason: string): Promise<void> {
  finishing ??= (async () => {
    clearTimeout(deadline);
    clearInterval(printer);
    console.log(`\nstopping (${reason}): waiting for requests in flight...`);
    await traffic.stop(2_000);
    let inspection: MeshInspection | undefined;
    try {
      inspection = mesh.inspect();
    } catch {
      inspection = undefined;
    }
    if (events.length > 0) console.log(['events', ...events.splice(0).map((e) => `  ${e}`)].join('\n'));
    console.log(view.summary(elapsedS(), inspection, traffic.totals(), eventCounts));
    await mesh.close();
    await services.close();
    console.log('mesh and servers closed.');
    process.exitCode = 0;
    // Everything is closed, so the process should exit now; if a handle keeps it, say so and go.
    setTimeout(() => {
      console.error('demo: an open handle kept the process alive after close; exiting');
      process.exit(0);
    }, 3_000).unref();
  })().catch((err: unknown) => {
    console.error(`demo: shutdown failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  });
  return finishing;
}

const deadline = setTimeout(() => void finish(`${durationS} s elapsed`), durationS * 1000);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (finishing !== undefined) {
      console.error('demo: second signal, exiting now');
      process.exit(130);
    }
    void finish(signal);
  });
}
