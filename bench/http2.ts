/**
 * HTTP/2 through the mesh against raw undici, in the same run: three node:http2 h2c upstreams in
 * a child process (so the CPU measured is the client's alone), called with
 * - raw undici: one `Pool` per upstream with `allowH2` and prior-knowledge h2c (one connection,
 *   100 streams, the options the mesh gives its own pools), round-robin over them;
 * - the mesh: `mesh.http('h2').request()` on a `protocol: http2` Service with the full stack
 *   (round-robin, timeout, retries with budget, breaker, outlier detection, metrics, tracing).
 * Alternating rounds, a short unmeasured warm-up, no forced GC (steady state).
 *
 * Run: node --import tsx bench/http2.ts [--rounds 3] [--seconds 3] [--concurrency 32]
 */
import { spawn } from 'node:child_process';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { meshClient } from '../src/index.js';
import { LatencyBuffer, median, runRound } from './measure.js';
import type { Call, RoundResult } from './measure.js';

const BODY = JSON.stringify({ ok: true, items: [1, 2, 3] });

async function serve(): Promise<void> {
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) {
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) });
      stream.end(BODY);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    ports.push((server.address() as AddressInfo).port);
  }
  process.stdout.write(`${JSON.stringify(ports)}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { server: { type: 'boolean' }, rounds: { type: 'string' }, seconds: { type: 'string' }, concurrency: { type: 'string' } } });
  if (values.server === true) return serve();
  const rounds = Number(values.rounds ?? 3);
  const seconds = Number(values.seconds ?? 3);
  const concurrency = Number(values.concurrency ?? 32);
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--server'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const ports = await new Promise<number[]>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()) as number[])));

  const pools = ports.map((p) => new Pool(`http://127.0.0.1:${p}`, { allowH2: true, connect: { useH2c: true } as Record<string, unknown>, connections: 1, pipelining: 100 }));
  let next = 0;
  const raw: Call = async () => {
    const pool = pools[next++ % pools.length] as Pool;
    const r = await pool.request({ method: 'GET', path: '/list', headers: { host: 'h2' } });
    await r.body.text();
    return r.statusCode === 200;
  };

  const mesh = await meshClient({
    service: 'bench',
    config: `apiVersion: trellis/v1
kind: Service
metadata: { name: h2 }
spec:
  protocol: http2
  loadBalancer: round-robin
  endpoints: [ ${ports.map((p) => `{ address: "127.0.0.1:${p}" }`).join(', ')} ]
  timeout: 2s
  retries: { attempts: 3, perTryTimeout: 500ms, budget: { ratio: 0.2, minPerSecond: 10 } }
  circuitBreaker: { errorThresholdPercent: 50, volumeThreshold: 20, resetTimeout: 10s }
  outlierDetection: { consecutiveFailures: 5, ejectionTime: 30s, maxEjectedPercent: 50 }
`,
    logger: { warn: () => undefined },
  });
  const client = mesh.http('h2');
  const viaMesh: Call = async () => {
    const r = await client.request({ method: 'GET', path: '/list' });
    await r.body.text();
    return r.statusCode === 200;
  };

  const variants: [string, Call][] = [['raw undici (h2c Pool)', raw], ['mesh.http() protocol: http2', viaMesh]];
  const lat = new LatencyBuffer();
  for (const [, call] of variants) await runRound(call, concurrency, 500, lat);
  const results = new Map<string, RoundResult[]>(variants.map(([name]) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, call] of r % 2 === 0 ? variants : [...variants].reverse()) {
      await runRound(call, concurrency, 300, lat); // unmeasured warm-up of this variant
      const res = await runRound(call, concurrency, seconds * 1000, lat);
      results.get(name)?.push(res);
      console.log(`round ${r + 1} ${name.padEnd(30)} ${res.rps.toFixed(0).padStart(7)} req/s  p50 ${res.p50Ms.toFixed(2)} ms  ${res.cpuUsPerReq.toFixed(1)} µs CPU/req  errors ${res.errors}`);
    }
  }
  const med = (name: string, f: (x: RoundResult) => number): number => median((results.get(name) ?? []).map(f));
  const base = variants[0]?.[0] as string;
  console.log(`\nmedians over ${rounds} rounds of ${seconds} s, concurrency ${concurrency}:`);
  for (const [name] of variants) {
    const rps = med(name, (x) => x.rps);
    const cpu = med(name, (x) => x.cpuUsPerReq);
    console.log(`${name.padEnd(30)} ${rps.toFixed(0).padStart(7)} req/s (${(rps / med(base, (x) => x.rps)).toFixed(2)}x raw)  ${cpu.toFixed(1)} µs CPU/req (+${(cpu - med(base, (x) => x.cpuUsPerReq)).toFixed(1)} µs)`);
  }
  for (const p of pools) await p.close();
  await mesh.close();
  child.stdin.end();
}

await main();
