/**
 * Closed-loop load at a fixed concurrency for a fixed time, measuring what the bench reports:
 * completed requests per second, latency percentiles and the client's CPU per request.
 * Latencies go into one preallocated Float64Array (no allocation per request on our side);
 * CPU is `process.cpuUsage()` (user + system) over the round, divided by completed requests.
 */
import { performance } from 'node:perf_hooks';

/** One request, body consumed; resolves true on a 2xx. */
export type Call = () => Promise<boolean>;

export interface RoundResult {
  requests: number;
  errors: number;
  wallMs: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerReq: number;
  /** Client CPU time / wall time (1 = one core busy the whole round). */
  cpuShare: number;
}

/** Latency storage shared by every round (sized for ~1M requests per round). */
export class LatencyBuffer {
  readonly values: Float64Array;
  length = 0;
  constructor(capacity = 1 << 20) {
    this.values = new Float64Array(capacity);
  }
  reset(): void {
    this.length = 0;
  }
  push(v: number): void {
    if (this.length < this.values.length) this.values[this.length++] = v;
  }
  /** Nearest-rank percentiles (p in [0, 1]) of what was recorded. */
  percentiles(ps: number[]): number[] {
    const n = this.length;
    if (n === 0) return ps.map(() => Number.NaN);
    const sorted = this.values.slice(0, n).sort();
    return ps.map((p) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))] ?? Number.NaN);
  }
}

/** Runs `concurrency` loops of `call` until `durationMs` has passed, then waits for them. */
export async function runRound(call: Call, concurrency: number, durationMs: number, lat: LatencyBuffer): Promise<RoundResult> {
  lat.reset();
  let requests = 0;
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + durationMs;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const s = performance.now();
      let ok = false;
      try {
        ok = await call();
      } catch {
        ok = false;
      }
      lat.push(performance.now() - s);
      requests++;
      if (!ok) {
        errors++;
        // A failing target must not turn the loop into a hot spin of instant rejections.
        if (errors % 100 === 0) await new Promise((r) => setTimeout(r, 1));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuUs = cpu.user + cpu.system;
  const [p50Ms = Number.NaN, p99Ms = Number.NaN] = lat.percentiles([0.5, 0.99]);
  return {
    requests,
    errors,
    wallMs,
    rps: (requests / wallMs) * 1000,
    p50Ms,
    p99Ms,
    cpuUsPerReq: requests > 0 ? cpuUs / requests : Number.NaN,
    cpuShare: cpuUs / 1000 / wallMs,
  };
}

export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** A node of a V8 sampling heap profile (node:inspector's HeapProfiler). */
export interface HeapNode {
  selfSize: number;
  children: HeapNode[];
}

/** Bytes a sampling heap profile saw allocated (its nodes' self sizes, scaled by V8 to the sampling interval). */
export function sampledBytes(node: HeapNode): number {
  let sum = node.selfSize;
  for (const c of node.children) sum += sampledBytes(c);
  return sum;
}
