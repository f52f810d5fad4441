/**
 * What the mesh adds to a short gRPC stream against a unary call: a server-streaming call that
 * gets one reply (the smallest stream: the per-call setup is all there is) and a unary call, each
 * on a plain grpc-js channel and through the mesh (`trellis:` target, `clientOptions('echo')`,
 * metrics and tracing), in interleaved rounds of one process against one Echo server in a child
 * process (so the CPU measured is the client's). Both run compiled per-call paths over the same
 * route policies (src/grpc/unary-call.ts, src/grpc/stream-call.ts; until 2026-12-03 streams ran
 * the promise stack of grpc-stack.ts), so what the mesh adds to a stream is its per-call setup,
 * paid once per stream, not per message. A client stream of `--messages` (8) small messages,
 * whose server answers (headers included) only after reading them all, is the case where the
 * mesh keeps every message for a transparent replay (src/grpc/grpc-call.ts, `StreamRelay`) and
 * measures each one against the replay buffer's byte bound.
 *
 * The numbers in docs/benchmarks.md are from a `tsc` build of src/ and bench/ (tsx's esbuild
 * transform wraps every closure in a `__name()` call, which the shipped build does not have):
 * compile both with a tsconfig that extends ./tsconfig.json (outDir elsewhere, with the package's
 * package.json, node_modules and test/grpc/fixtures beside it) and run the built bench/grpc-stream.js.
 *
 * Run: node --import tsx bench/grpc-stream.ts [--rounds 5] [--seconds 2] [--concurrency 32] [--heap]
 *      [--messages 8] [--only cstream]
 * With --heap, bytes allocated per call (sampling heap profiler, collected objects included).
 * `--only` keeps the variants whose name contains it (unary, stream, cstream).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { systemClock, systemRandom } from '../src/core/clock.js';
import { loadConfig } from '../src/config/load.js';
import { MeshMetrics } from '../src/observability/metrics.js';
import { MeshTracer } from '../src/observability/tracer.js';
import { MeshGrpc } from '../src/grpc/channel.js';
import { benchDestinations } from './grpc-setup.js';
import { LatencyBuffer, median, runRound, sampledBytes } from './measure.js';
import type { Call, HeapNode, RoundResult } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const proto = protoLoader.loadSync(path.join(here, '../test/grpc/fixtures/echo.proto'), { keepCase: false });
const pkg = grpc.loadPackageDefinition(proto) as unknown as { trellis: { test: { Echo: grpc.ServiceClientConstructor } } };
const Echo = pkg.trellis.test.Echo;

interface Req {
  text: string;
  count?: number;
}

async function serve(): Promise<void> {
  const server = new grpc.Server();
  server.addService(Echo.service, {
    unary: (call: grpc.ServerUnaryCall<Req, object>, cb: grpc.sendUnaryData<object>) => cb(null, { text: call.request.text }),
    serverStream: (call: grpc.ServerWritableStream<Req, object>) => {
      for (let i = 0; i < (call.request.count ?? 1); i++) call.write({ text: call.request.text });
      call.end();
    },
    // Answers (headers and all) only after the whole upload.
    clientStream: (call: grpc.ServerReadableStream<Req, object>, cb: grpc.sendUnaryData<object>) => {
      let n = 0;
      call.on('data', () => n++);
      call.on('end', () => cb(null, { text: String(n) }));
    },
    bidi: (call: grpc.ServerDuplexStream<Req, object>) => call.end(),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  process.stdout.write(`${port}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

type UnaryFn = (req: Req, cb: (err: grpc.ServiceError | null) => void) => void;
type StreamFn = (req: Req) => grpc.ClientReadableStream<unknown>;
type UploadFn = (cb: (err: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<Req>;

function unaryCaller(client: grpc.Client): Call {
  const f = (client as unknown as { unary: UnaryFn }).unary.bind(client);
  return () => new Promise<boolean>((resolve) => f({ text: 'bench' }, (err) => resolve(err === null)));
}

function streamCaller(client: grpc.Client): Call {
  const f = (client as unknown as { serverStream: StreamFn }).serverStream.bind(client);
  return () =>
    new Promise<boolean>((resolve) => {
      const s = f({ text: 'bench', count: 1 });
      s.on('data', () => undefined);
      s.on('error', () => resolve(false));
      s.on('end', () => resolve(true));
    });
}

/** A client stream of `messages` writes of `{ text: 'bench' }`, the next written when the previous one's callback ran. */
function uploadCaller(client: grpc.Client, messages: number): Call {
  const f = (client as unknown as { clientStream: UploadFn }).clientStream.bind(client);
  return () =>
    new Promise<boolean>((resolve) => {
      const s = f((err) => resolve(err === null));
      let i = 0;
      const next = (): void => {
        if (i++ < messages) s.write({ text: 'bench' }, next);
        else s.end();
      };
      next();
    });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, seconds: { type: 'string' }, concurrency: { type: 'string' }, heap: { type: 'boolean' }, server: { type: 'boolean' }, messages: { type: 'string' }, only: { type: 'string' } } });
  if (values.server === true) {
    await serve();
    return;
  }
  const rounds = Number(values.rounds ?? 5);
  const seconds = Number(values.seconds ?? 2);
  const concurrency = Number(values.concurrency ?? 32);
  const messages = Number(values.messages ?? 8);
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--server'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString()))));
  const address = `127.0.0.1:${port}`;
  const config = await loadConfig(`apiVersion: trellis/v1
kind: Service
metadata: { name: echo }
spec:
  protocol: grpc
  loadBalancer: round-robin
  endpoints: [ { address: ${address} } ]
  retries: { attempts: 2 }
`);
  const destinations = benchDestinations(config);
  const mesh = new MeshGrpc({ service: 'bench', clock: systemClock, random: systemRandom, destinations, config: () => config, watch: () => () => undefined, metrics: new MeshMetrics(), tracer: new MeshTracer({ service: 'bench' }) });
  const plain = new Echo(address, grpc.credentials.createInsecure());
  const meshed = new Echo(mesh.target('echo'), mesh.credentials(), mesh.clientOptions('echo'));
  const variants: [string, Call][] = (
    [
      ['plain-unary', unaryCaller(plain)],
      ['mesh-unary', unaryCaller(meshed)],
      ['plain-stream', streamCaller(plain)],
      ['mesh-stream', streamCaller(meshed)],
      ['plain-cstream', uploadCaller(plain, messages)],
      ['mesh-cstream', uploadCaller(meshed, messages)],
    ] as [string, Call][]
  ).filter(([name]) => values.only === undefined || name.includes(values.only));
  const lat = new LatencyBuffer();
  for (const [, call] of variants) await runRound(call, concurrency, 700, lat); // connections and JIT
  const results = new Map<string, RoundResult[]>(variants.map(([n]) => [n, []]));
  const bytes = new Map<string, number[]>(variants.map(([n]) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    const order = variants.map((_, i) => variants[(i + r) % variants.length] as [string, Call]);
    for (const [name, call] of order) {
      const session = values.heap === true ? new Session() : undefined;
      if (session !== undefined) {
        session.connect();
        await session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      }
      const res = await runRound(call, concurrency, seconds * 1000, lat);
      if (session !== undefined) {
        const { profile } = await session.post('HeapProfiler.stopSampling');
        session.disconnect();
        bytes.get(name)?.push(sampledBytes((profile as unknown as { head: HeapNode }).head) / res.requests);
      }
      results.get(name)?.push(res);
      console.log(`round ${r + 1} ${name.padEnd(13)} ${res.rps.toFixed(0).padStart(7)} calls/s  ${res.cpuUsPerReq.toFixed(1).padStart(6)} µs CPU/call  errors ${res.errors}`);
    }
  }
  const med = (name: string, f: (x: RoundResult) => number): number => median((results.get(name) ?? []).map(f));
  console.log(`\nmedians over ${rounds} rounds of ${seconds} s, concurrency ${concurrency}:`);
  console.log('| variant | calls/s | CPU µs/call | bytes/call |');
  console.log('| :-- | --: | --: | --: |');
  for (const [name] of variants) {
    const b = bytes.get(name) ?? [];
    console.log(`| ${name} | ${med(name, (x) => x.rps).toFixed(0)} | ${med(name, (x) => x.cpuUsPerReq).toFixed(1)} | ${b.length > 0 ? median(b).toFixed(0) : '-'} |`);
  }
  plain.close();
  meshed.close();
  mesh.close();
  await destinations.close();
  child.stdin.end();
}

await main();
