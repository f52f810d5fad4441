/**
 * `meshClient(options)`: wires a mesh client from its parts — configuration (loaded, validated,
 * watched), destinations (outbound stacks), clock and randomness — and holds no logic of its
 * own. A configuration that fails to load is a TRELLIS_CONFIG_INVALID at startup; later
 * reloads that fail keep the configuration in force.
 */
import { unwatchFile, watchFile } from 'node:fs';
import path from 'node:path';
import { systemClock, systemRandom } from './core/clock.js';
import type { Clock, Random } from './core/clock.js';
import { ConfigInvalidError, NoIdentityError, TrellisError } from './core/errors.js';
import { loadConfigCached } from './config/load.js';
import { DocumentCache } from './config/document-cache.js';
import type { ConfigSource } from './config/load.js';
import type { ConfigLimits } from './config/config-limits.js';
import type { MeshConfig, MeshSpec, MtlsMode, ServiceSpec } from './config/types.js';
import type { IdentityProvider } from './tls/identity.js';
import { fileIdentity } from './tls/file-identity.js';
import { MtlsConnectors } from './client/mtls-connector.js';
import type { Connect } from './client/mtls-connector.js';
import { peerResolver } from './server/peer.js';
import { Destinations } from './client/destinations.js';
import { Mesh } from './mesh.js';
import { InboundPolicies } from './server/inbound-policy.js';
import { MeshMetrics } from './observability/metrics.js';
import type { AnyRegistry, OverloadReading } from './observability/metrics.js';
import { MeshObservability } from './observability/mesh-observability.js';
import type { TracingHooks } from './observability/mesh-observability.js';
import { createMeshTracer } from './observability/tracer.js';
import { inboundTracing } from './observability/tracing-inbound.js';
import { httpTracingModule } from './observability/tracing-http.js';
import { accessLogger, httpAccessLogModule, inboundAccessLog } from './observability/access-log.js';
import type { AccessLog } from './observability/access-log.js';
import type { TracerProvider } from '@opentelemetry/api';
import type { Writable } from 'node:stream';
import type { MeshDispatcherOptions } from './client/dispatch-origin.js';
import { checkMeshClientOptions, serviceNameWarnings } from './mesh-client-options.js';
import { startControlPlaneClient } from './controlplane-client/index.js';
import type { ControlPlaneClient } from './controlplane-client/index.js';
import { createFleetReporter } from './controlplane-client/fleet-report.js';
import type { FleetReporter } from './controlplane-client/fleet-report.js';

export interface Logger {
  warn(message: string): void;
}

export interface MeshClientOptions {
  /** This workload's service name (its identity, once mTLS lands). */
  service?: string;
  /** Static configuration: a file path (or several), YAML text, or parsed documents. */
  config?: ConfigSource;
  /** Reload the config file when it changes (default: true when `config` is a path). */
  watchConfig?: boolean;
  /** This instance's labels (subsets select on them once it registers). */
  labels?: Record<string, string>;
  /**
   * Control-plane replicas (`https://host:port`), any of which may answer: configuration,
   * endpoints and the workload certificate then come from the control plane (docs/api.md).
   */
  controlPlane?: string[];
  /** Bootstrap token for the control plane (`trellis token create`); needed on a first start with nothing cached. */
  token?: string;
  /**
   * Where the control-plane client keeps its trust bundle, certificate and key, and last good
   * snapshot (default `${XDG_CACHE_HOME:-~/.cache}/trellis/<service>`).
   */
  cacheDir?: string;
  /** Workload identity from files (PEM: trust bundle, certificate chain, key), reloaded when they change. */
  tls?: { ca: string; cert: string; key: string };
  /** Workload identity from a provider (e.g. `issuedIdentity` with a signer); takes precedence over `tls`. */
  identity?: IdentityProvider;
  /** Send spans to this provider instead of the global one (or one the Mesh document's `tracing.otlp` builds). */
  tracerProvider?: TracerProvider;
  /** A JSON access log line per request, inbound and outbound: true (stdout), a stream, or a function. */
  accessLog?: boolean | Writable | AccessLog;
  /** Metrics: pass the application's prom-client registry to have Trellis's metrics there. */
  metrics?: { registry?: AnyRegistry };
  /** Where warnings go (default: stderr with a `[trellis]` prefix). */
  logger?: Logger;
  /** Injected time and randomness (tests, simulations). */
  clock?: Clock;
  random?: Random;
  /** How `mesh.dispatcher` treats origins that are not mesh services (docs/api.md). */
  dispatcher?: MeshDispatcherOptions;
  /**
   * Loader limits for every load of this mesh's configuration (the first, reloads, control-plane
   * snapshots): `{ maxDocuments, maxYamlNodes, maxTextBytes }`, each defaulting to 10,000
   * documents, 100,000 YAML nodes and 4 MiB per file (docs/configuration.md, "Limits and validation").
   */
  configLimits?: ConfigLimits;
}

