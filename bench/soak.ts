/**
 * `npm run soak` (docs/reliability.md rows E1; not in CI): mixed traffic at a bounded rate for a fixed time
 * while everything that may change does:
 *
 * - 3 upstream node:http child processes (test/helpers/server-process.ts) behind the Service
 *   `products` (plaintext, `mtls: off`); every 5 s one of them is SIGKILLed and restarted on
 *   the same port 2.5 s later (endpoint churn);
 * - the Service `secure`, strict mTLS, served by bench/soak-server.ts in another child process;
 *   both sides hold issued identities with a 20 s life (renewed at two thirds: a rotation
 *   every ~13 s per side);
 * - the watched YAML is rewritten every 30 s (load balancer and timeout alternate).
 *
 * Traffic: every 10 ms a tick starts the calls due at `rate` since the start (70% GET products, 10% POST products,
 * 20% GET secure), with at most 256 in flight (calls over that are counted as not offered).
 * Lost = an idempotent call that failed, or any call that ended with neither a success nor a
 * typed Trellis error. A POST may fail with a typed error (it is never retried once sent).
 * Reported: lost/N, failures by code, heap (after GC), RSS, active handles at start and end,
 * event-loop delay p99. A watchdog ends the run if it overstays by 90 s.
 *
 * Usage: node --expose-gc --import tsx bench/soak.ts [--duration 10m] [--rate 200] [--no-flap] [--no-reload] [--no-tls] [--verbose]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createAuthority, createToken, generateTokenKey, isTrellisError, trellisErrorOf, issuedIdentity, localAuthoritySigner, meshClient, parseDuration, saveAuthority } from 'trellis';
import type { Clock, IdentityProvider } from 'trellis';
import { startProcessServer } from '../test/helpers/processes.js';
import type { ProcessServer } from '../test/helpers/processes.js';
import { saveTokenKey } from '../src/tls/authority-files.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10m' },
    rate: { type: 'string', default: '200' },
    // Turn one kind of churn off, to find which one costs requests.
    'no-flap': { type: 'boolean', default: false },
    'no-reload': { type: 'boolean', default: false },
    'no-tls': { type: 'boolean', default: false },
    // Print each rotation, kill, rewrite and the first 50 failures as they happen.
    verbose: { type: 'boolean', default: false },
  },
});
const durationMs = parseDuration(args.duration) ?? Number(args.duration) * 1000;
const rate = Number(args.rate);
if (!Number.isFinite(durationMs) || durationMs <= 0 || !Number.isFinite(rate) || rate <= 0) {
  process.stderr.write('usage: soak.ts [--duration 10m] [--rate 200]\n');
  process.exit(2);
}
const TD = 'example.org';
const clock: Clock = { now: () => performance.now(), wall: () => Date.now() };
const watchdog = setTimeout(() => {
  process.stderr.write('soak: watchdog fired, ending the run\n');
  process.exit(3);
}, durationMs + 90_000);
watchdog.unref();

const log = (m: string): void => void process.stdout.write(`[soak ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}\n`);
const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
function snapshot(): { heap: number; rss: number; handles: number; resources: string } {
  global.gc?.();
  const res = process.getActiveResourcesInfo();
  const byKind = new Map<string, number>();
  for (const r of res) byKind.set(r, (byKind.get(r) ?? 0) + 1);
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss, handles: res.length, resources: [...byKind].map(([k, v]) => `${k} ${v}`).join(', ') };
}

const t0 = performance.now();
const dir = mkdtempSync(path.join(os.tmpdir(), 'trellis-soak-'));
const procs: (ProcessServer | undefined)[] = await Promise.all(['u0', 'u1', 'u2'].map((n) => startProcessServer(n)));
const ports = procs.map((p) => (p as ProcessServer).port);
const cleanupProcs = (): void => {
  for (const p of procs) p?.kill('SIGKILL');
};
process.on('exit', cleanupProcs);

const [ca, tokenKey] = await Promise.all([createAuthority({ trustDomain: TD }, clock), generateTokenKey()]);
let rotations = 0;
const warnings: string[] = [];
function identityFor(service: string): IdentityProvider {
  const token = createToken(tokenKey, { service, ttlMs: 24 * 3_600_000 }, clock);
  const id = issuedIdentity(
    { service, trustDomain: TD, ttlMs: 20_000, sign: localAuthoritySigner(ca, tokenKey, token, { clock, ttlMs: 20_000 }) },
    { clock, onWarn: (m) => warnings.push(`${service}: ${m}`), renewCheckMs: 500 },
  );
  id.on('rotated', () => {
    rotations++;
    if (args.verbose) log(`rotated ${service}`);
  });
  return id;
}
const meshDoc = `apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { trustDomain: ${TD}, mtls: strict }\n`;
await saveAuthority(ca, path.join(dir, 'ca'));
await saveTokenKey(tokenKey, path.join(dir, 'ca'));
const secureChild = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./soak-server.ts', import.meta.url)), 'secure', path.join(dir, 'ca')], { stdio: ['pipe', 'pipe', 'inherit'] });
process.on('exit', () => secureChild.kill('SIGKILL'));
const served = await new Promise<{ port: number }>((resolve, reject) => {
  let buf = '';
  secureChild.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    const m = /PORT (\d+)\n/.exec(buf);
    if (m?.[1] !== undefined && buf !== '') {
      resolve({ port: Number(m[1]) });
      buf = '';
    }
    if (/ROTATED/.test(d.toString())) {
      rotations++;
      if (args.verbose) log('rotated secure');
    }
  });
  secureChild.once('exit', (code) => reject(new Error(`soak-server exited (${code})`)));
});

const file = path.join(dir, 'mesh.yaml');
let version = 0;
function writeConfig(): void {
  const lb = version % 2 === 0 ? 'round-robin' : 'least-request';
  const timeout = version % 2 === 0 ? '2s' : '3s';
  version++;
  writeFileSync(
    file,
    `${meshDoc}---
apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec:
  mtls: off
  endpoints: [ ${ports.map((p) => `{ address: "127.0.0.1:${p}" }`).join(', ')} ]
  loadBalancer: ${lb}
  timeout: ${timeout}
  retries: { attempts: 3, on: [connect-failure, reset, gateway-error], backoff: { base: 10ms, max: 100ms } }
  outlierDetection: { consecutiveFailures: 3, ejectionTime: 2s, maxEjectedPercent: 34 }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: secure }
spec:
  endpoints: [ { address: "127.0.0.1:${served.port}" } ]
  timeout: ${timeout}
`,
  );
}
writeConfig();
const clientId = identityFor('client');
const mesh = await meshClient({ service: 'client', config: file, identity: clientId, logger: { warn: (m) => warnings.push(m) } });

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const start = snapshot();
log(`load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs`);
log(`start: heap ${mib(start.heap)}, RSS ${mib(start.rss)}, ${start.handles} handles (${start.resources}); ${rate} req/s for ${(durationMs / 1000).toFixed(0)} s`);

const stats = { offered: 0, notOffered: 0, ok: 0, lostIdempotent: 0, untyped: 0, postFailed: 0, kills: 0, restarts: 0, reloads: 0 };
const failures = new Map<string, number>();
let inFlight = 0;
async function call(i: number): Promise<void> {
  const kind = i % 10;
  const post = kind === 0;
  const secure = kind >= 8 && !args['no-tls'];
  try {
    const res = await mesh.http(secure ? 'secure' : 'products').request({ method: post ? 'POST' : 'GET', path: `/soak/${i}`, ...(post ? { body: 'order' } : {}) });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    stats.ok++;
  } catch (err) {
    const code = trellisErrorOf(err)?.code ?? `untyped ${(err as { code?: string }).code ?? (err as Error).message}`;
    failures.set(`${post ? 'POST' : 'GET'} ${secure ? 'secure' : 'products'} ${code}`, (failures.get(`${post ? 'POST' : 'GET'} ${secure ? 'secure' : 'products'} ${code}`) ?? 0) + 1);
    if (args.verbose && stats.lostIdempotent + stats.untyped + stats.postFailed < 50) log(`failed: ${post ? 'POST' : 'GET'} ${secure ? 'secure' : 'products'} ${String(err)}${(err as Error).cause !== undefined ? ` (cause: ${String((err as Error).cause)})` : ''}`);
    if (!isTrellisError(err)) stats.untyped++;
    else if (post) stats.postFailed++;
    else stats.lostIdempotent++;
  }
}

const loadStart = performance.now();
const end = loadStart + durationMs;
let i = 0;
// Calls due so far at `rate` from the start, so timer drift under load does not lower the rate.
const ticker = setInterval(() => {
  const due = Math.floor((rate * (performance.now() - loadStart)) / 1000);
  while (stats.offered + stats.notOffered < due) {
    if (inFlight >= 256) {
      stats.notOffered++;
      continue;
    }
    stats.offered++;
    inFlight++;
    void call(i++).finally(() => inFlight--);
  }
}, 10);

let victim = 0;
const restarting = new Set<Promise<unknown>>();
const flapper = setInterval(() => {
  if (args['no-flap']) return;
  const n = victim++ % 3;
  procs[n]?.kill('SIGKILL');
  procs[n] = undefined;
  if (args.verbose) log(`killed u${n}`);
  stats.kills++;
  setTimeout(() => {
    if (performance.now() > end) return;
    const restart = startProcessServer(`u${n}`, { args: [String(ports[n])] }).then(
      (p) => {
        procs[n] = p;
        stats.restarts++;
      },
      (err: unknown) => log(`restart of u${n} failed: ${String(err)}`),
    );
    restarting.add(restart);
    void restart.finally(() => restarting.delete(restart));
  }, 2_500);
}, 5_000);
const reloader = setInterval(() => {
  if (args['no-reload']) return;
  writeConfig();
  stats.reloads++;
}, 30_000);
const progress = setInterval(() => {
  const s = snapshot();
  log(`${stats.offered} offered, ${stats.ok} ok, lost ${stats.lostIdempotent + stats.untyped}, POST failed ${stats.postFailed}; config v${mesh.configVersion}, rotations ${rotations}; heap ${mib(s.heap)}, ${s.handles} handles`);
}, 30_000);

while (performance.now() < end) await new Promise((r) => setTimeout(r, 250));
clearInterval(ticker);
clearInterval(flapper);
clearInterval(reloader);
clearInterval(progress);
const drainEnd = performance.now() + 10_000;
while (inFlight > 0 && performance.now() < drainEnd) await new Promise((r) => setTimeout(r, 50));
// Every upstream back before the final snapshot, so handle counts compare like for like.
await new Promise((r) => setTimeout(r, 2_600)); // a restart scheduled just before the end
await Promise.all([...restarting]);
await Promise.all(
  procs.map(async (p, n) => {
    if (p === undefined) procs[n] = await startProcessServer(`u${n}`, { args: [String(ports[n])] }).catch(() => undefined);
  }),
);
await new Promise((r) => setTimeout(r, 1_000));
loop.disable();
const fin = snapshot();
const lost = stats.lostIdempotent + stats.untyped;
log(`end: heap ${mib(fin.heap)} (Δ ${mib(fin.heap - start.heap)}), RSS ${mib(fin.rss)} (Δ ${mib(fin.rss - start.rss)}), ${fin.handles} handles (${fin.resources})`);
log(`requests: ${stats.offered} offered (${stats.notOffered} not offered: in-flight cap), ${stats.ok} ok; lost ${lost}/${stats.offered - Math.floor(stats.offered / 10)} idempotent (untyped ${stats.untyped}); POST typed failures ${stats.postFailed}`);
log(`failures by kind: ${[...failures].map(([k, v]) => `${k} ×${v}`).join('; ') || 'none'}`);
log(`churn: ${stats.kills} kills, ${stats.restarts} restarts, ${stats.reloads} config rewrites (now v${mesh.configVersion}), ${rotations} certificate rotations; event-loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(1)} ms; warnings ${warnings.length}${warnings.length > 0 ? ` (first: ${warnings[0]})` : ''}`);
for (const svc of mesh.inspect().services) {
  const c = svc.counters;
  log(`${svc.name}: ${c.requests} requests, ${c.retries} retries, ${c.budgetExhausted} retries refused by the budget; endpoints ejected now ${svc.endpoints.filter((e) => e.ejected).length}/${svc.endpoints.length}`);
}
log(`load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs`);
await mesh.close();
clientId.close();
secureChild.stdin?.end();
cleanupProcs();
rmSync(dir, { recursive: true, force: true });
process.exit(lost === 0 ? 0 : 1);
