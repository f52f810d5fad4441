/**
 * The JSON body of `GET /v1/stat` (docs/control-plane.md, "Stat"): what `trellis stat` prints
 * and the dashboard draws. The same shape in both modes (`source` says which computed it).
 */

/** Request rate, success and latency of one series over the window. */
export interface GoldenFigures {
  /** Logical requests in the window. */
  readonly requests: number;
  /** Requests per second over the window. */
  readonly rps: number;
  /** Share of requests whose outcome was `success` (0..1); null with no requests. */
  readonly successRate: number | null;
  /** Latency quantiles in milliseconds; null with no requests. */
  readonly latencyMs: { readonly p50: number | null; readonly p95: number | null; readonly p99: number | null };
  /** Requests that did not succeed, by outcome (`failure`, `timeout`, `circuit_open`...). */
  readonly failures: Readonly<Record<string, number>>;
  /** Requests by status class (`2xx`..`5xx`, `grpc-ok`, `grpc-error`, `none`). */
  readonly status: Readonly<Record<string, number>>;
}

/** Per 10-second step over the last ten minutes, oldest first (with `series=true`). */
export interface StatSeries {
  readonly stepSeconds: number;
  /** Start of each step, epoch seconds. */
  readonly t: readonly number[];
  readonly rps: readonly number[];
  readonly successRate: readonly (number | null)[];
  readonly p50Ms: readonly (number | null)[];
  readonly p99Ms: readonly (number | null)[];
}

export interface StatService {
  readonly name: string;
  /** Instances registered now (or, with no registry entry, reporting in the window). */
  readonly instances: number;
  /** What the service served (its instances' server metrics); null when it served nothing in the window. */
  readonly inbound: GoldenFigures | null;
  /** What the service's instances sent out (their client metrics); null when they called nothing. */
  readonly outbound: GoldenFigures | null;
  /** Where the service's own row comes from: `inbound`; `callers` (it reports nothing itself, e.g. not meshed: its callers' view); `outbound` (it only calls). */
  readonly view: 'inbound' | 'callers' | 'outbound' | 'none';
  /** The row's figures (the view's). */
  readonly figures: GoldenFigures | null;
  readonly series?: StatSeries | undefined;
}

export interface StatEdge extends GoldenFigures {
  readonly from: string;
  readonly to: string;
  readonly protocol: 'http' | 'grpc' | 'unknown';
  /** `caller`: the calling instances' client metrics; `server`: the destination's server metrics (the caller does not report, e.g. `unknown`). */
  readonly source: 'caller' | 'server';
  /** Success rate under 95 % in the window. */
  readonly failing: boolean;
}

export interface StatBackend {
  readonly subset: Readonly<Record<string, string>>;
  readonly weight: number;
  /** weight / sum of weights. */
  readonly configuredShare: number;
  /** Share of the service's served requests that instances of this subset served in the window (null with no traffic). */
  readonly liveShare: number | null;
  readonly rps: number;
}

export interface StatRoute {
  readonly service: string;
  readonly route: string;
  /** Declared in the Service document (false: seen in traffic only, e.g. `unknown`). */
  readonly declared: boolean;
  readonly figures: GoldenFigures | null;
  readonly backends: readonly StatBackend[];
}

export interface StatDestination {
  readonly service: string;
  readonly breaker: 'closed' | 'open' | 'half-open' | null;
  readonly endpoints: { readonly healthy: number; readonly ejected: number };
  readonly endpointList: readonly { readonly id: string; readonly ejected: boolean; readonly outstanding: number; readonly ewmaMs: number; readonly labels: Readonly<Record<string, string>> }[];
  /** In the window. */
  readonly ejections: number;
  readonly retries: number;
  readonly rateLimited: number;
}

export interface StatInstance {
  readonly id: string;
  readonly service: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly endpoints: readonly { readonly address: string; readonly protocol: string }[];
  /** False when the registry has no entry (it left, or its lease expired) but its reports are still in the window. */
  readonly registered: boolean;
  readonly connectedAt: number | null;
  readonly agent: string | null;
  readonly config: {
    readonly sent: string | null;
    readonly acked: string | null;
    readonly ackedAt: number | null;
    readonly nacked: { readonly version: string; readonly reason: string; readonly at: number } | null;
  };
  readonly certificateNotAfter: number | null;
  /** Epoch ms of its last report (null: none in ten minutes). */
  readonly lastReport: number | null;
  readonly inbound: GoldenFigures | null;
  readonly outbound: GoldenFigures | null;
  readonly destinations: readonly StatDestination[];
}

export interface StatBody {
  readonly source: 'control-plane' | 'prometheus';
  readonly window: string;
  readonly windowSeconds: number;
  /** When computed, epoch ms. */
  readonly at: number;
  /** The `service` asked for, or null for the whole fleet. */
  readonly service: string | null;
  /** Instances whose reports are in the window. */
  readonly reportingInstances: number;
  readonly services: readonly StatService[];
  readonly edges: readonly StatEdge[];
  /** With `service`: its routes, declared and observed. */
  readonly routes?: readonly StatRoute[] | undefined;
  /** With `service`: its instances. */
  readonly instances?: readonly StatInstance[] | undefined;
}

export const WINDOWS: Readonly<Record<string, number>> = Object.freeze({ '10s': 10, '1m': 60, '10m': 600 });
