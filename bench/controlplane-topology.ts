/**
 * The simulated fleet of `npm run bench -- controlplane`, shared by the orchestrator
 * (bench/controlplane-fanout.ts) and the instance processes (bench/controlplane-clients.ts).
 *
 * SERVICES services `svc-00`..`svc-19`; service i calls i+1, i+2 and i+3 (mod SERVICES), and
 * each Service's `inbound.authorization` allows exactly its three callers, so every service has
 * its own view: its own Service, the three it calls, their registry endpoints (none of these
 * Services lists endpoints: instances register them), and `billing-api`, an external API with
 * static endpoints and no authorization that every service may call. The applies measured
 * change `billing-api`, the one Service in every view, so each apply reaches every instance.
 *
 * Reports are synthetic but shaped as `createFleetReporter` builds them for this traffic (6 out
 * edges: 3 destinations x 2 routes; 3 in edges; 3 destinations whose endpoint list, 32 of the
 * 50 endpoints, is sent every 6th report as ENDPOINTS_EVERY says), so their size is the size a
 * real instance of this fleet would send; the control plane validates and ingests them as any.
 */
import { OTEL_HTTP_DURATION_BUCKETS } from '../src/observability/metrics.js';
import { ENDPOINTS_EVERY, MAX_ENDPOINTS, type FleetEdgeReport, type FleetReport } from '../src/controlplane-client/fleet-report.js';

export const SERVICES = 20;
export const TRUST_DOMAIN = 'cluster.local';
export const SHARED_SERVICE = 'billing-api';

export const serviceName = (i: number): string => `svc-${String(((i % SERVICES) + SERVICES) % SERVICES).padStart(2, '0')}`;
export const calls = (i: number): string[] => [1, 2, 3].map((d) => serviceName(i + d));
export const callers = (i: number): string[] => [1, 2, 3].map((d) => serviceName(i - d));

/** One simulated instance: `index` is its place in the fleet (0..N-1). */
export interface SimInstance {
  readonly index: number;
  readonly service: number;
  readonly id: string;
  readonly address: string;
  readonly labels: Record<string, string>;
}

export function instanceOf(index: number): SimInstance {
  const service = index % SERVICES;
  const k = Math.floor(index / SERVICES);
  return {
    index,
    service,
    id: `${serviceName(service)}-${String(k).padStart(3, '0')}`,
    // Distinct addresses (what a real fleet registers); nothing listens there.
    address: `10.${service}.${Math.floor(k / 250)}.${(k % 250) + 1}:8080`,
    labels: { version: k % 2 === 0 ? 'v1' : 'v2', zone: `z${k % 3}` },
  };
}

/** The documents applied before the instances connect. */
export function fleetDocuments(): unknown[] {
  const docs: unknown[] = [{ apiVersion: 'trellis/v1', kind: 'Mesh', metadata: { name: 'default' }, spec: { trustDomain: TRUST_DOMAIN } }];
  for (let i = 0; i < SERVICES; i++) {
    docs.push({
      apiVersion: 'trellis/v1',
      kind: 'Service',
      metadata: { name: serviceName(i) },
      spec: {
        protocol: 'http',
        timeout: '2s',
        retries: { attempts: 2, perTryTimeout: '500ms' },
        outlierDetection: { consecutiveFailures: 5, ejectionTime: '30s' },
        routes: [
          { name: 'catalog', match: { pathPrefix: ['/catalog'] }, backends: [{ subset: { version: 'v2' }, weight: 10 }, { subset: { version: 'v1' }, weight: 90 }], timeout: '1s' },
          { name: 'default' },
        ],
        inbound: { authorization: { allow: [{ from: callers(i) }] } },
      },
    });
  }
  docs.push(sharedService(2));
  return docs;
}

/** `billing-api` with its timeout set to `timeoutS` seconds: the change each measured apply makes. */
export function sharedService(timeoutS: number): unknown {
  return {
    apiVersion: 'trellis/v1',
    kind: 'Service',
    metadata: { name: SHARED_SERVICE },
    spec: { protocol: 'http', timeout: `${timeoutS}s`, endpoints: [{ address: '192.0.2.10:443' }, { address: '192.0.2.11:443' }] },
  };
}

