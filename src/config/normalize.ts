/**
 * Validated documents → the normalized shapes of `types.ts`, with every default filled in.
 * The defaults are the ones a Linkerd, Envoy or Finagle user expects, and each says where it
 * comes from; docs/configuration.md lists them in one table (keep the two in step).
 *
 * Invariant: pure and total — called only on documents the schema accepted, it cannot fail.
 */

import { normalizeAdaptiveConcurrency, normalizeOverload } from './normalize-overload.js';
import type { RawCircuitBreaker, RawConnection, RawOutlierDetection } from './schema-policy.js';
import type { RawMeshSpec } from './schema-mesh.js';
import type { RawAuthRule, RawInbound, RawServiceSpec } from './schema-service.js';
import type {
  AuthorizationRuleSpec,
  CircuitBreakerSpec,
  InboundSpec,
  MeshSpec,
  OutlierDetectionSpec,
  Protocol,
  ServiceSpec,
} from './types.js';
import { explicitRetryDefaults, implicitRetries, mergeRetries, normalizeFault, normalizeRateLimit } from './normalize-policy.js';
import { normalizeRoute } from './normalize-route.js';

export const MESH_DEFAULTS = {
  name: 'default',
  trustDomain: 'cluster.local',
  certificateTTLMs: 24 * 3_600_000,
  /** Sample every new trace; write W3C trace context (every format is always read; B3 written when asked). */
  tracingSampling: 1,
  tracingPropagation: ['tracecontext'] as const,
  dnsRefreshIntervalMs: 30_000,
  dnsMinTtlMs: 1000,
} as const;

export const SERVICE_DEFAULTS = {
  protocol: 'http' as Protocol,
  /** Linkerd's balancer: peak EWMA over power of two choices. */
  loadBalancer: 'ewma',
  /** Envoy's route timeout. TCP has no request to time: its default is none. */
  timeoutMs: 15_000,
  connection: { maxConnections: 100, connectTimeoutMs: 1000, keepAliveTimeoutMs: 4000 },
  /**
   * Envoy's outlier-detection defaults (consecutive_5xx 5, base_ejection_time 30 s,
   * max_ejection_time 300 s; Finagle's failure accrual also trips at 5 consecutive failures).
   * The cap is 50% rather than Envoy's 10% so small pools can still eject one bad endpoint,
   * and mirrors Envoy's 50% panic threshold: half the pool always stays in rotation.
   */
  outlierDetection: { consecutiveFailures: 5, ejectionTimeMs: 30_000, maxEjectionTimeMs: 300_000, maxEjectedPercent: 50 },
  circuitBreaker: { errorThresholdPercent: 50, volumeThreshold: 20, resetTimeoutMs: 10_000, windowMs: 10_000 },
} as const;

function normalizeCircuitBreaker(raw: RawCircuitBreaker | undefined): CircuitBreakerSpec | undefined {
  if (raw === undefined) return undefined;
  const d = SERVICE_DEFAULTS.circuitBreaker;
  return {
    errorThresholdPercent: raw.errorThresholdPercent ?? d.errorThresholdPercent,
    volumeThreshold: raw.volumeThreshold ?? d.volumeThreshold,
    resetTimeoutMs: raw.resetTimeout ?? d.resetTimeoutMs,
    windowMs: raw.window ?? d.windowMs,
  };
}

function normalizeOutlierDetection(raw: RawOutlierDetection | undefined): OutlierDetectionSpec | undefined {
  if (raw === false) return undefined;
  const d = SERVICE_DEFAULTS.outlierDetection;
  if (raw === undefined || raw === true) return { ...d };
  const ejectionTimeMs = raw.ejectionTime ?? d.ejectionTimeMs;
  return {
    consecutiveFailures: raw.consecutiveFailures ?? d.consecutiveFailures,
    ejectionTimeMs,
    maxEjectionTimeMs: raw.maxEjectionTime ?? Math.max(d.maxEjectionTimeMs, ejectionTimeMs),
    maxEjectedPercent: raw.maxEjectedPercent ?? d.maxEjectedPercent,
  };
}

