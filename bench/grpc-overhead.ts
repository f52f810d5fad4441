/**
 * What the mesh's gRPC client side adds per unary call, in client CPU, without the network: the
 * same grpc-js client and channel, with an interceptor at the bottom that answers every call at
 * once (OK and a reply) instead of sending it. "plain" has only that interceptor; "mesh" has the
 * mesh's interceptor above it (`clientOptions(service)`: full unary stack with metrics, tracing
 * propagation, timeout, retry, balancer and endpoint accounting). Throughput benchmarks on a
 * shared, loaded machine drown a few microseconds in noise; this isolates them (the channel's
 * picker and the HTTP/2 transport, which the mesh does not change, are not exercised).
 *
 * Run: node --import tsx bench/grpc-overhead.ts [--calls 20000] [--rounds 7]
 */
import { parseArgs } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { systemClock, systemRandom } from '../src/core/clock.js';
import { MeshMetrics } from '../src/observability/metrics.js';
import { MeshTracer } from '../src/observability/tracer.js';
import { MeshGrpc } from '../src/grpc/channel.js';
import { benchDestinations, greeterConfig } from './grpc-setup.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const proto = protoLoader.loadSync(path.join(here, '../examples/grpc/greeter.proto'));
const { greeter } = grpc.loadPackageDefinition(proto) as unknown as { greeter: { Greeter: grpc.ServiceClientConstructor } };

/**
 * Answers every call at once: headers, the reply, OK. The channel's call below (never started)
 * is then ended, as a call that got its status ends: a deadline timer grpc-js armed for it is
 * cleared then, not left pending until the deadline (15 s of pending timers per client would
 * weigh on every call of the round, and is not what a real call costs).
 */
const answer: grpc.Interceptor = (options, nextCall) => {
  const below = nextCall(options);
  return new grpc.InterceptingCall(below, {
    start(_metadata, listener) {
      queueMicrotask(() => {
        listener.onReceiveMetadata(new grpc.Metadata());
        listener.onReceiveMessage({ message: 'hi' });
        listener.onReceiveStatus({ code: grpc.status.OK, details: 'OK', metadata: new grpc.Metadata() });
        below.cancelWithStatus(grpc.status.OK, 'answered in process');
      });
    },
    sendMessage() {},
    halfClose() {},
  });
};

type Unary = (req: object, cb: (err: grpc.ServiceError | null) => void) => void;

async function cpuPerCall(client: grpc.Client, calls: number, concurrency = 32): Promise<number> {
  const say = (client as unknown as { sayHello: Unary }).sayHello.bind(client);
  const one = (): Promise<void> => new Promise((resolve, reject) => say({ name: 'x' }, (err) => (err ? reject(err) : resolve())));
  const start = process.cpuUsage();
  let left = calls;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (left-- > 0) await one();
  }));
  const d = process.cpuUsage(start);
  return (d.user + d.system) / calls;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { calls: { type: 'string' }, rounds: { type: 'string' } } });
  const calls = Number(values.calls ?? 20000);
  const rounds = Number(values.rounds ?? 7);
  const config = await greeterConfig(['127.0.0.1:50001', '127.0.0.1:50002', '127.0.0.1:50003']);
  const destinations = benchDestinations(config);
  const mesh = new MeshGrpc({ service: 'bench', clock: systemClock, random: systemRandom, destinations, config: () => config, watch: () => () => undefined, metrics: new MeshMetrics(), tracer: new MeshTracer({ service: 'bench' }) });
  const plain = new greeter.Greeter('127.0.0.1:1', grpc.credentials.createInsecure(), { interceptors: [answer] });
  // grpc-js's own interceptor machinery: one more interceptor that does nothing.
  const noop: grpc.Interceptor = (options, nextCall) => new grpc.InterceptingCall(nextCall(options));
  const plainNoop = new greeter.Greeter('127.0.0.1:1', grpc.credentials.createInsecure(), { interceptors: [noop, answer] });
  const meshed = new greeter.Greeter('127.0.0.1:1', grpc.credentials.createInsecure(), { interceptors: [mesh.interceptor('greeter'), answer] });
  // The mesh's unary call inside a grpc-js InterceptingCall, as the interceptor returned it before
  // it handed the call back unwrapped.
  const meshInterceptor = mesh.interceptor('greeter');
  const wrapped: grpc.Interceptor = (options, nextCall) => new grpc.InterceptingCall(meshInterceptor(options, nextCall));
  const meshWrapped = new greeter.Greeter('127.0.0.1:1', grpc.credentials.createInsecure(), { interceptors: [wrapped, answer] });
  const contenders: [string, grpc.Client][] = [
    ['plain grpc-js client, answered in process', plain],
    ['plain + one no-op interceptor', plainNoop],
    ['through the mesh interceptor', meshed],
    ['the mesh inside an InterceptingCall', meshWrapped],
  ];
  for (const [, c] of contenders) await cpuPerCall(c, calls / 2);
  const results = contenders.map((): number[] => []);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < contenders.length; i++) {
      const k = (i + r) % contenders.length; // rotate the order every round
      results[k]?.push(await cpuPerCall((contenders[k] as [string, grpc.Client])[1], calls));
    }
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const base = med(results[0] as number[]);
  contenders.forEach(([name], i) => {
    const m = med(results[i] as number[]);
    console.log(`${name.padEnd(42)} ${m.toFixed(1)} µs CPU/call${i === 0 ? '' : ` (${m >= base ? '+' : ''}${(m - base).toFixed(1)} µs)`}`);
  });
  for (const [, c] of contenders) c.close();
  mesh.close();
  await destinations.close();
}

await main();