const defaultLogger: Logger = { warn: (m) => process.stderr.write(`[trellis] warning: ${m}\n`) };

/** A connect function that refuses: mTLS was asked for and there is no identity. */
function noIdentityConnect(service: string): Connect {
  return (_opts, callback) => callback(new NoIdentityError(`mTLS to ${service} needs a workload identity, and this instance has none`, { service }), null);
}

function configPaths(source: ConfigSource | undefined): string[] {
  if (typeof source === 'string' && !source.includes('\n') && !source.trimStart().startsWith('apiVersion')) return [source];
  if (Array.isArray(source) && source.every((s) => typeof s === 'string')) return source as string[];
  return [];
}

/** Creates a mesh client. */
export async function meshClient(options: MeshClientOptions = {}): Promise<Mesh> {
  // Every mistake in the options themselves, as one error, before anything starts.
  checkMeshClientOptions(options, configPaths(options.config), process.cwd());
  const clock = options.clock ?? systemClock;
  const random = options.random ?? systemRandom;
  const logger = options.logger ?? defaultLogger;
  const source = options.config;
  // The last good load's documents: a reload validates only the documents that changed.
  const documents = new DocumentCache();
  const load = (s: unknown): Promise<MeshConfig> => loadConfigCached((s ?? []) as ConfigSource, { limits: options.configLimits }, documents);
  // Golden metrics go to the control plane on its stream (issue 10): the reporter reads the
  // mesh's own metrics registry, so it exists only once the mesh does; until then nothing is sent.
  let reporter: FleetReporter | undefined;
  const cp: ControlPlaneClient | undefined =
    options.controlPlane === undefined || options.service === undefined
      ? undefined
      : await startControlPlaneClient({ service: options.service, configLimits: options.configLimits, urls: options.controlPlane, token: options.token, labels: options.labels, cacheDir: options.cacheDir, clock, random, onWarn: (m) => logger.warn(m), reportSource: () => reporter?.() });
  try {
    const mesh = await wire(options, { clock, random, logger, source, load, cp });
    if (cp !== undefined && options.service !== undefined) reporter = createFleetReporter({ registry: mesh.metricsRegistry, service: options.service, inspect: () => mesh.inspect(), clock });
    return mesh;
  } catch (err) {
    cp?.close();
    cp?.identity.close();
    throw err;
  }
}

interface WireParts {
  clock: Clock;
  random: Random;
  logger: Logger;
  source: ConfigSource | undefined;
  load: (s: unknown) => Promise<MeshConfig>;
  cp: ControlPlaneClient | undefined;
}

