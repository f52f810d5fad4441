/**
 * `npm run bench -- controlplane`: how the control plane's push and reports scale (the figures of
 * issues 9 and 10), measured on the real thing end to end.
 *
 * - The control plane: `startControlPlane` in its own process (bench/controlplane-server.ts), the
 *   embedded store in a temporary data directory, 127.0.0.1:0, no dashboard. Its CPU is read from
 *   /proc/<pid>/stat (user + system ticks), its memory from `process.memoryUsage()` after a GC.
 * - The fleet: INSTANCES instances of 20 services that call each other
 *   (bench/controlplane-topology.ts) in PROCESSES processes (bench/controlplane-clients.ts), each
 *   instance the real client stream on its own HTTP/2 + mTLS connection. This process bootstraps
 *   one certificate per service as an instance would: the CA bundle from GET /v1/ca checked
 *   against the pin, a token from POST /v1/tokens, a certificate from POST /v1/certificates.
 *
 * Measured, in order:
 *   1. memory and idle CPU per connected instance (pings and lease keep-alives, no reports), over
 *      QUIET_S seconds;
 *   2. ROUNDS applies (POST /v1/apply changing `billing-api`, in every instance's view): for each,
 *      when every instance received the snapshot carrying the apply's revision, counted from the
 *      apply's response (and from its request); p50/p99/max per round;
 *   3. reports on (one every 5 s per instance): their size, the control plane's CPU and memory
 *      with them over QUIET_S seconds, so the CPU of ingesting them;
 *   4. a reconnect storm: the control plane SIGKILLed and started again on the same data
 *      directory and port; time until every instance is connected again and has received (and
 *      ACKed) a snapshot, and the control plane's peak CPU (250 ms samples) meanwhile.
 *
 * Bounded by a watchdog (WATCHDOG_MS) that kills every child; the data directory is removed on
 * exit. Prints a markdown table.
 *
 * Usage: node --import tsx bench/run.ts controlplane [--instances N] [--processes P] [--rounds R]
 *        [--quiet S] [--rollout INSTANCES_PER_S]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { controlPlaneSigner } from '../src/controlplane-client/certificates.js';
import { fetchTrustBundle, type TrustBundle } from '../src/controlplane-client/pin.js';
import { controlPlaneServerIdentity } from '../src/controlplane-client/server-identity.js';
import { buildCsr } from '../src/tls/csr.js';
import { generateP256KeyPair, privateKeyPem } from '../src/tls/keys.js';
import { ENDPOINTS_EVERY } from '../src/controlplane-client/fleet-report.js';
import { fleetDocuments, serviceName, SERVICES, sharedService } from './controlplane-topology.js';
import type { ClientCommand, ClientsConfig, ReachedAnswer, ReportSizesAnswer, StateAnswer } from './controlplane-topology.js';

const { values: args } = parseArgs({
  args: process.argv.slice(3),
  options: {
    instances: { type: 'string', default: '1000' },
    processes: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '10' },
    quiet: { type: 'string', default: '20' },
    rollout: { type: 'string', default: '100' },
  },
});
const INSTANCES = Number(args.instances);
const PROCESSES = Number(args.processes);
const ROUNDS = Number(args.rounds);
const QUIET_S = Number(args.quiet);
/** Instances started per second, fleet-wide, before the measurements. */
const ROLLOUT_PER_S = Number(args.rollout);
const WATCHDOG_MS = 540_000;
/** Longest waits: for the first connection of all, for one apply to reach all, for the storm. */
const CONNECT_WAIT_MS = 180_000;
const APPLY_WAIT_MS = 30_000;
const STORM_WAIT_MS = 120_000;
const TICK_HZ = 100; // USER_HZ of /proc/<pid>/stat on Linux

