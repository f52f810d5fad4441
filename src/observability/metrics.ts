/**
 * MeshMetrics: the Prometheus metrics of one mesh client (prom-client), with the names and
 * labels the public contract (docs/) fixes under "Observability names". It lives in the application's registry
 * when one is given (so one /metrics shows both), else in a registry of its own.
 *
 * Request metrics follow the OpenTelemetry HTTP semantic conventions: durations in seconds with
 * the buckets OTel advises for `http.{client,server}.request.duration`, `method` normalized to the
 * known methods or `_OTHER`. Durations carry `outcome` too (OTel's `error.type`), so the latency
 * of successes is never diluted by fast failures such as an open circuit.
 *
 * Invariants:
 * - Label values come from small fixed sets or from configuration (see metrics-labels.ts):
 *   never a raw path, never an endpoint address.
 * - Several MeshMetrics may share one registry (two mesh clients in one process): a metric
 *   already registered under a name is reused when its type and label names match, and
 *   refused with a clear error otherwise.
 * - The hot path (`recordClientRequest`, `recordClientAttempt`, `recordServerRequest`) adds to
 *   plain numbers per label tuple (request-series.ts): found through nested Maps, no string
 *   built, no prom-client call; prom-client gets them at scrape time through the metrics'
 *   `collect` hooks, so names, labels, buckets and HELP of the exposition are unchanged.
 *   Recording never throws into a request. Measured on Node 20 (bench/primitives.ts): see
 *   docs/benchmarks.md, "Hot-path primitives".
 * - Faster still: `clientRequests(service, route, method)`, `clientAttempts(...)` and
 *   `serverRequests(service, caller, route, method)` return a `RequestRecorder` bound to those
 *   labels, whose `record(statusCode, outcome, seconds)` does no label lookup but the last two.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { OpenMetricsContentType, PrometheusContentType } from 'prom-client';
import type { BreakerState } from '../client/service-state.js';
import { normalizeMethod, normalizeOutcome, normalizeStatus } from './metrics-labels.js';
import { RequestSeriesStore } from './request-series.js';
import type { RequestRecorder as StoreRecorder, Series } from './request-series.js';

/**
 * Records requests of one (service, caller, route, method) without looking them up again:
 * `record(statusCode, outcome, seconds)`, with the same normalization as `recordClientRequest`.
 * Never throws.
 */
export interface RequestRecorder {
  record(statusCode: string, outcome: string, durationSec: number): void;
}

/** OTel's advised buckets for `http.client.request.duration` / `http.server.request.duration` (s). */
export const OTEL_HTTP_DURATION_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]);

export const METRIC_NAMES = Object.freeze({
  clientRequests: 'trellis_client_requests_total',
  clientRequestDuration: 'trellis_client_request_duration_seconds',
  clientAttempts: 'trellis_client_attempts_total',
  clientAttemptDuration: 'trellis_client_attempt_duration_seconds',
  clientRetries: 'trellis_client_retries_total',
  clientRetryBudgetExhausted: 'trellis_client_retry_budget_exhausted_total',
  clientCircuitBreakerState: 'trellis_client_circuit_breaker_state',
  clientEndpoints: 'trellis_client_endpoints',
  clientEjections: 'trellis_client_ejections_total',
  clientRateLimited: 'trellis_client_rate_limited_total',
  certificateExpiry: 'trellis_certificate_expiry_timestamp_seconds',
  serverRequests: 'trellis_server_requests_total',
  serverRequestDuration: 'trellis_server_request_duration_seconds',
  serverShed: 'trellis_server_shed_total',
  concurrencyLimit: 'trellis_concurrency_limit',
  concurrencyInflight: 'trellis_concurrency_inflight',
  eventLoopUtilization: 'trellis_event_loop_utilization',
  eventLoopDelay: 'trellis_event_loop_delay_seconds',
});

