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

/** Adds one reported edge's counts to a cell; `buckets` from `bucketMap` of the report's bounds. */
export function addEdge(cell: Cell, e: EdgeCounts, buckets: readonly number[]): void {
  const v = cell.v;
  v[REQ] = (v[REQ] ?? 0) + e.requests;
  v[SUM] = (v[SUM] ?? 0) + e.latency.sum;
  for (const [outcome, n] of Object.entries(e.outcomes)) {
    if (outcome === 'success') {
      v[OK] = (v[OK] ?? 0) + n;
    } else {
      cell.failures ??= new Map();
      cell.failures.set(outcome, (cell.failures.get(outcome) ?? 0) + n);
    }
  }
  for (const [cls, n] of Object.entries(e.status)) {
    const i = STATUS0 + statusIndex(cls);
    v[i] = (v[i] ?? 0) + n;
  }
  const counts = e.latency.counts;
  for (let i = 0; i < counts.length && i < buckets.length; i++) {
    const n = counts[i] ?? 0;
    if (n === 0) continue;
    const j = HIST0 + (buckets[i] ?? BOUNDS.length);
    v[j] = (v[j] ?? 0) + n;
  }
}

/** `into += from`. */
export function mergeCell(into: Cell, from: Cell): void {
  const a = into.v;
  const b = from.v;
  for (let i = 0; i < CELL_WIDTH; i++) a[i] = (a[i] ?? 0) + (b[i] ?? 0);
  if (from.failures !== undefined) {
    into.failures ??= new Map();
    for (const [k, n] of from.failures) into.failures.set(k, (into.failures.get(k) ?? 0) + n);
  }
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