const serverScript = fileURLToPath(new URL('./controlplane-server.ts', import.meta.url));
const clientScript = fileURLToPath(new URL('./controlplane-clients.ts', import.meta.url));
const wall = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (m: string): void => void process.stderr.write(`[controlplane bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'trellis-bench-cp-'));
const children = new Set<ChildProcess>();
function cleanup(): void {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
}
process.once('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
const watchdog = setTimeout(() => {
  log(`watchdog: still running after ${WATCHDOG_MS / 1000} s, stopping`);
  process.exit(2);
}, WATCHDOG_MS);
watchdog.unref();

// ---- processes ------------------------------------------------------------------------------

interface Cp {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  readonly pin: string;
}

function startCp(port: number): Promise<Cp> {
  const child = fork(serverScript, [dataDir, String(port)], { execArgv: ['--expose-gc', '--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error('the control plane did not start within 90 s')), 90_000);
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /READY (\{.*\})\n/.exec(buf);
      if (m?.[1] === undefined) return;
      clearTimeout(t);
      const r = JSON.parse(m[1]) as { url: string; port: number; pin: string };
      resolve({ child, url: r.url, port: r.port, pin: r.pin });
    });
    child.once('exit', (code) => reject(new Error(`the control-plane process exited (${code}) before it listened`)));
  });
}

/** One request, one answer (a child answers its messages in order; one outstanding per child). */
function ask<T>(child: ChildProcess, msg: unknown): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send(msg as object);
  });
}
const askAll = <T>(cs: ChildProcess[], msg: ClientCommand): Promise<T[]> => Promise.all(cs.map((c) => ask<T>(c, msg)));

/** CPU seconds (user + system) the process used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the comm field: state is fields[0], utime is field 14 of the whole line, stime 15.
  return (Number(fields[11]) + Number(fields[12])) / TICK_HZ;
}

/** The control plane's share of a core (%) over `ms`. */
async function cpuOver(pid: number, ms: number): Promise<number> {
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  await sleep(ms);
  return ((cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000)) * 100;
}

interface Mem {
  rss: number;
  heapUsed: number;
}
const memOf = async (cp: Cp): Promise<Mem & { connected: number }> => {
  const r = await ask<{ mem: Mem; connected: number }>(cp.child, { cmd: 'mem' });
  return { rss: r.mem.rss, heapUsed: r.mem.heapUsed, connected: r.connected };
};

// ---- the API, as the CLI calls it -----------------------------------------------------------

function api<T>(cp: Cp, trust: TrustBundle, token: string, method: string, route: string, body?: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(new URL(route, cp.url), {
      method,
      ca: trust.bundlePem,
      checkServerIdentity: controlPlaneServerIdentity(trust.trustDomain),
      agent: false,
      headers: { authorization: `Bearer ${token}`, ...(text !== undefined ? { 'content-type': 'application/json' } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const s = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode === undefined || res.statusCode >= 300) reject(new Error(`${method} ${route}: ${res.statusCode} ${s.slice(0, 500)}`));
        else resolve(JSON.parse(s) as T);
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

// ---- figures helpers ------------------------------------------------------------------------

function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}
const median = (xs: readonly number[]): number => pct([...xs].sort((a, b) => a - b), 50);
const ms = (x: number): string => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : 'n/a');
const kib = (b: number): string => (b / 1024).toFixed(1);
const mib = (b: number): string => (b / 1048576).toFixed(0);

// ---- the run --------------------------------------------------------------------------------

log(`data directory ${dataDir}; ${INSTANCES} instances in ${PROCESSES} processes; load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
let cp = await startCp(0);
const adminToken = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
const trust = await fetchTrustBundle(cp.url, cp.pin);
await api(cp, trust, adminToken, 'POST', '/v1/apply', fleetDocuments());

// One certificate per service, bootstrapped as an instance does (token, CSR, /v1/certificates).
const certificates: ClientsConfig['certificates'] = {};
for (let i = 0; i < SERVICES; i++) {
  const service = serviceName(i);
  const { token } = await api<{ token: string }>(cp, trust, adminToken, 'POST', '/v1/tokens', { service, ttl: '1h' });
  const keys = await generateP256KeyPair();
  const sign = controlPlaneSigner({ urls: [cp.url], service, trust: () => trust, token, current: () => undefined });
  const issued = await sign(buildCsr(keys, service));
  certificates[service] = { cert: issued.certificateChainPem, key: privateKeyPem(keys.privateKey), notAfter: Date.parse(new X509Certificate(issued.certificateChainPem).validTo) };
}
await sleep(2000);
const memBase = await memOf(cp);
const cpuBase = await cpuOver(cp.child.pid as number, 5000);
log(`control plane up: rss ${mib(memBase.rss)} MiB, heap ${mib(memBase.heapUsed)} MiB, idle CPU ${cpuBase.toFixed(1)} %`);

const clients: ChildProcess[] = [];
const per = Math.ceil(INSTANCES / PROCESSES);
const tStart = wall();
for (let p = 0; p < PROCESSES; p++) {
  const config: ClientsConfig = { url: cp.url, bundlePem: trust.bundlePem, trustDomain: trust.trustDomain, certificates, from: p * per, to: Math.min(INSTANCES, (p + 1) * per), startPerSecond: ROLLOUT_PER_S / PROCESSES };
  const c = fork(clientScript, [], { execArgv: ['--import', 'tsx'], env: { ...process.env, TRELLIS_BENCH_CLIENTS: JSON.stringify(config) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(c);
  clients.push(c);
}
await Promise.all(clients.map((c) => new Promise((r) => c.once('message', r))));

const state = async (since: number): Promise<StateAnswer> => {
  const all = await askAll<StateAnswer>(clients, { cmd: 'state', since });
  return all.reduce((a, b) => ({
    connected: a.connected + b.connected,
    connectedSince: a.connectedSince + b.connectedSince,
    lastConnectedAt: Math.max(a.lastConnectedAt, b.lastConnectedAt),
    snapshotSince: a.snapshotSince + b.snapshotSince,
    lastSnapshotAt: Math.max(a.lastSnapshotAt, b.lastSnapshotAt),
    snapshots: a.snapshots + b.snapshots,
    snapshotBytes: Math.max(a.snapshotBytes, b.snapshotBytes),
    reasons: mergeCounts(a.reasons, b.reasons),
  }));
};
function mergeCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}
const reasonsText = (r: Record<string, number>): string =>
  Object.entries(r)
    .sort((x, y) => y[1] - x[1])
    .map(([k, v]) => `${v} × ${k}`)
    .join('; ') || 'none';
/** CPU pressure of the machine (PSI, % of time some task waited for a CPU, last 60 s). */
function cpuPressure(): string {
  try {
    return `${/avg60=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1] ?? '?'} %`;
  } catch {
    return 'n/a';
  }
}

// All connected, then settled: no snapshot for 2 s (every registration pushed and ACKed).
for (let k = 0; ; k++) {
  const s = await state(tStart);
  if (s.connected >= INSTANCES && s.snapshotSince >= INSTANCES) break;
  if (wall() - tStart > CONNECT_WAIT_MS) {
    log(`only ${s.connected} of ${INSTANCES} connected after ${CONNECT_WAIT_MS / 1000} s; going on with them`);
    break;
  }
  if (k % 20 === 19) log(`${s.connected} connected, ${s.snapshotSince} with a snapshot, ${s.snapshots} snapshots so far; failures: ${reasonsText(s.reasons)}`);
  await sleep(250);
}
const connectedMs = wall() - tStart;
let lastCount = -1;
for (let quietFor = 0, deadline = wall() + 60_000; quietFor < 2000 && wall() < deadline; ) {
  const s = await state(tStart);
  quietFor = s.snapshots === lastCount ? quietFor + 250 : 0;
  lastCount = s.snapshots;
  await sleep(250);
}
const settledMs = wall() - tStart;
const first = await state(tStart);
log(`all ${first.connected} connected after ${(connectedMs / 1000).toFixed(1)} s, pushes settled after ${(settledMs / 1000).toFixed(1)} s (${first.snapshots} snapshots, ~${kib(first.snapshotBytes)} KiB each)`);

// 1. Idle: pings and keep-alives only.
const cpuIdle = await cpuOver(cp.child.pid as number, QUIET_S * 1000);
const memConnected = await memOf(cp);
log(`idle with ${memConnected.connected} connected: CPU ${cpuIdle.toFixed(1)} %, rss ${mib(memConnected.rss)} MiB, heap ${mib(memConnected.heapUsed)} MiB`);

// 2. Applies.
interface Round {
  revision: number;
  fromResponse: number[];
  fromRequest: number[];
  missing: number;
  responseMs: number;
  /** CPU seconds the control plane used from the request until every instance had it. */
  cpuS: number;
}
const rounds: Round[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const cpu0 = cpuSeconds(cp.child.pid as number);
  const t0 = wall();
  const res = await api<{ revision: number }>(cp, trust, adminToken, 'POST', '/v1/apply', sharedService(3 + (r % 20)));
  const tResp = wall();
  let at: number[] = [];
  let cpuS = 0;
  for (const deadline = tResp + APPLY_WAIT_MS; wall() < deadline; ) {
    await sleep(100);
    cpuS = cpuSeconds(cp.child.pid as number) - cpu0;
    at = (await askAll<ReachedAnswer>(clients, { cmd: 'reached', version: res.revision })).flatMap((a) => a.at);
    if (at.every((t) => t >= 0)) break;
  }
  const got = at.filter((t) => t >= 0);
  rounds.push({ revision: res.revision, fromResponse: got.map((t) => t - tResp).sort((a, b) => a - b), fromRequest: got.map((t) => t - t0).sort((a, b) => a - b), missing: at.length - got.length, responseMs: tResp - t0, cpuS });
  const last = rounds[rounds.length - 1] as Round;
  log(`apply ${r + 1}/${ROUNDS} (revision ${res.revision}, answered in ${ms(last.responseMs)} ms, control plane CPU ${ms(cpuS * 1000)} ms): p50 ${ms(pct(last.fromResponse, 50))} ms, p99 ${ms(pct(last.fromResponse, 99))} ms, max ${ms(pct(last.fromResponse, 100))} ms after the response${last.missing > 0 ? `, ${last.missing} never reached` : ''}`);
  await sleep(1000);
}

// 3. Reports on.
await askAll(clients, { cmd: 'reports', on: true });
await sleep(11_000); // two reports each before measuring
const cpuReports = await cpuOver(cp.child.pid as number, QUIET_S * 1000);
const memReports = await memOf(cp);
const sizeAnswers = await askAll<ReportSizesAnswer>(clients, { cmd: 'reportSizes' });
const sum = (k: 'plain' | 'lists'): { count: number; bytes: number } => sizeAnswers.reduce((a, b) => ({ count: a.count + b[k].count, bytes: a.bytes + b[k].bytes }), { count: 0, bytes: 0 });
const plain = sum('plain');
const lists = sum('lists');
const plainB = plain.bytes / Math.max(1, plain.count);
const listsB = lists.bytes / Math.max(1, lists.count);
// In steady state one report in ENDPOINTS_EVERY carries the endpoint lists.
const meanB = (plainB * (ENDPOINTS_EVERY - 1) + listsB) / ENDPOINTS_EVERY;
const stat = await api<{ reportingInstances: number }>(cp, trust, adminToken, 'GET', '/v1/stat?window=10s');
log(`reports on: CPU ${cpuReports.toFixed(1)} %, rss ${mib(memReports.rss)} MiB, heap ${mib(memReports.heapUsed)} MiB; ${stat.reportingInstances} instances in /v1/stat (10s)`);

// 4. Reconnect storm (reports stay on).
const tKill = wall();
const port = cp.port;
cp.child.kill('SIGKILL');
await new Promise((r) => cp.child.once('exit', r));
cp = await startCp(port);
const tListen = wall();
const pid = cp.child.pid as number;
let peakCpu = 0;
let cpuStorm = 0;
let back: StateAnswer | undefined;
let lastCpu = cpuSeconds(pid);
let lastAt = performance.now();
const stormCpu0 = lastCpu;
const stormT0 = lastAt;
for (const deadline = tListen + STORM_WAIT_MS; wall() < deadline; ) {
  await sleep(250);
  const c = cpuSeconds(pid);
  const now = performance.now();
  peakCpu = Math.max(peakCpu, ((c - lastCpu) / ((now - lastAt) / 1000)) * 100);
  lastCpu = c;
  lastAt = now;
  const s = await state(tKill);
  if (s.connectedSince >= INSTANCES && s.snapshotSince >= INSTANCES) {
    back = s;
    break;
  }
}
cpuStorm = ((lastCpu - stormCpu0) / ((lastAt - stormT0) / 1000)) * 100;
const storm = back ?? (await state(tKill));
const afterStorm = await state(0);
log(`storm: ${storm.connectedSince} reconnected, ${storm.snapshotSince} got a snapshot; CPU peak ${peakCpu.toFixed(0)} %, mean ${cpuStorm.toFixed(0)} %`);

// ---- the table ------------------------------------------------------------------------------

const all = (k: 'fromResponse' | 'fromRequest', p: number): number[] => rounds.map((r) => pct(r[k], p));
const perInstance = (a: number, b: number, n: number): number => (b - a) / n;
const reportsPerS = memReports.connected / 5;
const rows: [string, string][] = [
  ['instances (processes), services', `${INSTANCES} (${PROCESSES}), ${SERVICES} + billing-api`],
  [`rollout at ${ROLLOUT_PER_S}/s: all connected / pushes settled (snapshots pushed)`, `${first.connected < INSTANCES ? `${first.connected} only after ` : ''}${(connectedMs / 1000).toFixed(1)} s / ${(settledMs / 1000).toFixed(1)} s (${first.snapshots})`],
  ['snapshot size (one service\'s view)', `~${kib(first.snapshotBytes)} KiB`],
  [`apply → all ${INSTANCES} received, p50 (median of ${ROUNDS} rounds; worst round)`, `${ms(median(all('fromResponse', 50)))} ms; ${ms(Math.max(...all('fromResponse', 50)))} ms`],
  [`apply → all received, p99 (median; worst round)`, `${ms(median(all('fromResponse', 99)))} ms; ${ms(Math.max(...all('fromResponse', 99)))} ms`],
  [`apply → all received, max (median; worst round)`, `${ms(median(all('fromResponse', 100)))} ms; ${ms(Math.max(...all('fromResponse', 100)))} ms`],
  ['control-plane CPU per apply, request → all received (median)', `${ms(median(rounds.map((r) => r.cpuS * 1000)))} ms`],
  ['apply answered (request → response, median)', `${ms(median(rounds.map((r) => r.responseMs)))} ms (p99 from the request: ${ms(median(all('fromRequest', 99)))} ms)`],
  ['instances never reached (all rounds)', String(rounds.reduce((a, r) => a + r.missing, 0))],
  ['control plane before any instance: RSS, heap', `${mib(memBase.rss)} MiB, ${mib(memBase.heapUsed)} MiB`],
  [`memory per connected instance: RSS, heap (no reports; ${memConnected.connected} connected)`, `${kib(perInstance(memBase.rss, memConnected.rss, memConnected.connected))} KiB, ${kib(perInstance(memBase.heapUsed, memConnected.heapUsed, memConnected.connected))} KiB`],
  [`memory per connected instance with reports (${memReports.connected} connected)`, `${kib(perInstance(memBase.rss, memReports.rss, memReports.connected))} KiB, ${kib(perInstance(memBase.heapUsed, memReports.heapUsed, memReports.connected))} KiB`],
  [`CPU, no reports (${QUIET_S} s, ${memConnected.connected} connected)`, `${cpuIdle.toFixed(1)} % of a core = ${((cpuIdle * 10_000) / memConnected.connected).toFixed(1)} µs/s per instance`],
  [`CPU with reports (${QUIET_S} s, ${memReports.connected} connected)`, `${cpuReports.toFixed(1)} % of a core = ${((cpuReports * 10_000) / memReports.connected).toFixed(1)} µs/s per instance`],
  ['CPU of ingesting reports (difference of the two windows: noisy on a loaded machine)', `${(cpuReports - cpuIdle).toFixed(1)} % of a core for ${reportsPerS} reports/s = ${(((cpuReports - cpuIdle) * 10_000) / reportsPerS).toFixed(0)} µs per report`],
  ['report payload per instance: without / with endpoint lists (every 6th); mean', `${kib(plainB)} KiB / ${kib(listsB)} KiB; ${kib(meanB)} KiB per 5 s = ${(meanB / 5).toFixed(0)} B/s (${plain.count + lists.count} reports)`],
  ['reporting instances seen by /v1/stat', String(stat.reportingInstances)],
  ['reconnect storm: all reconnected (from the restart listening; from the kill)', `${((storm.lastConnectedAt - tListen) / 1000).toFixed(1)} s; ${((storm.lastConnectedAt - tKill) / 1000).toFixed(1)} s (${storm.connectedSince}/${INSTANCES})`],
  ['reconnect storm: all received and ACKed a snapshot (from listening)', `${((storm.lastSnapshotAt - tListen) / 1000).toFixed(1)} s (${storm.snapshotSince}/${INSTANCES})`],
  ['reconnect storm: control plane restart (kill → listening)', `${((tListen - tKill) / 1000).toFixed(1)} s`],
  ['reconnect storm: control-plane CPU peak (250 ms samples), mean', `${peakCpu.toFixed(0)} %, ${cpuStorm.toFixed(0)} % of a core`],
];
const header = `Control plane, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, CPU pressure ${cpuPressure()} (some, 60 s)`;
process.stdout.write(`\n${header}\n\n| figure | value |\n|---|---|\n${rows.map(([k, v]) => `| ${k} | ${v} |`).join('\n')}\n`);
process.stdout.write(`\nstream failures over the run (client side): ${reasonsText(afterStorm.reasons)}\n`);
process.stdout.write(`\nper round (ms after the apply's response): ${rounds.map((r) => `${ms(pct(r.fromResponse, 50))}/${ms(pct(r.fromResponse, 99))}/${ms(pct(r.fromResponse, 100))}`).join(', ')} (p50/p99/max)\n`);
clearTimeout(watchdog);
cleanup();
