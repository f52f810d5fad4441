/**
 * Where the mesh's end-to-end gRPC unary cost goes: the plain grpc-js channel of bench/grpc.ts
 * (round_robin over the same three servers, in a child process) against variants that add one
 * piece of what the mesh does at a time, in interleaved rounds of one run (order rotated every
 * round), so the machine's noise hits them alike:
 *
 *   plain        plain channel, round_robin over the 3 addresses, no interceptor
 *   plain+noop   the same with one no-op interceptor (`new InterceptingCall(next(options))`)
 *   plain+md     the no-op interceptor adding the mesh's wire metadata (traceparent, grpc-timeout)
 *   trellis-lb   `trellis:` target and the `trellis` LB policy, no interceptor (picker balances)
 *   mesh         mesh.grpc.clientOptions('greeter'): the full unary path, metrics and tracing
 *   mesh-wrapped mesh, its unary call inside a grpc-js InterceptingCall (as before it was handed back unwrapped)
 *   mesh-bare    the same mesh interceptor without metrics and tracer
 *   mesh-trace   mesh-bare plus the tracer (propagate-only: a new traceparent per call)
 *   mesh-metrics mesh-bare plus metrics
 *   plain+tp     the no-op interceptor adding a new traceparent per call (nothing else)
 *
 * Reported: median calls/s and client CPU µs per call over rounds, ratio to `plain`, and the
 * median of each round's CPU difference to the `plain` round of the same rotation.
 *
 * Run: node --import tsx bench/grpc-breakdown.ts [--rounds 5] [--seconds 2] [--concurrency 32]
 *      [--only plain,mesh] [--solo mesh] [--profile /tmp/prefix | --heap /tmp/prefix]
 *      [--solo mesh --calls 2000]  (fixed count, for `valgrind --tool=cachegrind --cache-sim=no`)
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PerformanceObserver } from 'node:perf_hooks';
import { Session } from 'node:inspector/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { systemClock, systemRandom } from '../src/core/clock.js';
import { MeshMetrics } from '../src/observability/metrics.js';
import { MeshTracer } from '../src/observability/tracer.js';
import { MeshGrpc } from '../src/grpc/channel.js';
import { LatencyBuffer, median, runRound, sampledBytes } from './measure.js';
import type { Call, HeapNode, RoundResult } from './measure.js';
import { benchDestinations, greeterConfig, spawnGreeterServers } from './grpc-setup.js';

const here = path.dirname(fileURLToPath(import.meta.url));

type Unary = (req: object, cb: (err: grpc.ServiceError | null) => void) => void;

/** Calls made in this process, warm-up included (to turn a profile's totals into per-call figures). */
let callsMade = 0;

function caller(client: grpc.Client): Call {
  const say = (client as unknown as { sayHello: Unary }).sayHello.bind(client);
  return () => {
    callsMade++;
    return new Promise<boolean>((resolve) => say({ name: 'bench' }, (err) => resolve(err === null)));
  };
}

const noop: grpc.Interceptor = (options, nextCall) => new grpc.InterceptingCall(nextCall(options));
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const withMetadata: grpc.Interceptor = (options, nextCall) =>
  new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set('traceparent', TRACEPARENT);
      metadata.set('grpc-timeout', '10000m');
      next(metadata, listener);
    },
  });

/** A new traceparent every call (as the mesh sends), without anything else of the mesh. */
let tpCounter = 0;
const withTraceparent: grpc.Interceptor = (options, nextCall) =>
  new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      const n = (++tpCounter).toString(16).padStart(16, '0');
      metadata.set('traceparent', `00-${n}${n}-${n}-01`);
      next(metadata, listener);
    },
  });

/** CPU time (µs) a process has used so far, from /proc (Linux; 0 elsewhere). */
function processCpuUs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // utime + stime, in 1/100 s
  } catch {
    return 0;
  }
}