/** What the overload layers report at scrape time (read, never pushed on the request path). */
export interface OverloadReading {
  limits: { service: string; direction: 'inbound' | 'outbound'; limit: number; inflight: number }[];
  eventLoop: { service: string; utilization: number; delayP99Ms: number } | undefined;
}

const CLIENT_LABELS = ['service', 'route', 'method', 'status_code', 'outcome'] as const;
const SERVER_LABELS = ['service', 'caller', 'route', 'method', 'status_code', 'outcome'] as const;
const BREAKER_STATES: readonly BreakerState[] = ['closed', 'open', 'half-open'];

/** Which way a rate limit refused a request: calling out, or being called. */
export type RateLimitDirection = 'outbound' | 'inbound';

/** A prom-client registry of either exposition format. */
export type AnyRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>;

export interface MeshMetricsOptions {
  /** The application's registry; default: a new Registry owned by this MeshMetrics. */
  registry?: AnyRegistry;
  /** Not supported: the names are part of the contract (dashboards and alerts rely on them). */
  prefix?: never;
}

/** Bound on cached children of the small caches (retries, rate limits); past it the cache restarts (the series stay). */
const MAX_CACHED = 10_000;

/**
 * A request counter and its duration histogram as plain numbers (request-series.ts), behind
 * the normalizing entry points: method, status and outcome are reduced to their fixed sets here.
 */
class RequestSeries {
  readonly store: RequestSeriesStore;

  constructor(counter: Counter<string>, histogram: Histogram<string>, labelNames: readonly string[]) {
    this.store = RequestSeriesStore.of(counter, histogram, labelNames, OTEL_HTTP_DURATION_BUCKETS);
  }

  record(service: string, caller: string, route: string, method: string, statusCode: string, outcome: string, durationSec: number): void {
    // A label value that is not a string (a bug upstream) is dropped here rather than becoming a
    // series that would fail every scrape.
    if (typeof service !== 'string' || typeof caller !== 'string' || typeof route !== 'string') return;
    try {
      this.store.recorder(service, caller, route, normalizeMethod(method)).record(normalizeStatus(statusCode), normalizeOutcome(outcome), durationSec);
    } catch {
      // Metrics must never fail a request.
    }
  }

  /** A recorder bound to (service, caller, route, method) that normalizes status and outcome. */
  recorder(service: string, caller: string, route: string, method: string): RequestRecorder {
    return new NormalizingRecorder(this.store.recorder(service, caller, route, normalizeMethod(method)));
  }
}

/**
 * A store's recorder behind the normalization of status and outcome. The last pair given (as
 * given) and its series are kept: the same pair again (a request path's usual case) is neither
 * normalized nor looked up again.
 */
class NormalizingRecorder implements RequestRecorder {
  readonly #r: StoreRecorder;
  #lastStatus: string | undefined = undefined;
  #lastOutcome: string | undefined = undefined;
  #last: Series | undefined = undefined;

  constructor(r: StoreRecorder) {
    this.#r = r;
  }

  record(statusCode: string, outcome: string, durationSec: number): void {
    if (statusCode !== this.#lastStatus || outcome !== this.#lastOutcome) {
      this.#last = this.#r.series(normalizeStatus(statusCode), normalizeOutcome(outcome));
      this.#lastStatus = statusCode;
      this.#lastOutcome = outcome;
    }
    this.#r.observe(this.#last as Series, durationSec);
  }
}

/** Separates label values in the keys of the small caches (retries, rate limits). */
const SEP = '\u0001';

function cache<V>(map: Map<string, V>, key: string, value: V): void {
  if (map.size >= MAX_CACHED) map.clear();
  map.set(key, value);
}

type AnyMetric = { readonly type?: unknown; readonly labelNames?: readonly string[] };