function edge(dir: 'in' | 'out', from: string, to: string, route: string, n: number, seed: number): FleetEdgeReport {
  const counts = OTEL_HTTP_DURATION_BUCKETS.map((_, i) => (i >= 1 && i <= 7 ? Math.floor((n / 7) * (1 + ((seed + i) % 3) / 10)) : 0));
  counts.push(0);
  const requests = counts.reduce((a, b) => a + b, 0);
  const failed = seed % 17 === 0 ? 2 : 0;
  return {
    dir,
    from,
    to,
    route,
    protocol: 'http',
    requests,
    outcomes: { success: requests - failed, ...(failed > 0 ? { failure: failed } : {}) },
    status: { '2xx': requests - failed, ...(failed > 0 ? { '5xx': failed } : {}) },
    latency: { counts, sum: requests * 0.021 },
  };
}

/** The `seq`-th report of `inst` (0 = its first), covering [from, to]. */
export function reportOf(inst: SimInstance, seq: number, from: number, to: number, certificateNotAfter: number): FleetReport {
  const self = serviceName(inst.service);
  const edges: FleetEdgeReport[] = [];
  for (const [d, to2] of calls(inst.service).entries()) for (const route of ['catalog', 'default']) edges.push(edge('out', self, to2, route, 40, inst.index + d + seq));
  for (const [d, from2] of callers(inst.service).entries()) edges.push(edge('in', from2, self, 'unknown', 40, inst.index + d + seq));
  const withList = seq % ENDPOINTS_EVERY === 0;
  const destinations = calls(inst.service).map((svc, d) => ({
    service: svc,
    breaker: 'closed' as const,
    endpoints: { healthy: 50, ejected: 0 },
    ...(withList
      ? {
          endpointList: Array.from({ length: MAX_ENDPOINTS }, (_, k) => {
            const peer = instanceOf((inst.service + d + 1) % SERVICES + k * SERVICES);
            return { id: peer.address, ejected: false, outstanding: k % 3, ewmaMs: 12.5 + (k % 7), labels: peer.labels };
          }),
        }
      : {}),
    ejections: 0,
    retries: seq % 7 === 0 ? 1 : 0,
    rateLimited: 0,
  }));
  return { v: 1, interval: { from, to }, bounds: OTEL_HTTP_DURATION_BUCKETS, edges, destinations, certificateNotAfter };
}

/** Configuration of one instance process (in TRELLIS_BENCH_CLIENTS). */
export interface ClientsConfig {
  readonly url: string;
  readonly bundlePem: string;
  readonly trustDomain: string;
  /** Certificate chain and key per service name (one per service, shared by its instances). */
  readonly certificates: Record<string, { cert: string; key: string; notAfter: number }>;
  /** Fleet indexes of the instances this process runs. */
  readonly from: number;
  readonly to: number;
  /** Instances this process starts per second (a rollout). */
  readonly startPerSecond: number;
}

/** Orchestrator → instance process. */
export type ClientCommand =
  | { readonly cmd: 'state'; readonly since: number }
  | { readonly cmd: 'reached'; readonly version: number }
  | { readonly cmd: 'reports'; readonly on: boolean }
  | { readonly cmd: 'reportSizes' };

/** Answers, in the same order as the commands. */
export interface StateAnswer {
  /** Instances whose stream is connected now. */
  readonly connected: number;
  /** Instances connected (answered) since `since` (epoch ms), and the latest such moment. */
  readonly connectedSince: number;
  readonly lastConnectedAt: number;
  /** Instances that received (and ACKed) a snapshot since `since`, and the latest such moment. */
  readonly snapshotSince: number;
  readonly lastSnapshotAt: number;
  readonly snapshots: number;
  readonly snapshotBytes: number;
  /** Disconnections and failed connection attempts so far, by reason. */
  readonly reasons: Record<string, number>;
}
export interface ReachedAnswer {
  /** Per instance: when it received the first snapshot at or past the version (epoch ms), or -1. */
  readonly at: number[];
}
/** Bytes of the report lines sent: without endpoint lists, and with them (every ENDPOINTS_EVERY-th). */
export interface ReportSizesAnswer {
  readonly plain: { count: number; bytes: number };
  readonly lists: { count: number; bytes: number };
}
