/**
 * gRPC unary throughput and client CPU per call: a plain grpc-js channel (round_robin over the
 * three servers) against the same calls through the mesh (trellis: target, `trellis` LB policy
 * and the client interceptor, with metrics and tracing on), in alternating rounds of the same
 * run so machine noise hits both alike. The servers (three grpc-js Greeter servers) run in a
 * child process, so the CPU measured is the client's alone.
 *
 * Run as `npm run bench -- grpc [--rounds 6]`, or (after `npm run build`: the mesh is the built package, through meshClient() as an application
 * has it): node --import tsx bench/grpc.ts [--rounds 3] [--seconds 3] [--concurrency 32]
 * Prints one line per round, the medians with the mesh/plain ratios, and the paired-round ratios
 * (each mesh round against the plain round next to it: the figure the >= 0.85 goal is judged on,
 * as bench/run.ts judges the HTTP goals).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { meshClient as startMesh } from 'trellis';
import { LatencyBuffer, median, runRound } from './measure.js';
import { greeterYaml, spawnGreeterServers } from './grpc-setup.js';
import type { Call, RoundResult } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const proto = protoLoader.loadSync(path.join(here, '../examples/grpc/greeter.proto'));
const { greeter } = grpc.loadPackageDefinition(proto) as unknown as { greeter: { Greeter: grpc.ServiceClientConstructor } };

async function serve(): Promise<void> {
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) {
    const server = new grpc.Server();
    server.addService(greeter.Greeter.service, {
      sayHello: (call: grpc.ServerUnaryCall<{ name: string }, { message: string }>, cb: grpc.sendUnaryData<{ message: string }>) => cb(null, { message: call.request.name }),
    });
    ports.push(await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)))));
  }
  process.stdout.write(`${JSON.stringify(ports)}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

type Unary = (req: object, cb: (err: grpc.ServiceError | null) => void) => void;

function caller(client: grpc.Client): Call {
  const say = (client as unknown as { sayHello: Unary }).sayHello.bind(client);
  return () => new Promise<boolean>((resolve) => say({ name: 'bench' }, (err) => resolve(err === null)));
}

async function main(): Promise<void> {
  // Also run as `npm run bench -- grpc ...` (bench/run.ts): that first argument is not ours.
  const { values } = parseArgs({ args: process.argv.slice(process.argv[2] === 'grpc' ? 3 : 2), options: { server: { type: 'boolean' }, rounds: { type: 'string' }, seconds: { type: 'string' }, concurrency: { type: 'string' } } });
  if (values.server === true) return serve();
  const rounds = Number(values.rounds ?? 3);
  const seconds = Number(values.seconds ?? 3);
  const concurrency = Number(values.concurrency ?? 32);

  const { child, addresses } = await spawnGreeterServers();

  // The public API on the built package, as an application has it (metrics and W3C trace
  // propagation on, their defaults).
  const trellis = await startMesh({ service: 'bench', config: greeterYaml(addresses) });
  const mesh = trellis.grpc;

  const plainClient = new greeter.Greeter(`ipv4:${addresses.join(',')}`, grpc.credentials.createInsecure(), { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) });
  const meshClient = new greeter.Greeter(mesh.target('greeter'), mesh.credentials(), mesh.clientOptions('greeter'));
  const probeClient = new greeter.Greeter(mesh.target('greeter'), mesh.credentials(), mesh.clientOptions());
  const variants: [string, Call][] = [['plain grpc-js', caller(plainClient)], ['mesh (clientOptions(service))', caller(meshClient)], ['mesh (clientOptions())', caller(probeClient)]];

  const lat = new LatencyBuffer();
  for (const [, call] of variants) await runRound(call, concurrency, 500, lat); // warm up connections and JIT
  const results = new Map<string, RoundResult[]>(variants.map(([name]) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, call] of r % 2 === 0 ? variants : [...variants].reverse()) {
      const res = await runRound(call, concurrency, seconds * 1000, lat);
      results.get(name)?.push(res);
      console.log(`round ${r + 1} ${name.padEnd(31)} ${res.rps.toFixed(0).padStart(7)} calls/s  p50 ${res.p50Ms.toFixed(2)} ms  p99 ${res.p99Ms.toFixed(2)} ms  ${res.cpuUsPerReq.toFixed(1)} µs CPU/call  errors ${res.errors}`);
    }
  }
  const med = (name: string, f: (x: RoundResult) => number): number => median((results.get(name) ?? []).map(f));
  const plain = variants[0]?.[0] as string;
  console.log(`\nmedians over ${rounds} rounds of ${seconds} s, concurrency ${concurrency}:`);
  for (const [name] of variants) {
    const rps = med(name, (x) => x.rps);
    const cpu = med(name, (x) => x.cpuUsPerReq);
    console.log(`${name.padEnd(31)} ${rps.toFixed(0).padStart(7)} calls/s (${(rps / med(plain, (x) => x.rps)).toFixed(2)}x plain)  ${cpu.toFixed(1)} µs CPU/call (${(cpu / med(plain, (x) => x.cpuUsPerReq)).toFixed(2)}x plain, +${(cpu - med(plain, (x) => x.cpuUsPerReq)).toFixed(1)} µs)  p50 ${med(name, (x) => x.p50Ms).toFixed(2)} ms`);
  }
  // Paired rounds, as bench/run.ts judges the HTTP goals: each mesh round against the plain round
  // run next to it (within seconds, under the same load), median and range of those ratios.
  const plainRounds = results.get(plain) ?? [];
  console.log(`\npaired rounds (each mesh round against the plain round of the same round; medians of those):`);
  for (const [name] of variants.slice(1)) {
    const mine = results.get(name) ?? [];
    const ratios = mine.map((x, i) => x.rps / (plainRounds[i]?.rps ?? Number.NaN));
    const added = mine.map((x, i) => x.cpuUsPerReq - (plainRounds[i]?.cpuUsPerReq ?? Number.NaN));
    const met = ratios.filter((x) => x >= 0.85).length;
    console.log(`${name.padEnd(31)} ${(median(ratios) * 100).toFixed(1)}% of plain (rounds ${(Math.min(...ratios) * 100).toFixed(1)}%-${(Math.max(...ratios) * 100).toFixed(1)}%, ${met}/${ratios.length} >= 85%), CPU +${median(added).toFixed(1)} µs (rounds ${Math.min(...added).toFixed(1)} to ${Math.max(...added).toFixed(1)})`);
  }
  plainClient.close();
  meshClient.close();
  probeClient.close();
  await trellis.close();
  child.stdin.end();
}

await main();
