/**
 * `--prometheus URL` mode: the window's figures from a Prometheus that scrapes the instances'
 * /metrics (as Linkerd viz reads its own Prometheus), instead of the control plane's
 * aggregation. Two instant queries per grouping — request increases by outcome and status, and
 * duration-bucket increases — turned into the same Cells as reports are, so quantiles are
 * computed by the same code (`histogram_quantile`'s interpolation) in both modes.
 *
 * What Prometheus can and cannot say: server metrics carry the verified caller, so edges,
 * inbound figures and each service's outbound (as its destinations served it) come from them;
 * client metrics carry the destination and route but not the caller (the scrape target is the
 * caller, and a target address is not a service), so the callers' view of a destination and
 * the route figures come from them, summed over callers. Per-instance figures, breakers and
 * endpoints still come from the instances' reports (`fallback`): Prometheus's `instance` label
 * is a scrape address, not a registry id.
 */
import { UpstreamError } from '../../core/errors.js';
import { METRIC_NAMES } from '../../observability/metrics.js';
import type { Cell } from './cell.js';
import { addEdge, BOUNDS, bucketMap, newCell } from './cell.js';
import type { FleetFigures } from './fleet-figures.js';
import { FAILING_BELOW, figuresOf } from './fleet-figures.js';
import { SLOT_MS, SLOTS } from './slot-ring.js';
import type { GoldenFigures, StatEdge, StatSeries } from './stat-body.js';
import type { StatQuery } from './stat-query.js';
import { statusClass } from '../../controlplane-client/fleet-report.js';

interface VectorSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: readonly [number, string];
}

const SEP = '\u0001';
const IDENTITY = bucketMap(BOUNDS);

interface MatrixSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly values: readonly (readonly [number, string])[];
}

async function query(base: string, promql: string, timeoutMs: number): Promise<VectorSample[]> {
  return (await call(base, 'query', { query: promql }, 'vector', timeoutMs)) as VectorSample[];
}

async function queryRange(base: string, promql: string, start: number, end: number, step: number, timeoutMs: number): Promise<MatrixSample[]> {
  return (await call(base, 'query_range', { query: promql, start: String(start), end: String(end), step: String(step) }, 'matrix', timeoutMs)) as MatrixSample[];
}

async function call(base: string, api: string, params: Record<string, string>, resultType: string, timeoutMs: number): Promise<unknown[]> {
  const url = new URL(`api/v1/${api}`, base.endsWith('/') ? base : `${base}/`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new UpstreamError(`stat: Prometheus at ${base} did not answer: ${(err as Error).message}`, { cause: err });
  }
  const text = await res.text();
  let body: { status?: string; error?: string; data?: { resultType?: string; result?: unknown[] } };
  try {
    body = JSON.parse(text) as typeof body;
  } catch (err) {
    throw new UpstreamError(`stat: Prometheus at ${base} answered ${res.status} with something that is not JSON`, { cause: err });
  }
  if (body.status !== 'success' || body.data?.resultType !== resultType) {
    throw new UpstreamError(`stat: Prometheus at ${base} refused the query (${res.status}): ${body.error ?? `not a ${resultType}`}`);
  }
  return body.data.result ?? [];
}

/** Cells per group (the `by` labels joined) from a request counter and its duration histogram. */
async function cellsBy(base: string, counter: string, histogram: string, by: readonly string[], w: string, timeoutMs: number): Promise<{ cells: Map<string, Cell>; protocols: Map<string, 'http' | 'grpc'> }> {
  const g = by.join(', ');
  const [counts, buckets] = await Promise.all([
    query(base, `sum by (${g}, outcome, status_code) (increase(${counter}[${w}]))`, timeoutMs),
    query(base, `sum by (${g}, le) (increase(${histogram}_bucket[${w}]))`, timeoutMs),
  ]);
  const cells = new Map<string, Cell>();
  const protocols = new Map<string, 'http' | 'grpc'>();
  const cellOf = (m: Readonly<Record<string, string>>): [string, Cell] => {
    const key = by.map((l) => m[l] ?? '').join(SEP);
    let c = cells.get(key);
    if (c === undefined) cells.set(key, (c = newCell()));
    return [key, c];
  };
  for (const s of counts) {
    const n = Math.round(Number(s.value[1]));
    if (!(n > 0)) continue;
    const [key, c] = cellOf(s.metric);
    const { protocol, cls } = statusClass(s.metric.status_code ?? '');
    if (protocol !== undefined) protocols.set(key, protocol);
    addEdge(c, { requests: n, outcomes: { [s.metric.outcome ?? 'failure']: n }, status: { [cls]: n }, latency: { counts: [], sum: 0 } }, IDENTITY);
  }
  // Cumulative bucket increases per group → per-bucket counts.
  const cumulative = new Map<string, number[]>();
  for (const s of buckets) {
    const key = by.map((l) => s.metric[l] ?? '').join(SEP);
    const le = s.metric.le === '+Inf' ? Infinity : Number(s.metric.le);
    const i = le === Infinity ? BOUNDS.length : BOUNDS.findIndex((b) => Math.abs(b - le) < 1e-9);
    if (i < 0) continue;
    let arr = cumulative.get(key);
    if (arr === undefined) cumulative.set(key, (arr = new Array<number>(BOUNDS.length + 1).fill(0)));
    arr[i] = Number(s.value[1]) || 0;
  }
  for (const [key, cum] of cumulative) {
    const c = cells.get(key);
    if (c === undefined) continue;
    const per = cum.map((v, i) => Math.max(0, v - (i === 0 ? 0 : (cum[i - 1] ?? 0))));
    addEdge(c, { requests: 0, outcomes: {}, status: {}, latency: { counts: per, sum: 0 } }, IDENTITY);
  }
  return { cells, protocols };
}

