/**
 * A Cell: the merged counts of one series (a service, an edge, a route, an instance) over one
 * time slot — requests, successes, status classes, and the latency histogram on fixed bounds
 * (OTel's advised HTTP buckets, what every instance's metrics keep). One Float64Array per cell,
 * so a cell costs the same whatever the traffic, and merging is element-wise addition.
 *
 * Quantiles are read from the histogram as Prometheus's `histogram_quantile` does (linear
 * interpolation inside the bucket that holds the rank; the highest finite bound when it falls in
 * the +Inf bucket), so the control plane's figures and `--prometheus` mode's agree.
 */
import { OTEL_HTTP_DURATION_BUCKETS } from '../../observability/metrics.js';

export const BOUNDS: readonly number[] = OTEL_HTTP_DURATION_BUCKETS;
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'grpc-ok', 'grpc-error', 'none'] as const;

const REQ = 0;
const OK = 1;
const SUM = 2;
const STATUS0 = 3;
const HIST0 = STATUS0 + STATUS_CLASSES.length;
export const CELL_WIDTH = HIST0 + BOUNDS.length + 1;

export interface Cell {
  readonly v: Float64Array;
  /** Requests by outcome other than success (absent until one happens: most cells never need it). */
  failures: Map<string, number> | undefined;
}

export function newCell(): Cell {
  return { v: new Float64Array(CELL_WIDTH), failures: undefined };
}

/** A status class of the report (`2xx`, `ok`, `unavailable`, `none`) to its cell slot. */
function statusIndex(cls: string): number {
  switch (cls) {
    case '1xx': return 0;
    case '2xx': return 1;
    case '3xx': return 2;
    case '4xx': return 3;
    case '5xx': return 4;
    case 'ok': return 5;
    case 'none': return 7;
    default: return 6; // any other gRPC code
  }
}

/**
 * The index in BOUNDS(+Inf) that holds a report bucket whose upper bound is `le`: the first fleet
 * bound at or above it (exact when the instance uses the same bounds, conservative otherwise).
 */
export function bucketMap(reportBounds: readonly number[]): number[] {
  const map = reportBounds.map((le) => {
    const i = BOUNDS.findIndex((b) => b >= le - 1e-12);
    return i < 0 ? BOUNDS.length : i;
  });
  map.push(BOUNDS.length);
  return map;
}

export interface EdgeCounts {
  readonly requests: number;
  readonly outcomes: Readonly<Record<string, number>>;
  readonly status: Readonly<Record<string, number>>;
  readonly latency: { readonly counts: readonly number[]; readonly sum: number };
}

/** Stored cell values: Float32 in the ring's slots (exact for counts below 2^24 per 10 s), Float64 when merged. */
export type CellValues = Float32Array | Float64Array;

/**
 * Adds one reported edge's counts to the cell at `off` in `v`; failures by outcome go to the map
 * `failures()` returns (made only when one happens). `buckets` from `bucketMap` of the report's bounds.
 */
export function addEdgeAt(v: CellValues, off: number, failures: () => Map<string, number>, e: EdgeCounts, buckets: readonly number[]): void {
  v[off + REQ] = (v[off + REQ] ?? 0) + e.requests;
  v[off + SUM] = (v[off + SUM] ?? 0) + e.latency.sum;
  for (const outcome in e.outcomes) {
    const n = e.outcomes[outcome] ?? 0;
    if (outcome === 'success') {
      v[off + OK] = (v[off + OK] ?? 0) + n;
    } else if (n > 0) {
      const f = failures();
      f.set(outcome, (f.get(outcome) ?? 0) + n);
    }
  }
  for (const cls in e.status) {
    const i = off + STATUS0 + statusIndex(cls);
    v[i] = (v[i] ?? 0) + (e.status[cls] ?? 0);
  }
  const counts = e.latency.counts;
  for (let i = 0; i < counts.length && i < buckets.length; i++) {
    const n = counts[i] ?? 0;
    if (n === 0) continue;
    const j = off + HIST0 + (buckets[i] ?? BOUNDS.length);
    v[j] = (v[j] ?? 0) + n;
  }
}

/** Adds one reported edge's counts to a merged cell. */
export function addEdge(cell: Cell, e: EdgeCounts, buckets: readonly number[]): void {
  addEdgeAt(cell.v, 0, () => (cell.failures ??= new Map()), e, buckets);
}

/** `into += ` the cell at `off` in `v` (with its failures by outcome, if any). */
export function mergeAt(into: Cell, v: CellValues, off: number, failures: ReadonlyMap<string, number> | undefined): void {
  const a = into.v;
  for (let i = 0; i < CELL_WIDTH; i++) a[i] = (a[i] ?? 0) + (v[off + i] ?? 0);
  if (failures !== undefined) {
    into.failures ??= new Map();
    for (const [k, n] of failures) into.failures.set(k, (into.failures.get(k) ?? 0) + n);
  }
}

/** `into += from`. */
export function mergeCell(into: Cell, from: Cell): void {
  mergeAt(into, from.v, 0, from.failures);
}

export function requestsOf(cell: Cell): number {
  return cell.v[REQ] ?? 0;
}

export function successesOf(cell: Cell): number {
  return cell.v[OK] ?? 0;
}

export function statusOf(cell: Cell): Record<string, number> {
  const out: Record<string, number> = {};
  STATUS_CLASSES.forEach((c, i) => {
    const n = cell.v[STATUS0 + i] ?? 0;
    if (n > 0) out[c] = n;
  });
  return out;
}

export function failuresOf(cell: Cell): Record<string, number> {
  return Object.fromEntries([...(cell.failures ?? new Map<string, number>())].sort((a, b) => b[1] - a[1]));
}

/**
 * The q-quantile (0..1) of the cell's latency in seconds, or undefined with no requests.
 * As Prometheus's histogram_quantile: linear within the bucket, lower bound 0 for the first.
 */
export function quantileOf(cell: Cell, q: number): number | undefined {
  const v = cell.v;
  let total = 0;
  for (let i = 0; i <= BOUNDS.length; i++) total += v[HIST0 + i] ?? 0;
  if (total === 0) return undefined;
  const rank = q * total;
  let cum = 0;
  for (let i = 0; i <= BOUNDS.length; i++) {
    const n = v[HIST0 + i] ?? 0;
    if (cum + n >= rank && n > 0) {
      if (i === BOUNDS.length) return BOUNDS[BOUNDS.length - 1];
      const lower = i === 0 ? 0 : (BOUNDS[i - 1] ?? 0);
      const upper = BOUNDS[i] ?? lower;
      return lower + (upper - lower) * ((rank - cum) / n);
    }
    cum += n;
  }
  return BOUNDS[BOUNDS.length - 1];
}
