/**
 * The demo's caller: steady, bounded traffic through the mesh. Each target gets a fixed request
 * rate (paced every 10 ms) and a cap on requests in flight; a request that would pass the cap
 * is not sent and counted as shed, so a slow destination cannot make the demo pile up work.
 * Records what the caller sees: outcomes (2xx, an HTTP error status, or a Trellis error code)
 * and latency (until the body is read), per interval and in total.
 */
import { performance } from 'node:perf_hooks';
import { trellisErrorOf } from 'trellis';
import type { MeshHttpClient } from 'trellis';

export interface CallerStats {
  requests: number;
  ok: number;
  /** Failures by what the caller saw: `HTTP 503`, `TRELLIS_CIRCUIT_OPEN`, ... */
  failures: Map<string, number>;
  /** Milliseconds, one per completed request. */
  latencies: number[];
  /** Requests not sent because `maxInFlight` were already in flight. */
  shed: number;
}

export interface Target {
  client: MeshHttpClient;
  /** Requests per second. */
  rate: number;
  maxInFlight: number;
  path: () => string;
  /** Sees the body of each 2xx answer (the demo counts which products version answered). */
  onBody?: (text: string) => void;
}

const MAX_TOTAL_LATENCIES = 2_000_000;

function emptyStats(): CallerStats {
  return { requests: 0, ok: 0, failures: new Map(), latencies: [], shed: 0 };
}

function failureName(err: unknown): string {
  const trellis = trellisErrorOf(err);
  if (trellis !== undefined) return trellis.code;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'error';
}

class Driver {
  readonly target: Target;
  interval = emptyStats();
  readonly total = emptyStats();
  inFlight = 0;
  #issued = 0;

  constructor(target: Target) {
    this.target = target;
  }

  tick(elapsedMs: number): void {
    const due = Math.floor((this.target.rate * elapsedMs) / 1000) - this.#issued;
    for (let i = 0; i < due; i++) {
      this.#issued++;
      if (this.inFlight >= this.target.maxInFlight) {
        this.interval.shed++;
        this.total.shed++;
      } else {
        void this.#send();
      }
    }
  }

  async #send(): Promise<void> {
    this.inFlight++;
    const start = performance.now();
    let failure: string | undefined;
    try {
      const res = await this.target.client.request({ method: 'GET', path: this.target.path() });
      const text = await res.body.text();
      if (res.statusCode >= 500) failure = `HTTP ${res.statusCode}`;
      else this.target.onBody?.(text);
    } catch (err) {
      failure = failureName(err);
    } finally {
      this.inFlight--;
    }
    const ms = performance.now() - start;
    for (const s of [this.interval, this.total]) {
      s.requests++;
      if (failure === undefined) s.ok++;
      else s.failures.set(failure, (s.failures.get(failure) ?? 0) + 1);
    }
    this.interval.latencies.push(ms);
    if (this.total.latencies.length < MAX_TOTAL_LATENCIES) this.total.latencies.push(ms);
  }
}

export class Traffic {
  readonly #drivers = new Map<string, Driver>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(targets: Target[]) {
    for (const t of targets) this.#drivers.set(t.client.service, new Driver(t));
  }

  /** Requests per second offered, over every target. */
  get rate(): number {
    let r = 0;
    for (const d of this.#drivers.values()) r += d.target.rate;
    return r;
  }

  start(): void {
    const t0 = performance.now();
    this.#timer = setInterval(() => {
      const elapsed = performance.now() - t0;
      for (const d of this.#drivers.values()) d.tick(elapsed);
    }, 10);
  }

  /** The stats of the interval that just ended, per service; a new interval begins. */
  takeInterval(): Map<string, CallerStats> {
    const out = new Map<string, CallerStats>();
    for (const [name, d] of this.#drivers) {
      out.set(name, d.interval);
      d.interval = emptyStats();
    }
    return out;
  }

  totals(): Map<string, CallerStats> {
    return new Map([...this.#drivers].map(([name, d]) => [name, d.total]));
  }

  /** Stops sending, then waits (at most `timeoutMs`) for requests in flight to finish. */
  async stop(timeoutMs: number): Promise<void> {
    clearInterval(this.#timer);
    const until = performance.now() + timeoutMs;
    const busy = (): boolean => [...this.#drivers.values()].some((d) => d.inFlight > 0);
    while (busy() && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
  }
}

/** Nearest-rank percentile (p in [0, 1]) of unsorted values; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN;
}