async function wire(options: MeshClientOptions, { clock, random, logger, source, load, cp }: WireParts): Promise<Mesh> {
  const initial = cp?.initial ?? (await load(source));
  const identity: IdentityProvider | undefined =
    options.identity ??
    cp?.identity ??
    (options.tls === undefined
      ? undefined
      : fileIdentity(options.tls, { clock, onWarn: (m) => logger.warn(m), expect: { trustDomain: initial.mesh.trustDomain, ...(options.service !== undefined ? { service: options.service } : {}) } }));
  if (identity !== undefined) {
    try {
      await identity.ready();
    } catch (err) {
      identity.close();
      throw err;
    }
  }
  const mtlsMode = (mesh: MeshSpec): MtlsMode => mesh.mtls ?? (identity !== undefined ? 'strict' : 'off');
  const checkIdentity = (config: MeshConfig): void => {
    if (identity !== undefined) return;
    const asked: { path: string; mode: MtlsMode }[] = [];
    if (config.mesh.mtls !== undefined && config.mesh.mtls !== 'off') asked.push({ path: 'spec.mtls', mode: config.mesh.mtls });
    for (const svc of config.services.values()) if (svc.mtls !== undefined && svc.mtls !== 'off') asked.push({ path: `Service ${svc.name}: spec.mtls`, mode: svc.mtls });
    if (asked.length > 0) {
      throw new ConfigInvalidError(asked.map((a) => ({ file: config.sources.join(', ') || '<inline>', document: 0, path: a.path, message: `"${a.mode}" needs a workload identity (meshClient's tls files, an identity provider, or a control plane); without one Trellis fails closed rather than send plaintext` })));
    }
  };
  checkIdentity(initial);
  for (const w of serviceNameWarnings(options.service, [...initial.services.keys()])) logger.warn(w);
  if (identity === undefined && initial.mesh.mtls === undefined && initial.services.size > 0) {
    logger.warn('no workload identity (tls files, identity provider or control plane): mesh traffic is plaintext (mtls off)');
  }

  let mesh: Mesh | undefined;
  const metrics = new MeshMetrics({ registry: options.metrics?.registry });
  const t = initial.mesh.tracing;
  const tracer = await createMeshTracer({
    service: options.service,
    propagation: t?.propagation,
    sampling: t?.sampling,
    otlp: t?.otlp === undefined ? undefined : { endpoint: t.otlp.endpoint, ...(t.otlp.headers !== undefined ? { headers: t.otlp.headers } : {}) },
    tracerProvider: options.tracerProvider,
    random,
    onWarn: (m) => logger.warn(m),
  });
  const inTracing = inboundTracing(tracer);
  const log: AccessLog | undefined =
    options.accessLog === undefined || options.accessLog === false
      ? undefined
      : typeof options.accessLog === 'function'
        ? options.accessLog
        : accessLogger(options.accessLog === true ? process.stdout : options.accessLog);
  const inboundLog = log === undefined ? undefined : inboundAccessLog(log, { clock, traceIdOf: inTracing.traceIdOf, callerOf: (req) => req.trellis?.peer.service });
  const hooks: TracingHooks = {
    tracer,
    attemptModule: () => httpTracingModule(tracer),
    startServerTrace: (req, res, service) => inTracing.startTrace(req, res, service),
    ...(log === undefined ? {} : {
      accessLog: {
        module: (classify) => httpAccessLogModule(log, { clock, caller: options.service, traceId: () => tracer.currentTraceId() }, classify),
        core: { log, caller: options.service },
        inbound: (req, res, service) => inboundLog?.(req, res, service),
      },
    }),
  };
  const observability = new MeshObservability(metrics, clock, hooks);
  const connectors = identity === undefined ? undefined : new MtlsConnectors(identity);
  const endpointGauge = (service: string): void => {
    const set = destinations.states().find((s) => s.name === service)?.endpoints;
    if (set === undefined) return;
    const all = set.endpoints();
    const ejected = all.filter((e) => set.isEjected(e.id)).length;
    metrics.setEndpoints(service, all.length - ejected, ejected);
  };
  const destinations: Destinations = new Destinations(clock, random, {
    onEndpoints: (service, endpoints) => {
      endpointGauge(service);
      mesh?.emit('endpoints', { service, endpoints });
    },
    onEjection: (service, endpoint, ejected) => {
      if (ejected) metrics.ejection(service);
      endpointGauge(service);
      mesh?.emit('ejection', { service, endpoint, ejected });
    },
    onBreaker: (service, state) => {
      mesh?.emit('breaker', { service, state });
    },
    onBreakerPresence: (service, state) => {
      if (state === undefined) metrics.clearBreakerState(service);
      else metrics.setBreakerState(service, state);
    },
    onWarn: (message) => {
      logger.warn(message);
      mesh?.emit('warning', message);
    },
  }, observability);
  // One function per service, as connectors.forService gives: an unchanged transport keeps the pools.
  const refusing = new Map<string, Connect>();
  const transportPolicy = (svc: ServiceSpec, meshSpec: MeshSpec): Connect | undefined => {
    const mode = svc.mtls ?? mtlsMode(meshSpec);
    if (mode === 'off') return undefined;
    // mTLS asked for and no identity: fail closed, never plaintext.
    if (connectors !== undefined) return connectors.forService(svc.name, svc.connection.connectTimeoutMs);
    let refuse = refusing.get(svc.name);
    if (refuse === undefined) refusing.set(svc.name, (refuse = noIdentityConnect(svc.name)));
    return refuse;
  };
  destinations.setTransportPolicy(transportPolicy);

  const paths = configPaths(source);
  const watch = options.watchConfig ?? paths.length > 0;
  const watched: string[] = [];
  const stopWatching = (): void => {
    for (const p of watched) unwatchFile(p);
    watched.length = 0;
  };

  const inbound = new InboundPolicies(options.service, { clock, random, onWarn: (m) => logger.warn(m) });
  // Overload gauges are read when scraped, from the guard and limits in force.
  metrics.overloadSource = () => {
    const guard = inbound.current().overload;
    const self = options.service ?? 'unknown';
    const limits: OverloadReading['limits'] = [];
    if (guard?.limit !== undefined) limits.push({ service: self, direction: 'inbound', limit: guard.limit.limit, inflight: guard.limit.inflight });
    for (const s of destinations.states()) {
      const c = s.concurrencyLimit;
      if (c !== undefined) limits.push({ service: s.name, direction: 'outbound', ...c });
    }
    const el = guard?.monitor?.state;
    return { limits, eventLoop: el === undefined ? undefined : { service: self, utilization: el.utilization, delayP99Ms: el.delayP99Ms } };
  };
  mesh = new Mesh({
    service: options.service,
    clock,
    random,
    inbound,
    inboundObservability: observability,
    metrics,
    tracer,
    destinations,
    reloadSource: source === undefined ? undefined : () => load(source).then((c) => (checkIdentity(c), c)),
    loadSource: (s) => load(s).then((c) => (checkIdentity(c), c)),
    identity,
    peers: peerResolver({ trustDomain: initial.mesh.trustDomain }),
    onWarn: (m) => {
      logger.warn(m);
      mesh?.emit('warning', m);
    },
    mtlsMode: () => mtlsMode(mesh?.config?.mesh ?? initial.mesh),
    closeIdentity: () => {
      connectors?.close();
      if (options.identity === undefined) identity?.close();
    },
    stopWatching,
    dispatcher: options.dispatcher ?? {},
    transportPolicy,
    controlPlane: cp,
  });
  mesh.applyConfig(initial);
  cp?.attach(mesh);

  if (watch) {
    const m = mesh;
    for (const p of paths) {
      const abs = path.resolve(p);
      watched.push(abs);
      watchFile(abs, { persistent: false, interval: 500 }, (cur, prev) => {
        if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size) return;
        m.reload().catch((err: unknown) => {
          const msg = err instanceof TrellisError ? err.message : String(err);
          logger.warn(`config reload refused, keeping version ${m.configVersion}: ${msg}`);
        });
      });
    }
  }
  return mesh;
}
