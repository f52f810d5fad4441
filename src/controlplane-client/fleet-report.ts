/**
 * The golden-metrics report an instance sends over its control-plane stream every 5 s
 * (`{"type":"report", ...FleetReport}`), and the reporter that builds it.
 *
 * Reporting costs nothing on the request path: the reporter reads what the metrics layer already
 * accumulates, through prom-client's own read path (`registry.getMetricsAsJSON()`, what /metrics
 * serves: collect hooks run, so counters exported at scrape time are read too), and sends the
 * difference since its previous reading. Nothing is recorded per request for it.
 *
 * Latency is the request-duration histogram the metrics layer already keeps (OTel's advised
 * buckets): bucket counts merge exactly by addition at the control plane, and the quantiles it
 * computes from them are the ones Prometheus's `histogram_quantile` gives over the same series, so
 * `trellis stat` and `--prometheus` mode agree. A sketch (DDSketch, HdrHistogram) would be finer
 * but would have to be recorded on the request path, which this report must not touch.
 *
 * One edge is (from service, to service, route) in one direction: `out` edges come from the
 * client metrics (what this instance saw calling `to`, including failures that never reached it:
 * an open circuit, no endpoints); `in` edges from the server metrics (what this instance served,
 * `from` being the verified caller or `unknown`). Counts are per interval (deltas), never totals.
 *
 * Invariants: a report holds at most MAX_EDGES edges and MAX_DESTINATIONS destinations (each
 * with at most MAX_ENDPOINTS endpoints), so its size is bounded whatever the traffic; a counter
 * that went backwards (a registry reset) counts from zero; an interval with nothing to say is
 * still a report (the control plane learns the instance is alive and idle).
 */
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { MeshInspection } from '../inspect.js';
import { METRIC_NAMES, OTEL_HTTP_DURATION_BUCKETS } from '../observability/metrics.js';
import type { AnyRegistry } from '../observability/metrics.js';

/** Version of the report's shape. */
export const FLEET_REPORT_VERSION = 1;
/** Bounds that keep one report small whatever the traffic. */
export const MAX_EDGES = 512;
export const MAX_DESTINATIONS = 128;
export const MAX_ENDPOINTS = 32;
/** Readings between two endpoint lists of an unchanged destination (6 x 5 s = 30 s). */
export const ENDPOINTS_EVERY = 6;

/** Counts of one edge over one interval. */
export interface FleetEdgeReport {
  /** `out`: this instance called `to` (client metrics); `in`: `from` called this instance (server metrics). */
  readonly dir: 'out' | 'in';
  readonly from: string;
  readonly to: string;
  /** The route name from configuration, or `unknown`. */
  readonly route: string;
  readonly protocol: 'http' | 'grpc';
  /** Logical requests in the interval. */
  readonly requests: number;
  /** Requests by outcome (`success`, `failure`, `timeout`, `circuit_open`, ...); zero counts omitted. */
  readonly outcomes: Readonly<Record<string, number>>;
  /** Requests by status class: `2xx`..`5xx` for HTTP, the gRPC code name (`ok`, `unavailable`...) for gRPC, `none` with no response. */
  readonly status: Readonly<Record<string, number>>;
  /** Latency histogram of the interval: `counts[i]` requests took at most `bounds[i]` seconds (and more than `bounds[i-1]`); the last count is above the last bound. */
  readonly latency: { readonly counts: readonly number[]; readonly sum: number };
}

/** What this instance knows of one destination right now (states, not deltas, except the counters named so). */
export interface FleetDestinationReport {
  readonly service: string;
  /** Circuit breaker state, when the destination has a breaker. */
  readonly breaker?: 'closed' | 'open' | 'half-open' | undefined;
  readonly endpoints: { readonly healthy: number; readonly ejected: number };
  /** Up to MAX_ENDPOINTS endpoints with their state (from `mesh.inspect()`, when given); only when it changed, and every ENDPOINTS_EVERY reports (absent: as last sent). */
  readonly endpointList?: readonly { readonly id: string; readonly ejected: boolean; readonly outstanding: number; readonly ewmaMs: number; readonly labels: Readonly<Record<string, string>> }[] | undefined;
  /** Deltas in the interval. */
  readonly ejections: number;
  readonly retries: number;
  readonly rateLimited: number;
}