/** The figures of the query's window from Prometheus; per-instance detail from `fallback` (the reports). */
export async function prometheusFigures(base: string, q: StatQuery, fallback: FleetFigures, now: number, timeoutMs = 5_000): Promise<FleetFigures> {
  const n = METRIC_NAMES;
  const w = q.window;
  const seconds = q.windowSeconds;
  const [served, edges, outbound, callers, routes] = await Promise.all([
    cellsBy(base, n.serverRequests, n.serverRequestDuration, ['service'], w, timeoutMs),
    cellsBy(base, n.serverRequests, n.serverRequestDuration, ['caller', 'service'], w, timeoutMs),
    cellsBy(base, n.serverRequests, n.serverRequestDuration, ['caller'], w, timeoutMs),
    cellsBy(base, n.clientRequests, n.clientRequestDuration, ['service'], w, timeoutMs),
    cellsBy(base, n.clientRequests, n.clientRequestDuration, ['service', 'route'], w, timeoutMs),
  ]);
  const byName = (m: Map<string, Cell>): Map<string, GoldenFigures> => new Map([...m].map(([k, c]) => [k, figuresOf(c, seconds)]));
  const edgeList: StatEdge[] = [...edges.cells].map(([key, c]) => {
    const [from = 'unknown', to = ''] = key.split(SEP);
    const f = figuresOf(c, seconds);
    return { from, to, protocol: edges.protocols.get(key) ?? 'unknown', source: 'server' as const, failing: f.successRate !== null && f.successRate < FAILING_BELOW, ...f };
  });
  edgeList.sort((x, y) => (x.from + SEP + x.to < y.from + SEP + y.to ? -1 : 1));
  const routeMap = new Map<string, Map<string, GoldenFigures>>();
  for (const [key, c] of routes.cells) {
    const [service = '', route = ''] = key.split(SEP);
    let m = routeMap.get(service);
    if (m === undefined) routeMap.set(service, (m = new Map()));
    m.set(route, figuresOf(c, seconds));
  }
  return {
    series: q.series ? await seriesOf(base, q, now, timeoutMs) : undefined,
    reportingInstances: fallback.reportingInstances,
    inbound: byName(served.cells),
    outbound: byName(outbound.cells),
    callers: byName(callers.cells),
    edges: edgeList,
    routes: routeMap,
    instances: fallback.instances,
  };
}

/**
 * Per service, its served requests over the last ten minutes in the steps of the control
 * plane's own series (10 s, aligned the same way): rates over a minute at each step, since a
 * step shorter than the scrape interval would be empty.
 */
async function seriesOf(base: string, q: StatQuery, now: number, timeoutMs: number): Promise<Map<string, StatSeries>> {
  const n = METRIC_NAMES;
  const step = SLOT_MS / 1000;
  // Steps are labelled by their start, as the control plane's slots are, and evaluated at their end.
  const first = (Math.floor(now / SLOT_MS) - (SLOTS - 1)) * step;
  const start = first + step;
  const end = start + (SLOTS - 1) * step;
  const sel = q.service === undefined ? '' : `{service="${q.service}"}`;
  const ok = q.service === undefined ? '{outcome="success"}' : `{service="${q.service}",outcome="success"}`;
  const bucket = `sum by (service, le) (rate(${n.serverRequestDuration}_bucket${sel}[1m]))`;
  const [rps, success, p50, p99] = await Promise.all([
    queryRange(base, `sum by (service) (rate(${n.serverRequests}${sel}[1m]))`, start, end, step, timeoutMs),
    queryRange(base, `sum by (service) (rate(${n.serverRequests}${ok}[1m])) / sum by (service) (rate(${n.serverRequests}${sel}[1m]))`, start, end, step, timeoutMs),
    queryRange(base, `histogram_quantile(0.5, ${bucket})`, start, end, step, timeoutMs),
    queryRange(base, `histogram_quantile(0.99, ${bucket})`, start, end, step, timeoutMs),
  ]);
  const t = Array.from({ length: SLOTS }, (_, i) => first + i * step);
  const at = (m: MatrixSample[], service: string, scale: number, digits: number): (number | null)[] => {
    const values = new Map((m.find((x) => x.metric.service === service)?.values ?? []).map(([ts, v]) => [Math.round(ts) - step, Number(v)]));
    return t.map((ts) => {
      const v = values.get(ts);
      return v === undefined || !Number.isFinite(v) ? null : Math.round(v * scale * 10 ** digits) / 10 ** digits;
    });
  };
  const out = new Map<string, StatSeries>();
  for (const r of rps) {
    const service = r.metric.service ?? '';
    out.set(service, { stepSeconds: step, t, rps: at(rps, service, 1, 3).map((v) => v ?? 0), successRate: at(success, service, 1, 5), p50Ms: at(p50, service, 1000, 3), p99Ms: at(p99, service, 1000, 3) });
  }
  return out;
}
