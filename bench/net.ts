/**
 * `npm run bench -- net`: what the connection-level edges cost, as ratios against their raw
 * counterparts in the same run (issue 12's figures):
 *
 *   tcp-connect   open a connection, write 32 bytes, read the echo, close — raw `net.connect`
 *                 to the 2 echo servers in turn vs `mesh.connect('echo')` (round-robin, retry,
 *                 breaker, outlier detection; plaintext). What the mesh adds is the opening.
 *   tcp-stream    32-byte echo round trips on connections opened beforehand — raw sockets vs
 *                 sockets from `mesh.connect()` (they are the same kind of socket: ~1.0).
 *   axios         `axios.get()` with a keep-alive `http.Agent` to the 2 HTTP servers in turn vs
 *                 `axios.get('http://products/', { httpAgent: mesh.agent })`.
 *
 * Upstreams run in child processes (bench/tcp-echo-upstream.ts, bench/upstream.ts). Rounds are
 * interleaved (the order rotates), after a warm-up round each; medians over rounds. Bounded:
 * ~40 s (`--quick` ~15 s). `--write` replaces the "Connections" section of docs/benchmarks.md.
 *
 * Usage: node --import tsx bench/net.ts [--quick] [--write]
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import axios from 'axios';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { LatencyBuffer, median, runRound } from './measure.js';
import type { Call, RoundResult } from './measure.js';
import { startUpstream } from './spawn-upstream.js';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, write: { type: 'boolean', default: false } }, allowPositionals: true });
const quick = args.quick ?? false;
const ROUNDS = quick ? 2 : 4;
const SECONDS = quick ? 1 : 2;
const CONCURRENCY = 16;
const MAX_SECONDS = 120;

const watchdog = setTimeout(() => {
  console.error(`bench/net.ts: still running after ${MAX_SECONDS} s, stopping`);
  process.exit(2);
}, MAX_SECONDS * 1000);
watchdog.unref();

function startEcho(count: number): Promise<{ ports: number[]; stop: () => void }> {
  const script = fileURLToPath(new URL('./tcp-echo-upstream.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, String(count), String(MAX_SECONDS)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const stop = (): void => {
    child.stdin?.end();
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /PORTS ([\d ]+)\n/.exec(buf);
      if (m?.[1] !== undefined) resolve({ ports: m[1].trim().split(' ').map(Number), stop });
    });
    child.once('exit', (code) => reject(new Error(`echo child exited (${code})`)));
  });
}

const PAYLOAD = Buffer.alloc(32, 'x');

/** Writes the payload and resolves once all of it came back. */
function echoOnce(socket: net.Socket): Promise<boolean> {
  return new Promise((resolve) => {
    let got = 0;
    const onData = (d: Buffer): void => {
      got += d.length;
      if (got >= PAYLOAD.length) {
        socket.off('data', onData);
        resolve(true);
      }
    };
    socket.on('data', onData);
    socket.write(PAYLOAD);
  });
}

async function connectEchoClose(open: () => Promise<net.Socket>): Promise<boolean> {
  const s = await open();
  const ok = await echoOnce(s);
  s.destroy();
  return ok;
}

function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.setNoDelay(true);
    s.once('error', reject);
  });
}

/** One socket per concurrent loop, used in turn. */
function streamCall(sockets: net.Socket[]): Call {
  let i = 0;
  const free = [...sockets];
  return async () => {
    const s = free.pop() ?? sockets[i++ % sockets.length];
    if (s === undefined) return false;
    const ok = await echoOnce(s);
    free.push(s);
    return ok;
  };
}

const echo = await startEcho(2);
const web = await startUpstream(2, MAX_SECONDS);
const config = `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { mtls: off }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: echo }
spec: { protocol: tcp, loadBalancer: round-robin, endpoints: [${echo.ports.map((p) => `"127.0.0.1:${p}"`).join(', ')}] }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec: { loadBalancer: round-robin, endpoints: [${web.ports.map((p) => `"127.0.0.1:${p}"`).join(', ')}], timeout: 5s }
`;
const mesh: Mesh = await meshClient({ service: 'bench', config, logger: { warn: () => undefined } });

let rr = 0;
const rawAgent = new http.Agent({ keepAlive: true });
const rawStream = await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => rawConnect(echo.ports[i % echo.ports.length] as number)));
const meshStream = await Promise.all(Array.from({ length: CONCURRENCY }, () => mesh.connect('echo')));