export interface FleetReport {
  readonly v: typeof FLEET_REPORT_VERSION;
  /** The interval the counts cover, on the instance's wall clock (epoch ms); `from` is 0 for the first report (counts since start). */
  readonly interval: { readonly from: number; readonly to: number };
  /** Upper bounds (seconds) of the latency buckets every edge's `counts` use (the last count is `+Inf`). */
  readonly bounds: readonly number[];
  readonly edges: readonly FleetEdgeReport[];
  readonly destinations: readonly FleetDestinationReport[];
  /** The workload certificate's notAfter (epoch ms), when it has one. */
  readonly certificateNotAfter?: number | undefined;
  /** Edges left out of this report because it was full (MAX_EDGES). */
  readonly droppedEdges?: number | undefined;
}

export interface FleetReportSource {
  /** The registry holding this mesh client's metrics (`mesh.metricsRegistry`). */
  readonly registry: AnyRegistry;
  /** This instance's service: the `from` of its outbound edges. */
  readonly service: string;
  /** Endpoint detail per destination (`() => mesh.inspect()`); counts alone without it. */
  readonly inspect?: (() => MeshInspection) | undefined;
  readonly clock?: Clock | undefined;
}

/**
 * Hands out the latest report (undefined until the first reading finished) and starts the next
 * reading; `sample()` reads now and resolves with the report of the interval since the last one.
 */
export interface FleetReporter {
  (): FleetReport | undefined;
  sample(): Promise<FleetReport>;
}

interface PromValue {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly metricName?: string;
}
interface PromMetric {
  readonly name: string;
  readonly values: readonly PromValue[];
}

const GRPC_NAMES = ['ok', 'cancelled', 'unknown', 'invalid-argument', 'deadline-exceeded', 'not-found', 'already-exists', 'permission-denied', 'resource-exhausted', 'failed-precondition', 'aborted', 'out-of-range', 'unimplemented', 'internal', 'unavailable', 'data-loss', 'unauthenticated'];

/** `200` → `2xx`, `14` (gRPC) → `unavailable`, `` → `none`. */
export function statusClass(status: string): { protocol: 'http' | 'grpc' | undefined; cls: string } {
  if (status.length === 3) return { protocol: 'http', cls: `${status[0]}xx` };
  if (status.length > 0 && status.length <= 2) return { protocol: 'grpc', cls: GRPC_NAMES[Number(status)] ?? 'unknown' };
  return { protocol: undefined, cls: 'none' };
}

const str = (v: string | number | undefined): string => (v === undefined ? '' : String(v));

/** Cumulative values of the previous reading, by series key; a series absent now is dropped. */
class Deltas {
  #prev = new Map<string, number>();
  #next = new Map<string, number>();
  /** The increase of a cumulative series since the last `commit()` (from 0 after a reset). */
  delta(key: string, cumulative: number): number {
    this.#next.set(key, cumulative);
    const before = this.#prev.get(key) ?? 0;
    return cumulative >= before ? cumulative - before : cumulative;
  }
  commit(): void {
    this.#prev = this.#next;
    this.#next = new Map();
  }
}

interface EdgeAcc {
  dir: 'out' | 'in';
  from: string;
  to: string;
  route: string;
  protocol: 'http' | 'grpc' | undefined;
  requests: number;
  outcomes: Record<string, number>;
  status: Record<string, number>;
  counts: number[];
  sum: number;
}

const SEP = '\u0001';

function edgeOf(edges: Map<string, EdgeAcc>, dir: 'out' | 'in', from: string, to: string, route: string): EdgeAcc {
  const key = dir + SEP + from + SEP + to + SEP + route;
  let e = edges.get(key);
  if (e === undefined) {
    e = { dir, from, to, route, protocol: undefined, requests: 0, outcomes: {}, status: {}, counts: new Array<number>(OTEL_HTTP_DURATION_BUCKETS.length + 1).fill(0), sum: 0 };
    edges.set(key, e);
  }
  return e;
}

/** Reads one reading's request counters into edges. */
function readCounter(metric: PromMetric | undefined, dir: 'out' | 'in', self: string, deltas: Deltas, edges: Map<string, EdgeAcc>): void {
  if (metric === undefined) return;
  for (const v of metric.values) {
    const l = v.labels;
    const key = metric.name + SEP + str(l.service) + SEP + str(l.caller) + SEP + str(l.route) + SEP + str(l.method) + SEP + str(l.status_code) + SEP + str(l.outcome);
    const d = deltas.delta(key, v.value);
    if (d <= 0) continue;
    const e = dir === 'out' ? edgeOf(edges, dir, self, str(l.service), str(l.route) || 'unknown') : edgeOf(edges, dir, str(l.caller) || 'unknown', str(l.service), str(l.route) || 'unknown');
    const { protocol, cls } = statusClass(str(l.status_code));
    if (protocol !== undefined) e.protocol = protocol;
    e.requests += d;
    const outcome = str(l.outcome) || 'failure';
    e.outcomes[outcome] = (e.outcomes[outcome] ?? 0) + d;
    e.status[cls] = (e.status[cls] ?? 0) + d;
  }
}

