/**
 * The fleet view: golden metrics of the whole mesh at the control plane. Instances' reports
 * (`{"type":"report"}` on their streams) go to `ingest`; `stat(query)` answers `GET /v1/stat`.
 *
 * Two modes, one body: by default the control plane aggregates the reports itself (sliding
 * windows of 10 s, 1 min and 10 min in 10-second slots, memory bounded per instance); with
 * `prometheusUrl` it asks a Prometheus that scrapes the instances instead (as Linkerd viz does),
 * for fleets past what one control plane should aggregate. Reports are still accepted (and
 * checked) in Prometheus mode, for the per-instance detail Prometheus cannot join (breakers,
 * endpoints, certificate expiry), but the windows' figures come from Prometheus.
 */
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import type { Store } from '../store/store.js';
import { assembleStat } from './assemble-stat.js';
import { MemoryFigures } from './memory-figures.js';
import type { ReportingInstance } from './memory-figures.js';
import { prometheusFigures } from './prometheus-figures.js';
import { parseFleetReport } from './report-schema.js';
import type { StatBody } from './stat-body.js';
import { parseStatQuery } from './stat-query.js';
import { readStoreView } from './store-view.js';

export interface FleetDeps {
  readonly store: Store;
  readonly clock?: Clock | undefined;
  /** Read the figures from this Prometheus (PromQL over HTTP) instead of aggregating reports. */
  readonly prometheusUrl?: string | undefined;
}

export type IngestResult = { readonly accepted: true } | { readonly accepted: false; readonly reason: string };

export interface Fleet {
  /** A report from an instance's stream (its identity from its certificate). Never throws. */
  ingest(instance: ReportingInstance, report: unknown): IngestResult;
  /** The body of `GET /v1/stat?window=1m&service=NAME&series=true`; an InvalidArgumentError for a bad query. */
  stat(query: URLSearchParams): Promise<StatBody>;
  /** Reports accepted and refused since start (the control plane's /metrics may export them). */
  readonly counters: { readonly accepted: number; readonly refused: number };
  /** Cells and instances held by the aggregation (memory figures; tests of expiry). */
  size(): { cells: number; instances: number };
}

/**
 * @example
 * const fleet = createFleet({ store });
 * streamServer({ ..., onReport: (instance, report) => fleet.ingest(instance, report) });
 * router.get('/v1/stat', async (req) => fleet.stat(new URL(req.url, 'http://x').searchParams));
 */
export function createFleet(deps: FleetDeps): Fleet {
  const clock = deps.clock ?? systemClock;
  const memory = new MemoryFigures(clock.wall());
  const counters = { accepted: 0, refused: 0 };
  return {
    counters,
    ingest(instance, value) {
      const parsed = parseFleetReport(value);
      if (!parsed.ok) {
        counters.refused++;
        return { accepted: false, reason: parsed.reason };
      }
      counters.accepted++;
      memory.ingest(instance, parsed.report, clock.wall());
      return { accepted: true };
    },
    async stat(query) {
      const q = parseStatQuery(query);
      const now = clock.wall();
      const [view, figures] = await Promise.all([
        readStoreView(deps.store),
        deps.prometheusUrl === undefined
          ? Promise.resolve(memory.figures(now, q.windowSeconds, q.series, q.service))
          : prometheusFigures(deps.prometheusUrl, q, memory.figures(now, q.windowSeconds, false, q.service), now),
      ]);
      return assembleStat(q, figures, view, now, deps.prometheusUrl === undefined ? 'control-plane' : 'prometheus');
    },
    size: () => memory.size(),
  };
}