function normalizeConnection(raw: RawConnection | undefined): ServiceSpec['connection'] {
  const d = SERVICE_DEFAULTS.connection;
  return {
    maxConnections: raw?.maxConnections ?? d.maxConnections,
    connectTimeoutMs: raw?.connectTimeout ?? d.connectTimeoutMs,
    keepAliveTimeoutMs: raw?.keepAliveTimeout ?? d.keepAliveTimeoutMs,
  };
}

function authRule(raw: RawAuthRule): AuthorizationRuleSpec {
  const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : [...new Set(typeof v === 'string' ? [v] : v)]);
  return { from: list(raw.from), methods: list(raw.methods), paths: list(raw.paths) };
}

function normalizeInbound(raw: RawInbound | undefined): InboundSpec | undefined {
  if (raw === undefined) return undefined;
  const authz = raw.authorization;
  return {
    authorization: authz === undefined ? undefined : { allow: (authz.allow ?? []).map(authRule), deny: (authz.deny ?? []).map(authRule) },
    rateLimit: normalizeRateLimit(raw.rateLimit),
    fault: normalizeFault(raw.fault),
    // Only when written: a spec without the block is exactly what it was before the block existed.
    ...(raw.overload !== undefined ? { overload: normalizeOverload(raw.overload) } : {}),
  };
}

export function normalizeMesh(doc: { name: string; spec: RawMeshSpec } | undefined): MeshSpec {
  const spec = doc?.spec ?? {};
  return {
    name: doc?.name ?? MESH_DEFAULTS.name,
    trustDomain: spec.trustDomain ?? MESH_DEFAULTS.trustDomain,
    mtls: spec.mtls,
    certificateTTLMs: spec.certificateTTL ?? MESH_DEFAULTS.certificateTTLMs,
    tracing:
      spec.tracing === undefined
        ? undefined
        : {
            sampling: spec.tracing.sampling ?? MESH_DEFAULTS.tracingSampling,
            propagation: [...new Set(spec.tracing.propagation ?? MESH_DEFAULTS.tracingPropagation)],
            otlp: spec.tracing.otlp && { endpoint: spec.tracing.otlp.endpoint, headers: spec.tracing.otlp.headers && { ...spec.tracing.otlp.headers } },
          },
    dns: {
      servers: spec.dns?.servers === undefined ? undefined : [...spec.dns.servers],
      refreshIntervalMs: spec.dns?.refreshInterval ?? MESH_DEFAULTS.dnsRefreshIntervalMs,
      minTtlMs: spec.dns?.minTtl ?? MESH_DEFAULTS.dnsMinTtlMs,
    },
    redis: spec.redis === undefined ? undefined : { url: spec.redis.url },
  };
}

export function normalizeService(name: string, spec: RawServiceSpec): ServiceSpec {
  const protocol = spec.protocol ?? SERVICE_DEFAULTS.protocol;
  const explicitDefaults = explicitRetryDefaults(protocol);
  const retries = spec.retries === undefined ? implicitRetries() : mergeRetries(explicitDefaults, spec.retries);
  return {
    name,
    protocol,
    endpoints: spec.endpoints?.map((e) => ({ host: e.host, port: e.port, labels: { ...e.labels } })),
    dns: spec.dns === undefined ? undefined : { ...spec.dns, labels: { ...spec.dns.labels } },
    mtls: spec.mtls,
    loadBalancer: spec.loadBalancer ?? SERVICE_DEFAULTS.loadBalancer,
    timeoutMs: spec.timeout ?? (protocol === 'tcp' ? 0 : SERVICE_DEFAULTS.timeoutMs),
    retries,
    circuitBreaker: normalizeCircuitBreaker(spec.circuitBreaker),
    outlierDetection: normalizeOutlierDetection(spec.outlierDetection),
    rateLimit: normalizeRateLimit(spec.rateLimit),
    routes: (spec.routes ?? []).map((r) => normalizeRoute(r, { serviceRetries: retries, explicitDefaults })),
    inbound: normalizeInbound(spec.inbound),
    ...(spec.adaptiveConcurrency !== undefined ? { adaptiveConcurrency: normalizeAdaptiveConcurrency(spec.adaptiveConcurrency) } : {}),
    connection: normalizeConnection(spec.connection),
  };
}