/** Reads one reading's duration histograms into the same edges (cumulative buckets → per-bucket deltas). */
function readHistogram(metric: PromMetric | undefined, dir: 'out' | 'in', self: string, deltas: Deltas, edges: Map<string, EdgeAcc>): void {
  if (metric === undefined) return;
  const bounds = OTEL_HTTP_DURATION_BUCKETS;
  // prom-client lists each child's buckets in order (cumulative), then its _sum and _count.
  let lastCum = 0;
  let lastChild = '';
  for (const v of metric.values) {
    const l = v.labels;
    const child = str(l.service) + SEP + str(l.caller) + SEP + str(l.route) + SEP + str(l.method) + SEP + str(l.status_code) + SEP + str(l.outcome);
    const name = v.metricName ?? '';
    const e = (): EdgeAcc => (dir === 'out' ? edgeOf(edges, dir, self, str(l.service), str(l.route) || 'unknown') : edgeOf(edges, dir, str(l.caller) || 'unknown', str(l.service), str(l.route) || 'unknown'));
    if (name.endsWith('_bucket')) {
      if (child !== lastChild) {
        lastChild = child;
        lastCum = 0;
      }
      // Per-bucket count = this cumulative minus the previous bucket's; deltas of those.
      const cum = v.value;
      const le = l.le === '+Inf' ? Infinity : Number(l.le);
      const idx = le === Infinity ? bounds.length : bounds.indexOf(le);
      const own = cum - lastCum;
      lastCum = cum;
      if (idx < 0) continue;
      const d = deltas.delta(metric.name + SEP + child + SEP + idx, own);
      if (d > 0) e().counts[idx] = (e().counts[idx] ?? 0) + d;
    } else if (name.endsWith('_sum')) {
      const d = deltas.delta(metric.name + SEP + child + SEP + 'sum', v.value);
      if (d > 0) e().sum += d;
    }
  }
}

function gaugeByService(metric: PromMetric | undefined): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const v of metric?.values ?? []) {
    const s = str(v.labels.service);
    let m = out.get(s);
    if (m === undefined) out.set(s, (m = new Map()));
    m.set(str(v.labels.state), v.value);
  }
  return out;
}

function counterDeltaByService(metric: PromMetric | undefined, deltas: Deltas): Map<string, number> {
  const out = new Map<string, number>();
  for (const v of metric?.values ?? []) {
    const key = (metric?.name ?? '') + SEP + Object.entries(v.labels).map(([k, x]) => `${k}=${String(x)}`).join(SEP);
    const d = deltas.delta(key, v.value);
    const s = str(v.labels.service);
    out.set(s, (out.get(s) ?? 0) + d);
  }
  return out;
}

/**
 * A reporter over a mesh client's metrics.
 *
 * @example
 * const report = createFleetReporter({ registry: mesh.metricsRegistry, service: 'checkout', inspect: () => mesh.inspect() });
 * streamClient({ ..., reportSource: report });   // called every 5 s; hands out the last reading
 */