const contenders: { group: string; name: string; call: Call }[] = [
  { group: 'tcp-connect', name: 'raw', call: () => connectEchoClose(() => rawConnect(echo.ports[rr++ % echo.ports.length] as number)) },
  { group: 'tcp-connect', name: 'mesh', call: () => connectEchoClose(() => mesh.connect('echo')) },
  { group: 'tcp-stream', name: 'raw', call: streamCall(rawStream) },
  { group: 'tcp-stream', name: 'mesh', call: streamCall(meshStream) },
  { group: 'axios', name: 'raw', call: async () => (await axios.get(`http://127.0.0.1:${web.ports[rr++ % web.ports.length]}/`, { httpAgent: rawAgent })).status === 200 },
  { group: 'axios', name: 'mesh', call: async () => (await axios.get('http://products/', { httpAgent: mesh.agent })).status === 200 },
];

const lat = new LatencyBuffer();
const results = new Map<string, RoundResult[]>();
for (const c of contenders) await runRound(c.call, CONCURRENCY, 500, lat);
for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < contenders.length; k++) {
    const c = contenders[(k + round) % contenders.length];
    if (c === undefined) continue;
    const r = await runRound(c.call, CONCURRENCY, SECONDS * 1000, lat);
    const key = `${c.group}/${c.name}`;
    results.set(key, [...(results.get(key) ?? []), r]);
  }
}

const med = (key: string, f: (r: RoundResult) => number): number => median((results.get(key) ?? []).map(f));
const rows: string[] = [];
for (const group of ['tcp-connect', 'tcp-stream', 'axios']) {
  const raw = med(`${group}/raw`, (r) => r.rps);
  const m = med(`${group}/mesh`, (r) => r.rps);
  const errors = med(`${group}/mesh`, (r) => r.errors) + med(`${group}/raw`, (r) => r.errors);
  const cpuRaw = med(`${group}/raw`, (r) => r.cpuUsPerReq);
  const cpuMesh = med(`${group}/mesh`, (r) => r.cpuUsPerReq);
  rows.push(`| ${group} | ${raw.toFixed(0)} | ${m.toFixed(0)} | **${(m / raw).toFixed(2)}** | ${cpuRaw.toFixed(0)} / ${cpuMesh.toFixed(0)} | **${(cpuRaw / cpuMesh).toFixed(2)}** | ${med(`${group}/raw`, (r) => r.p50Ms).toFixed(2)} / ${med(`${group}/mesh`, (r) => r.p50Ms).toFixed(2)} | ${errors} |`);
}
const table = ['| edge | raw ops/s | mesh ops/s | throughput mesh / raw | client CPU µs/op raw / mesh | CPU raw / mesh | p50 ms raw / mesh | errors |', '| --- | --- | --- | --- | --- | --- | --- | --- |', ...rows].join('\n');
console.log(table);

for (const s of [...rawStream, ...meshStream]) s.destroy();
rawAgent.destroy();
await mesh.close({ drainTimeoutMs: 1000 });
echo.stop();
web.stop();

if (args.write === true) {
  const file = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));
  const doc = readFileSync(file, 'utf8');
  const section = `## Connections (bench/net.ts)

Raw counterparts against the connection-level edges, in the same run (\`npm run bench -- net\`,
bench/net.ts: upstreams in child processes, ${CONCURRENCY} in flight, ${ROUNDS} interleaved rounds of ${SECONDS} s,
medians; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, Node ${process.version}). \`tcp-connect\` opens a connection, echoes 32 bytes and
closes (the mesh adds its opening: stack, balancer, breaker, outlier accounting, metrics);
\`tcp-stream\` echoes 32 bytes on connections opened beforehand (a mesh connection is a plain
socket: nothing is added per byte); \`axios\` is \`axios.get()\` with a keep-alive \`http.Agent\`
against \`mesh.agent\`. Plaintext (\`mtls: off\`) on both sides. On a shared 2-core machine the
throughput ratio moves with the neighbours' load (the two \`tcp-stream\` contenders run the same
code on the same kind of socket); client CPU per operation is the steadier figure.

${table}
`;
  const start = doc.indexOf('## Connections (bench/net.ts)');
  let next: string;
  if (start < 0) next = `${doc.trimEnd()}\n\n${section}`;
  else {
    const after = doc.indexOf('\n## ', start + 3);
    next = doc.slice(0, start) + section + (after < 0 ? '' : doc.slice(after + 1));
  }
  writeFileSync(file, next);
}
process.exit(0);