/** The metric already registered as `name`, checked to be what we would have made; or undefined. */
function existing(registry: AnyRegistry, name: string, type: string, labelNames: readonly string[]): unknown {
  const found = registry.getSingleMetric(name) as AnyMetric | undefined;
  if (found === undefined) return undefined;
  const have = [...(found.labelNames ?? [])].sort().join(',');
  const want = [...labelNames].sort().join(',');
  if (found.type !== type || have !== want) {
    throw new Error(`the registry already has a metric named ${name} (type ${String(found.type)}, labels [${have}]); Trellis needs type ${type} with labels [${want}]`);
  }
  return found;
}

function counter(registry: AnyRegistry, name: string, help: string, labelNames: readonly string[]): Counter<string> {
  return (existing(registry, name, 'counter', labelNames) as Counter<string> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}

function gauge(registry: AnyRegistry, name: string, help: string, labelNames: readonly string[]): Gauge<string> {
  return (existing(registry, name, 'gauge', labelNames) as Gauge<string> | undefined) ?? new Gauge({ name, help, labelNames, registers: [registry] });
}

function histogram(registry: AnyRegistry, name: string, help: string, labelNames: readonly string[]): Histogram<string> {
  return (
    (existing(registry, name, 'histogram', labelNames) as Histogram<string> | undefined) ??
    new Histogram({ name, help, labelNames, buckets: [...OTEL_HTTP_DURATION_BUCKETS], registers: [registry] })
  );
}

/**
 * The metrics of one mesh client.
 *
 * @example
 * const registry = new Registry();                 // the application's
 * const metrics = new MeshMetrics({ registry });
 * metrics.recordClientRequest('products', 'catalog', 'GET', '200', 'success', 0.012);
 * http.createServer(metricsHandler(registry)).listen(9464);
 */
export class MeshMetrics {
  /** The registry holding the metrics: the application's, or one owned by this instance. */
  readonly registry: AnyRegistry;
  /** True when the registry was created here (nobody else exposes it). */
  readonly ownsRegistry: boolean;

  readonly #clientRequests: RequestSeries;
  readonly #clientAttempts: RequestSeries;
  readonly #serverRequests: RequestSeries;
  readonly #retries: Counter<string>;
  readonly #retryChildren = new Map<string, Counter.Internal>();
  readonly #budgetExhausted: Counter<string>;
  readonly #breakerState: Gauge<string>;
  readonly #endpoints: Gauge<string>;
  readonly #ejections: Counter<string>;
  readonly #rateLimited: Counter<string>;
  readonly #rateLimitedChildren = new Map<string, Counter.Internal>();
  readonly #certificateExpiry: Gauge<string>;
  readonly #shed: Counter<string>;
  #overload: (() => OverloadReading) | undefined;

  constructor(options: MeshMetricsOptions = {}) {
    if ((options as { prefix?: unknown }).prefix !== undefined) {
      throw new TypeError('MeshMetrics does not take a prefix: metric names are fixed (dashboards and alerts rely on them)');
    }
    this.ownsRegistry = options.registry === undefined;
    const r: AnyRegistry = options.registry ?? new Registry();
    this.registry = r;
    const n = METRIC_NAMES;

    this.#clientRequests = new RequestSeries(
      counter(r, n.clientRequests, 'Logical client requests (what the caller saw, after retries), by destination service, route, method, status code and outcome.', CLIENT_LABELS),
      histogram(r, n.clientRequestDuration, 'Duration of logical client requests in seconds, until the response body completed or the request failed.', CLIENT_LABELS),
      CLIENT_LABELS,
    );
    this.#clientAttempts = new RequestSeries(
      counter(r, n.clientAttempts, 'Client attempts (each try of a logical request), by destination service, route, method, status code and outcome.', CLIENT_LABELS),
      histogram(r, n.clientAttemptDuration, 'Duration of client attempts in seconds, until the response headers arrived or the attempt failed.', CLIENT_LABELS),
      CLIENT_LABELS,
    );
    this.#serverRequests = new RequestSeries(
      counter(r, n.serverRequests, 'Requests served, by this service, verified caller, route, method, status code and outcome.', SERVER_LABELS),
      histogram(r, n.serverRequestDuration, 'Duration of served requests in seconds, until the response finished.', SERVER_LABELS),
      SERVER_LABELS,
    );
    this.#retries = counter(r, n.clientRetries, 'Retries sent, by destination service, route and the retry condition that triggered them.', ['service', 'route', 'reason']);
    this.#budgetExhausted = counter(r, n.clientRetryBudgetExhausted, 'Retries refused because the destination retry budget was exhausted.', ['service']);
    this.#breakerState = gauge(r, n.clientCircuitBreakerState, 'Circuit breaker state per destination: 1 for the current state, 0 for the others.', ['service', 'state']);
    this.#endpoints = gauge(r, n.clientEndpoints, 'Endpoints known per destination, by state (healthy or ejected by outlier detection).', ['service', 'state']);
    this.#ejections = counter(r, n.clientEjections, 'Endpoints ejected by outlier detection, per destination.', ['service']);
    this.#rateLimited = counter(r, n.clientRateLimited, 'Requests refused by a rate limit, by service, route and direction (outbound or inbound).', ['service', 'route', 'direction']);
    this.#certificateExpiry = gauge(r, n.certificateExpiry, 'Expiry (notAfter) of the workload certificate, in seconds since the epoch.', ['service']);
    this.#shed = counter(r, n.serverShed, 'Requests shed by the inbound overload guard before the handler ran, by service and reason (deadline, event-loop, concurrency).', ['service', 'reason']);
    const read = (): OverloadReading | undefined => this.#overload?.();
    const limitGauge = gauge(r, n.concurrencyLimit, 'Current adaptive concurrency limit, by service and direction (inbound: this service; outbound: the destination).', ['service', 'direction']);
    const inflightGauge = gauge(r, n.concurrencyInflight, 'Requests in flight counted by an adaptive concurrency limit, by service and direction.', ['service', 'direction']);
    const eluGauge = gauge(r, n.eventLoopUtilization, 'Event-loop utilization (0..1) over the last 100 ms window, as the overload guard saw it.', ['service']);
    const delayGauge = gauge(r, n.eventLoopDelay, 'Event-loop delay p99 over the last 100 ms window, in seconds, as the overload guard saw it.', ['service']);
    // Read at scrape time through the first gauge's collect hook (prom-client calls it before
    // reading; the other three are registered after it): nothing is recorded per request.
    const refresh = (): void => {
      const o = read();
      limitGauge.reset();
      inflightGauge.reset();
      eluGauge.reset();
      delayGauge.reset();
      if (o === undefined) return;
      for (const l of o.limits) {
        limitGauge.set({ service: l.service, direction: l.direction }, l.limit);
        inflightGauge.set({ service: l.service, direction: l.direction }, l.inflight);
      }
      if (o.eventLoop !== undefined) {
        eluGauge.set({ service: o.eventLoop.service }, o.eventLoop.utilization);
        delayGauge.set({ service: o.eventLoop.service }, o.eventLoop.delayP99Ms / 1000);
      }
    };
    (limitGauge as unknown as { collect?: () => void }).collect = refresh;
  }

  /** One logical client request (hot path). `statusCode` is '' when there was no response. */
  recordClientRequest(service: string, route: string, method: string, statusCode: string, outcome: string, durationSec: number): void {
    this.#clientRequests.record(service, '', route, method, statusCode, outcome, durationSec);
  }

  /**
   * The logical-request recorder of one (destination, route, method): `record(statusCode,
   * outcome, seconds)` skips the label lookup of `recordClientRequest`. Hold one per route and
   * method on a request path built once.
   */
  clientRequests(service: string, route: string, method: string): RequestRecorder {
    return this.#clientRequests.recorder(service, '', route, method);
  }

  /** The attempt recorder of one (destination, route, method); see `clientRequests`. */
  clientAttempts(service: string, route: string, method: string): RequestRecorder {
    return this.#clientAttempts.recorder(service, '', route, method);
  }

  /** The served-request recorder of one (this service, caller, route, method); see `clientRequests`. */
  serverRequests(service: string, caller: string, route: string, method: string): RequestRecorder {
    return this.#serverRequests.recorder(service, caller, route, method);
  }

  /** One client attempt (hot path). */
  recordClientAttempt(service: string, route: string, method: string, statusCode: string, outcome: string, durationSec: number): void {
    this.#clientAttempts.record(service, '', route, method, statusCode, outcome, durationSec);
  }

  /** One served request (hot path). `service` is this service, `caller` the verified caller or `unknown`. */
  recordServerRequest(service: string, caller: string, route: string, method: string, statusCode: string, outcome: string, durationSec: number): void {
    this.#serverRequests.record(service, caller, route, method, statusCode, outcome, durationSec);
  }

  /** A retry was sent; `reason` is the retry condition that matched (`gateway-error`, `reset`, ...). */
  retry(service: string, route: string, reason: string): void {
    const key = service + SEP + route + SEP + reason;
    let c = this.#retryChildren.get(key);
    if (c === undefined) {
      c = this.#retries.labels(service, route, reason);
      cache(this.#retryChildren, key, c);
    }
    c.inc();
  }

  /** The retry budget refused a retry that was otherwise allowed. */
  retryBudgetExhausted(service: string): void {
    this.#budgetExhausted.inc({ service });
  }

  /** The destination's breaker is now in `state` (1), and in none of the others (0). */
  setBreakerState(service: string, state: BreakerState): void {
    for (const s of BREAKER_STATES) this.#breakerState.set({ service, state: s }, s === state ? 1 : 0);
  }

  /** The destination has no breaker (any more): its state series go away. */
  clearBreakerState(service: string): void {
    for (const s of BREAKER_STATES) this.#breakerState.remove({ service, state: s });
  }

  /** How many of the destination's endpoints are healthy and how many are ejected. */
  setEndpoints(service: string, healthy: number, ejected: number): void {
    this.#endpoints.set({ service, state: 'healthy' }, healthy);
    this.#endpoints.set({ service, state: 'ejected' }, ejected);
  }

  /** Outlier detection ejected one of the destination's endpoints. */
  ejection(service: string): void {
    this.#ejections.inc({ service });
  }

  /** A rate limit refused a request (`service`: the destination outbound, this service inbound). */
  rateLimited(service: string, route: string, direction: RateLimitDirection): void {
    const key = service + SEP + route + SEP + direction;
    let c = this.#rateLimitedChildren.get(key);
    if (c === undefined) {
      c = this.#rateLimited.labels(service, route, direction);
      cache(this.#rateLimitedChildren, key, c);
    }
    c.inc();
  }

  /** The inbound overload guard shed a request (cold path: only under overload). */
  shed(service: string, reason: string): void {
    this.#shed.inc({ service, reason });
  }

  /** Where the overload gauges are read from at scrape time. */
  set overloadSource(source: (() => OverloadReading) | undefined) {
    this.#overload = source;
  }

  /** The workload certificate of `service` expires at `notAfterMs` (epoch ms). */
  setCertificateExpiry(service: string, notAfterMs: number): void {
    this.#certificateExpiry.set({ service }, notAfterMs / 1000);
  }

  /**
   * Drops the gauges of a destination that left the configuration (counters and histograms stay:
   * a counter that vanishes would read as a reset).
   */
  removeService(service: string): void {
    this.clearBreakerState(service);
    this.#endpoints.remove({ service, state: 'healthy' });
    this.#endpoints.remove({ service, state: 'ejected' });
  }

  /** The exposition text of the whole registry (what /metrics serves). */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
