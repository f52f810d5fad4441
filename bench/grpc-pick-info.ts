/**
 * The per-call work of carrying an attempt's endpoint and deadline from the mesh's unary call to
 * the Trellis picker, in process and on grpc-js's own Metadata, the two ways the mesh has done
 * it: as metadata entries (`x-trellis-endpoint`, `x-trellis-deadline`, written by the call, copied
 * by grpc-js's two clones — ResolvingCall.start and LoadBalancingCall.doPick — and taken off at
 * the pick) and as a PickTicket on the metadata's options object (src/grpc/pick-ticket.ts, passed
 * through the clones by reference). Both write `grpc-timeout` at the pick and carry a
 * traceparent, as a real call's metadata does. Alternating rounds; CPU ns per call, and bytes
 * per call (`--heap`, sampling heap profiler).
 *
 * Run: node --import tsx bench/grpc-pick-info.ts [--calls 200000] [--rounds 7] [--heap]
 */
import { parseArgs } from 'node:util';
import { Session } from 'node:inspector/promises';
import { Metadata } from '@grpc/grpc-js';
import { setOwn, takeOwn } from '../src/grpc/metadata-entries.js';
import { attachTicket, ticketOf } from '../src/grpc/pick-ticket.js';
import { grpcTimeout } from '../src/grpc/status.js';
import { sampledBytes } from './measure.js';
import type { HeapNode } from './measure.js';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
let sink = 0;

/** The call's copy of the application's (empty) metadata with the mesh's traceparent. */
function callMetadata(): Metadata {
  const md = new Metadata().clone();
  setOwn(md, 'traceparent', TRACEPARENT);
  return md;
}

function viaEntries(now: number): void {
  const md = callMetadata();
  setOwn(md, 'x-trellis-endpoint', '127.0.0.1:50051');
  setOwn(md, 'x-trellis-deadline', String(Math.floor(now + 15_000)));
  const pick = md.clone().clone(); // ResolvingCall.start, then LoadBalancingCall.doPick
  const deadline = takeOwn(pick, 'x-trellis-deadline');
  if (deadline !== undefined) setOwn(pick, 'grpc-timeout', grpcTimeout(Number(deadline) - now));
  const hint = takeOwn(pick, 'x-trellis-endpoint');
  sink += hint?.length ?? 0;
}

function viaTicket(now: number): void {
  const md = callMetadata();
  attachTicket(md, '127.0.0.1:50051', now + 15_000);
  const pick = md.clone().clone();
  const t = ticketOf(pick);
  if (t?.deadline !== undefined) setOwn(pick, 'grpc-timeout', grpcTimeout(t.deadline - now));
  sink += t?.endpoint.length ?? 0;
}

/** The same without any pick information (the floor: what any call pays). */
function neither(now: number): void {
  const md = callMetadata();
  const pick = md.clone().clone();
  setOwn(pick, 'grpc-timeout', grpcTimeout(15_000 + now - now));
}

const { values } = parseArgs({ options: { calls: { type: 'string' }, rounds: { type: 'string' }, heap: { type: 'boolean' } } });
const calls = Number(values.calls ?? 200_000);
const rounds = Number(values.rounds ?? 7);
const ways: [string, (now: number) => void][] = [['entries', viaEntries], ['ticket', viaTicket], ['neither', neither]];
for (const [, f] of ways) for (let i = 0; i < 20_000; i++) f(Date.now());
const ns = new Map<string, number[]>(ways.map(([n]) => [n, []]));
const bytes = new Map<string, number[]>(ways.map(([n]) => [n, []]));
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < ways.length; k++) {
    const [name, f] = ways[(k + r) % ways.length] as [string, (now: number) => void];
    const session = values.heap === true ? new Session() : undefined;
    if (session !== undefined) {
      session.connect();
      await session.post('HeapProfiler.startSampling', { samplingInterval: 64, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    }
    const now = Date.now();
    const c0 = process.cpuUsage();
    for (let i = 0; i < calls; i++) f(now);
    const c = process.cpuUsage(c0);
    ns.get(name)?.push(((c.user + c.system) * 1000) / calls);
    if (session !== undefined) {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      session.disconnect();
      bytes.get(name)?.push(sampledBytes((profile as unknown as { head: HeapNode }).head) / calls);
    }
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
console.log('| way | CPU ns/call (median, min..max) | bytes/call |');
console.log('| :-- | --: | --: |');
for (const [name] of ways) {
  const x = ns.get(name) ?? [];
  const b = bytes.get(name) ?? [];
  console.log(`| ${name} | ${median(x).toFixed(0)} (${Math.min(...x).toFixed(0)}..${Math.max(...x).toFixed(0)}) | ${b.length > 0 ? median(b).toFixed(0) : '-'} |`);
}
if (sink < 0) console.log(sink);