export function createFleetReporter(source: FleetReportSource): FleetReporter {
  const clock = source.clock ?? systemClock;
  const deltas = new Deltas();
  let lastAt = 0;
  let latest: FleetReport | undefined;
  let inFlight: Promise<FleetReport> | undefined;
  /** Per destination, the endpoint list (ids and ejections) last sent; and readings taken. */
  let sent = new Map<string, string>();
  let readings = 0;

  const read = async (): Promise<FleetReport> => {
    const all = (await source.registry.getMetricsAsJSON()) as unknown as PromMetric[];
    const by = new Map(all.map((m) => [m.name, m]));
    const n = METRIC_NAMES;
    const edges = new Map<string, EdgeAcc>();
    readCounter(by.get(n.clientRequests), 'out', source.service, deltas, edges);
    readHistogram(by.get(n.clientRequestDuration), 'out', source.service, deltas, edges);
    readCounter(by.get(n.serverRequests), 'in', source.service, deltas, edges);
    readHistogram(by.get(n.serverRequestDuration), 'in', source.service, deltas, edges);

    const breakers = gaugeByService(by.get(n.clientCircuitBreakerState));
    const endpoints = gaugeByService(by.get(n.clientEndpoints));
    const ejections = counterDeltaByService(by.get(n.clientEjections), deltas);
    const retries = counterDeltaByService(by.get(n.clientRetries), deltas);
    const limited = counterDeltaByService(by.get(n.clientRateLimited), deltas);
    const cert = by.get(n.certificateExpiry)?.values.find((v) => str(v.labels.service) === source.service) ?? by.get(n.certificateExpiry)?.values[0];
    deltas.commit();

    let inspection: MeshInspection | undefined;
    try {
      inspection = source.inspect?.();
    } catch {
      inspection = undefined; // a closing mesh: counts alone
    }
    const inspected = new Map((inspection?.services ?? []).map((s) => [s.name, s]));
    const names = new Set([...breakers.keys(), ...endpoints.keys(), ...ejections.keys(), ...retries.keys(), ...inspected.keys()]);
    const destinations: FleetDestinationReport[] = [];
    const nextSent = new Map<string, string>();
    for (const service of names) {
      if (destinations.length >= MAX_DESTINATIONS || service === '') break;
      const b = breakers.get(service);
      const state = b === undefined ? undefined : ([...b.entries()].find(([, v]) => v === 1)?.[0] as FleetDestinationReport['breaker']);
      const ep = endpoints.get(service);
      const all = inspected.get(service)?.endpoints.slice(0, MAX_ENDPOINTS).map((x) => ({ id: x.id, ejected: x.ejected, outstanding: x.outstanding, ewmaMs: Math.round(x.ewmaMs * 100) / 100, labels: x.labels }));
      // The endpoint list is most of a report's bytes: sent when its membership or ejections
      // changed, and every ENDPOINTS_EVERY readings for the load figures; the control plane
      // keeps the last one it got.
      const sig = all?.map((x) => `${x.id}${x.ejected ? '!' : ''}`).join(',');
      const list = all !== undefined && (sig !== sent.get(service) || readings % ENDPOINTS_EVERY === 0) ? all : undefined;
      if (sig !== undefined) nextSent.set(service, sig);
      destinations.push({
        service,
        ...(state !== undefined ? { breaker: state } : {}),
        endpoints: { healthy: ep?.get('healthy') ?? list?.filter((x) => !x.ejected).length ?? 0, ejected: ep?.get('ejected') ?? list?.filter((x) => x.ejected).length ?? 0 },
        ...(list !== undefined ? { endpointList: list } : {}),
        ejections: ejections.get(service) ?? 0,
        retries: retries.get(service) ?? 0,
        rateLimited: limited.get(service) ?? 0,
      });
    }

    sent = nextSent;
    readings++;
    const now = clock.wall();
    const out: FleetEdgeReport[] = [];
    let dropped = 0;
    for (const e of edges.values()) {
      if (e.requests === 0) continue;
      if (out.length >= MAX_EDGES) {
        dropped++;
        continue;
      }
      out.push({ dir: e.dir, from: e.from, to: e.to, route: e.route, protocol: e.protocol ?? 'http', requests: e.requests, outcomes: e.outcomes, status: e.status, latency: { counts: e.counts, sum: Math.round(e.sum * 1e6) / 1e6 } });
    }
    const report: FleetReport = {
      v: FLEET_REPORT_VERSION,
      interval: { from: lastAt, to: now },
      bounds: OTEL_HTTP_DURATION_BUCKETS,
      edges: out,
      destinations,
      ...(cert !== undefined ? { certificateNotAfter: cert.value * 1000 } : {}),
      ...(dropped > 0 ? { droppedEdges: dropped } : {}),
    };
    lastAt = now;
    latest = report;
    return report;
  };

  const sample = (): Promise<FleetReport> => {
    // One reading at a time: deltas are against the previous reading, so two must not interleave.
    const p = (inFlight ?? Promise.resolve()).then(read, read);
    inFlight = p;
    void p.finally(() => {
      if (inFlight === p) inFlight = undefined;
    }).catch(() => {});
    return p;
  };

  const reporter = (): FleetReport | undefined => {
    const out = latest;
    latest = undefined; // each reading is handed out once: its counts are deltas
    if (inFlight === undefined) sample().catch(() => {});
    return out;
  };
  reporter.sample = sample;
  return reporter;
}
