/**
 * FleetFigures: the golden figures of one window, as a mode computed them (the control plane's
 * own aggregation, or PromQL against Prometheus), before they are joined with the registry and
 * the Service documents into the `/v1/stat` body (assemble-stat.ts). Also the conversion of a
 * merged Cell into GoldenFigures.
 */
import type { Cell } from './cell.js';
import { failuresOf, quantileOf, requestsOf, statusOf, successesOf } from './cell.js';
import type { GoldenFigures, StatDestination, StatEdge, StatSeries } from './stat-body.js';

export interface InstanceFigures {
  readonly id: string;
  readonly service: string;
  readonly inbound: GoldenFigures | null;
  readonly outbound: GoldenFigures | null;
  readonly lastReport: number | null;
  readonly certificateNotAfter: number | null;
  readonly destinations: readonly StatDestination[];
}

export interface FleetFigures {
  readonly reportingInstances: number;
  /** Per service: what its instances served. */
  readonly inbound: ReadonlyMap<string, GoldenFigures>;
  /** Per service: what its instances sent. */
  readonly outbound: ReadonlyMap<string, GoldenFigures>;
  /** Per service: what its callers saw calling it. */
  readonly callers: ReadonlyMap<string, GoldenFigures>;
  readonly edges: readonly StatEdge[];
  /** Per `service` then `route` (caller-side). */
  readonly routes: ReadonlyMap<string, ReadonlyMap<string, GoldenFigures>>;
  readonly instances: ReadonlyMap<string, InstanceFigures>;
  /** Per service, its row's steps (with `series=true`). */
  readonly series?: ReadonlyMap<string, StatSeries> | undefined;
}

const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

export function msOrNull(seconds: number | undefined): number | null {
  return seconds === undefined || !Number.isFinite(seconds) ? null : round(seconds * 1000, 3);
}

/** A merged cell over `seconds` as golden figures. */
export function figuresOf(cell: Cell, seconds: number): GoldenFigures {
  const requests = requestsOf(cell);
  return {
    requests,
    rps: round(requests / Math.max(seconds, 1e-3), 3),
    successRate: requests > 0 ? round(successesOf(cell) / requests, 5) : null,
    latencyMs: { p50: msOrNull(quantileOf(cell, 0.5)), p95: msOrNull(quantileOf(cell, 0.95)), p99: msOrNull(quantileOf(cell, 0.99)) },
    failures: failuresOf(cell),
    status: statusOf(cell),
  };
}

/** A failing edge: under 95 % success in the window. */
export const FAILING_BELOW = 0.95;
