/**
 * `npm run bench -- controlplane`: how the control plane's push scales (issue 9's figures).
 *
 * A control-plane process (bench/controlplane-server.ts: the sync module on an HTTP/2 + mTLS
 * server over a MemoryStore) and INSTANCES lightweight instances in CLIENT_PROCESSES processes
 * (bench/controlplane-clients.ts: the real client stream, each on its own TLS connection, each
 * registered under a lease kept alive by its pings). Measured:
 *   - memory (RSS) and idle CPU of the control plane per connected instance;
 *   - one apply reaching every instance: commit → ACK per instance (the status ackedAt the
 *     control plane records), p50/p99/max, over ROUNDS applies (median of the rounds);
 *   - a reconnect storm: the control plane SIGKILLed and restarted on the same port; time from
 *     its listening to all instances connected again, and its peak CPU meanwhile.
 * Bounded by a watchdog; every child dies with this process.
 *
 * Usage: node --import tsx bench/run.ts controlplane [--instances N] [--processes P] [--rounds R]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { systemClock } from '../src/core/clock.js';
import { issueLeaf } from '../src/tls/authority.js';
import { generateP256KeyPair, privateKeyPem } from '../src/tls/keys.js';
import { makeCaMaterial, TRUST_DOMAIN } from '../test/helpers/control-plane-fixture.js';
import type { ExportedMaterial } from './controlplane-server.js';

const { values: args } = parseArgs({
  args: process.argv.slice(3),
  options: { instances: { type: 'string', default: '1000' }, processes: { type: 'string', default: '4' }, rounds: { type: 'string', default: '5' } },
});
const INSTANCES = Number(args.instances);
const CLIENT_PROCESSES = Number(args.processes);
const ROUNDS = Number(args.rounds);
const WATCHDOG_MS = 600_000;

const serverScript = fileURLToPath(new URL('./controlplane-server.ts', import.meta.url));
const clientScript = fileURLToPath(new URL('./controlplane-clients.ts', import.meta.url));
const children: ChildProcess[] = [];
const watchdog = setTimeout(() => {
  process.stderr.write('controlplane bench: watchdog fired, stopping\n');
  for (const c of children) c.kill('SIGKILL');
  process.exit(2);
}, WATCHDOG_MS);
watchdog.unref();

function ask<T>(child: ChildProcess, msg: unknown): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send(msg as object);
  });
}

function startServer(env: NodeJS.ProcessEnv, port: number): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(serverScript, [String(port)], { execArgv: ['--import', 'tsx'], env, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /PORT (\d+)/.exec(buf);
      if (m?.[1] !== undefined) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`control-plane process exited (${code})`)));
  });
}

async function waitConnected(child: ChildProcess, n: number): Promise<void> {
  let shown = performance.now();
  for (;;) {
    const s = await ask<{ connected: number }>(child, { cmd: 'stats' });
    if (s.connected >= n) return;
    if (performance.now() - shown > 5000) {
      shown = performance.now();
      process.stderr.write(`  … ${s.connected}/${n} connected\n`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

const m = await makeCaMaterial();
const material: ExportedMaterial = {
  anchorPem: m.ca.anchor.pem,
  issuerPem: m.ca.issuer.pem,
  issuerKeyPem: privateKeyPem(m.ca.issuer.key),
  tokenKeyPem: m.tokenKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  pin: m.pin,
  serving: m.serving,
};
const serverEnv = { ...process.env, TRELLIS_BENCH_MATERIAL: JSON.stringify(material) };
let cpProc = await startServer(serverEnv, 0);
const port = cpProc.port;
await new Promise((r) => setTimeout(r, 500));
const base = await ask<{ cpuUs: number; rss: number }>(cpProc.child, { cmd: 'stats' });

const per = Math.ceil(INSTANCES / CLIENT_PROCESSES);
for (let p = 0; p < CLIENT_PROCESSES; p++) {
  const keys = await generateP256KeyPair();
  const leaf = issueLeaf(m.ca, { service: 'bench', publicKey: keys.publicKey, ttlMs: 3_600_000 }, systemClock);
  const count = Math.min(per, INSTANCES - p * per);
  const env = { ...process.env, TRELLIS_BENCH_CLIENTS: JSON.stringify({ url: `https://127.0.0.1:${port}`, count, offset: p * per, ca: m.ca.bundlePem, cert: leaf.certificateChainPem, key: privateKeyPem(keys.privateKey), trustDomain: TRUST_DOMAIN }) };
  const c = fork(clientScript, [], { execArgv: ['--import', 'tsx'], env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(c);
}
const t0 = performance.now();
await waitConnected(cpProc.child, INSTANCES);
const connectMs = performance.now() - t0;
await new Promise((r) => setTimeout(r, 3000));
const connectedStats = await ask<{ cpuUs: number; rss: number }>(cpProc.child, { cmd: 'stats' });
const idle = await ask<{ peakPct: number; meanPct: number }>(cpProc.child, { cmd: 'sample', ms: 10_000, target: 0 });

const p50s: number[] = [];
const p99s: number[] = [];
const maxes: number[] = [];
const sents: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const res = await ask<{ latenciesMs: number[]; sentMs: number }>(cpProc.child, { cmd: 'apply' });
  sents.push(res.sentMs);
  const sorted = [...res.latenciesMs].sort((a, b) => a - b);
  p50s.push(pct(sorted, 50));
  p99s.push(pct(sorted, 99));
  maxes.push(sorted[sorted.length - 1] ?? Number.NaN);
  await new Promise((r2) => setTimeout(r2, 500));
}

// Reconnect storm: kill the control plane, restart it on the same port.
cpProc.child.kill('SIGKILL');
await new Promise((r) => cpProc.child.once('exit', r));
cpProc = await startServer(serverEnv, port);
const storm = await ask<{ peakPct: number; meanPct: number; allBackMs: number }>(cpProc.child, { cmd: 'sample', ms: 8000, target: INSTANCES });
const stormMs = storm.allBackMs;

const rssPer = (connectedStats.rss - base.rss) / INSTANCES;
const lines = [
  `Control plane, ${INSTANCES} instances in ${CLIENT_PROCESSES} processes, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}`,
  `  first connection of all (from starting the instance processes): ${(connectMs / 1000).toFixed(1)} s`,
  `  memory per connected instance:  ${(rssPer / 1024).toFixed(1)} KiB RSS (${(base.rss / 1048576).toFixed(0)} MiB → ${(connectedStats.rss / 1048576).toFixed(0)} MiB)`,
  `  idle CPU, all connected:        ${idle.meanPct.toFixed(1)} % of a core (${((idle.meanPct * 10_000) / INSTANCES).toFixed(1)} µs/s per instance: pings, lease keep-alives)`,
  `  apply → ACK by all (${ROUNDS} rounds, median of rounds): p50 ${median(p50s)} ms, p99 ${median(p99s)} ms, max ${median(maxes)} ms  [rounds p99: ${p99s.join(', ')}]; all written by the control plane after ${median(sents)} ms`,
  `  reconnect storm after a restart: all ${INSTANCES} back ${(stormMs / 1000).toFixed(1)} s after it listened; CPU peak ${storm.peakPct.toFixed(0)} % of a core (100 ms samples), mean ${storm.meanPct.toFixed(0)} % over the first 8 s`,
];
process.stdout.write(`${lines.join('\n')}\n`);
for (const c of children) c.kill('SIGKILL');
clearTimeout(watchdog);