/** An interceptor's call inside a grpc-js InterceptingCall (the mesh's unary call before it went back to grpc-js unwrapped). */
function wrappedIn(interceptor: grpc.Interceptor): grpc.Interceptor {
  return (options, nextCall) => new grpc.InterceptingCall(interceptor(options, nextCall));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, seconds: { type: 'string' }, concurrency: { type: 'string' }, only: { type: 'string' }, solo: { type: 'string' }, profile: { type: 'string' }, heap: { type: 'string' }, calls: { type: 'string' } } });
  const rounds = Number(values.rounds ?? 5);
  const seconds = Number(values.seconds ?? 2);
  const concurrency = Number(values.concurrency ?? 32);

  const { child, addresses } = await spawnGreeterServers();
  const proto = protoLoader.loadSync(path.join(here, '../examples/grpc/greeter.proto'));
  const { greeter } = grpc.loadPackageDefinition(proto) as unknown as { greeter: { Greeter: grpc.ServiceClientConstructor } };

  const config = await greeterConfig(addresses);
  const destinations = benchDestinations(config);
  const parts = { service: 'bench', clock: systemClock, random: systemRandom, destinations, config: () => config, watch: () => () => undefined };
  const mesh = new MeshGrpc({ ...parts, metrics: new MeshMetrics(), tracer: new MeshTracer({ service: 'bench' }) });
  const bare = new MeshGrpc(parts);
  const traced = new MeshGrpc({ ...parts, tracer: new MeshTracer({ service: 'bench' }) });
  const metered = new MeshGrpc({ ...parts, metrics: new MeshMetrics() });

  const rr = { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) };
  const plainTarget = `ipv4:${addresses.join(',')}`;
  const insecure = grpc.credentials.createInsecure();
  const all: [string, grpc.Client][] = [
    ['plain', new greeter.Greeter(plainTarget, insecure, rr)],
    ['plain+noop', new greeter.Greeter(plainTarget, insecure, { ...rr, interceptors: [noop] })],
    ['plain+md', new greeter.Greeter(plainTarget, insecure, { ...rr, interceptors: [withMetadata] })],
    ['trellis-lb', new greeter.Greeter(mesh.target('greeter'), mesh.credentials(), {})],
    ['mesh', new greeter.Greeter(mesh.target('greeter'), mesh.credentials(), mesh.clientOptions('greeter'))],
    ['mesh-wrapped', new greeter.Greeter(mesh.target('greeter'), mesh.credentials(), { interceptors: [wrappedIn(mesh.interceptor('greeter'))] })],
    ['mesh-bare', new greeter.Greeter(bare.target('greeter'), bare.credentials(), bare.clientOptions('greeter'))],
    ['mesh-trace', new greeter.Greeter(traced.target('greeter'), traced.credentials(), traced.clientOptions('greeter'))],
    ['mesh-metrics', new greeter.Greeter(metered.target('greeter'), metered.credentials(), metered.clientOptions('greeter'))],
    ['plain+tp', new greeter.Greeter(plainTarget, insecure, { ...rr, interceptors: [withTraceparent] })],
  ];
  const only = values.only?.split(',');
  // --solo NAME: that variant alone (for a CPU or heap profile of it).
  const variants = all.filter(([name]) => (values.solo !== undefined ? name === values.solo : only === undefined || name === 'plain' || only.includes(name)));

  if (values.calls !== undefined) {
    // --solo NAME --calls N: exactly N calls (after 500 to connect), then exit: for an instruction
    // count (valgrind) whose slope over two N is the per-call cost, independent of machine load.
    const [, client] = variants[0] as [string, grpc.Client];
    const call = caller(client);
    const fixed = async (n: number): Promise<void> => {
      let left = n;
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (left-- > 0) await call();
      }));
    };
    await fixed(500);
    const cpu0 = process.cpuUsage();
    await fixed(Number(values.calls));
    const cpu = process.cpuUsage(cpu0);
    console.log(`${values.calls} calls: ${((cpu.user + cpu.system) / Number(values.calls)).toFixed(1)} µs CPU/call`);
    for (const [, c] of all) c.close();
    child.stdin.end();
    process.exit(0);
  }
  // GC time and young-generation collections while a round runs (charged to that round).
  let gcMs = 0;
  let scavenges = 0;
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMs += e.duration;
      if (((e as { detail?: { kind?: number } }).detail)?.kind === 1) scavenges++; // minor GC (scavenge)
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const gcPerCall = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  const scavengesPer1k = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  const serverCpu = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  const lat = new LatencyBuffer();
  for (const [, client] of variants) await runRound(caller(client), concurrency, 700, lat); // connections and JIT
  const results = new Map<string, RoundResult[]>(variants.map(([name]) => [name, []]));
  const diffs = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    const order = variants.map((_, i) => variants[(i + r) % variants.length] as [string, grpc.Client]);
    const cpu = new Map<string, number>();
    for (const [name, client] of order) {
      gcMs = 0;
      scavenges = 0;
      // --profile FILE: a CPU profile of the measured rounds only (no start-up, no warm-up).
      // --heap FILE: allocation sampling (every ~256 bytes, collected objects included) of the same.
      const session = values.profile === undefined && values.heap === undefined ? undefined : new Session();
      if (session !== undefined) {
        session.connect();
        if (values.heap !== undefined) await session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
        else {
          await session.post('Profiler.enable');
          await session.post('Profiler.start');
        }
      }
      const server0 = processCpuUs(child.pid);
      const res = await runRound(caller(client), concurrency, seconds * 1000, lat);
      serverCpu.get(name)?.push((processCpuUs(child.pid) - server0) / res.requests);
      if (session !== undefined) {
        const file = values.heap !== undefined ? `${values.heap}.${name}.${r + 1}.heapprofile` : `${values.profile}.${name}.${r + 1}.cpuprofile`;
        const { profile } = values.heap !== undefined ? await session.post('HeapProfiler.stopSampling') : await session.post('Profiler.stop');
        writeFileSync(file, JSON.stringify(profile));
        session.disconnect();
        const bytes = values.heap !== undefined ? ` (${(sampledBytes((profile as { head: HeapNode }).head) / res.requests).toFixed(0)} bytes allocated per call)` : '';
        console.log(`profile of ${res.requests} calls: ${file}${bytes}`);
      }
      await new Promise((r) => setImmediate(r)); // let the observer deliver this round's entries
      results.get(name)?.push(res);
      gcPerCall.get(name)?.push((gcMs * 1000) / res.requests);
      scavengesPer1k.get(name)?.push((scavenges * 1000) / res.requests);
      cpu.set(name, res.cpuUsPerReq);
      console.log(`round ${r + 1} ${name.padEnd(13)} ${res.rps.toFixed(0).padStart(7)} calls/s  ${res.cpuUsPerReq.toFixed(1).padStart(6)} µs CPU/call  errors ${res.errors}`);
    }
    for (const [name] of variants) diffs.get(name)?.push((cpu.get(name) ?? 0) - (cpu.get('plain') ?? cpu.get(name) ?? 0));
  }
  const med = (name: string, f: (x: RoundResult) => number): number => median((results.get(name) ?? []).map(f));
  const base = results.has('plain') ? 'plain' : (variants[0]?.[0] as string);
  const plainRps = med(base, (x) => x.rps);
  const plainCpu = med(base, (x) => x.cpuUsPerReq);
  console.log(`\nmedians over ${rounds} rounds of ${seconds} s, concurrency ${concurrency}:`);
  console.log('| variant | calls/s | ratio | CPU µs/call | CPU ratio | added CPU (median of per-round diffs) | GC µs/call | scavenges per 1k calls | server CPU µs/call |');
  console.log('| :-- | --: | --: | --: | --: | --: | --: | --: | --: |');
  for (const [name] of variants) {
    const rps = med(name, (x) => x.rps);
    const cpu = med(name, (x) => x.cpuUsPerReq);
    const d = diffs.get(name) ?? [];
    console.log(`| ${name} | ${rps.toFixed(0)} | ${(rps / plainRps).toFixed(2)} | ${cpu.toFixed(1)} | ${(plainCpu / cpu).toFixed(2)} | ${median(d) >= 0 ? '+' : ''}${median(d).toFixed(1)} (${Math.min(...d).toFixed(1)}..${Math.max(...d).toFixed(1)}) | ${median(gcPerCall.get(name) ?? []).toFixed(1)} | ${median(scavengesPer1k.get(name) ?? []).toFixed(2)} | ${median(serverCpu.get(name) ?? []).toFixed(1)} |`);
  }
  gcObserver.disconnect();
  console.log(`calls made in this process, warm-up included: ${callsMade}`);
  for (const [, client] of all) client.close();
  mesh.close();
  bare.close();
  traced.close();
  metered.close();
  await destinations.close();
  child.stdin.end();
}

await main();
