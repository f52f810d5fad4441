/**
 * The control-plane client inside an instance: trust on first contact, certificate, stream,
 * snapshots and registry, wired for `meshClient({ service, controlPlane, token })`.
 *
 * Start (docs/reliability.md rows A3, A7): the cache directory is read first. The trust bundle
 * comes from the token's CA pin (fetched from any replica) or, with no token, from the cache;
 * the certificate from the cache when still valid, else from the control plane with the token.
 * Then the first snapshot is awaited: with a cached snapshot at most a few seconds (or until
 * every replica failed once), after which the instance starts from the cache and keeps trying;
 * with none, up to `startTimeoutMs`, after which start fails with an error naming the replicas.
 *
 * Running: each snapshot is validated as a whole configuration and swapped in through
 * `applyConfig` (pools, breakers, EWMA and budgets survive), then persisted; one that fails
 * validation is NACKed with the error and the configuration in force stays. Losing every
 * replica changes nothing in force: the instance keeps routing and serving and evicts nothing.
 */
import { DocumentCache } from '../config/document-cache.js';
import type { ConfigLimits } from '../config/config-limits.js';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { AnyRegistry } from '../observability/metrics.js';
import type { Clock, Random } from '../core/clock.js';
import { ConfigInvalidError, ConnectFailedError, TrellisError } from '../core/errors.js';
import type { MeshConfig } from '../config/types.js';
import type { SnapshotMessage } from '../controlplane/sync/protocol.js';
import { issuedIdentity } from '../tls/issued-identity.js';
import { refusedAddressReason } from '../config/address.js';
import type { IdentityProvider } from '../tls/identity.js';
import { materialFromPem, type TlsMaterial } from '../tls/material.js';
import { ClientCache, defaultCacheDir, type CachedTrust } from './cache-dir.js';
import { controlPlaneSigner } from './certificates.js';
import { controlPlaneGauges, type ControlPlaneGauges } from './client-metrics.js';
import { ControlPlaneStream, type ControlPlaneStateEvent, type RegisteredAddress } from './control-plane-stream.js';
import { fetchTrustBundle, pinOfToken } from './pin.js';
import { snapshotConfig } from './snapshot-config.js';

export type { ControlPlaneStateEvent, ControlPlaneState, RegisteredAddress } from './control-plane-stream.js';
export { defaultCacheDir } from './cache-dir.js';
export { CONTROL_PLANE_METRIC_NAMES } from './client-metrics.js';

export interface ControlPlaneClientOptions {
  readonly service: string;
  /** Loader limits for snapshots (meshClient's `configLimits`). */
  readonly configLimits?: ConfigLimits | undefined;
  readonly urls: readonly string[];
  readonly token?: string | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
  /** Where the trust bundle, certificate and last snapshot are kept (default `defaultCacheDir(service)`). */
  readonly cacheDir?: string | undefined;
  readonly clock: Clock;
  readonly random: Random;
  readonly onWarn: (message: string) => void;
  /** Golden-metrics report sent every 5 s on the stream when it returns something. */
  readonly reportSource?: (() => unknown) | undefined;
  /** How long start waits for the control plane when nothing is cached (default 30 s). */
  readonly startTimeoutMs?: number | undefined;
  /** How long start waits for a fresh snapshot when one is cached (default 5 s). */
  readonly cachedStartTimeoutMs?: number | undefined;
}

/** What the client drives once the mesh exists (structural, so this file does not import Mesh). */
export interface ControlPlaneTarget {
  applyConfig(config: MeshConfig): void;
  emit(event: 'control-plane', e: ControlPlaneStateEvent): boolean;
  emit(event: 'config-error', e: TrellisError): boolean;
  readonly metricsRegistry: AnyRegistry;
}

export interface ControlPlaneClient {
  readonly identity: IdentityProvider;
  /** The configuration to start with: the first snapshot, or the cached one. */
  readonly initial: MeshConfig;
  readonly trustDomain: string;
  /** The snapshot version in force. */
  readonly version: string | null;
  readonly instanceId: string;
  attach(target: ControlPlaneTarget): void;
  /** This instance serves `endpoint` now (registered at once, and on every reconnection). */
  served(endpoint: RegisteredAddress): void;
  unserved(address: string): void;
  /** Leaves the registry (before draining); resolves once the replica wrote it, or after 2 s. */
  deregister(): Promise<void>;
  close(): void;
  /** Resolves when the cache writes under way have ended (after `close()`, none starts). */
  flushed(): Promise<void>;
}

const AGENT = 'trellis/0.1.0';

function missingToken(dir: string, what: string): ConfigInvalidError {
  return new ConfigInvalidError([{ file: 'meshClient options', document: 0, path: 'meshClient.token', message: `missing: ${what} in the cache directory ${dir}, so this first start needs a bootstrap token (\`trellis token create --service NAME\`)` }]);
}

function instanceId(random: Random): string {
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 60) || 'host';
  const salt = Math.floor(random() * 0xffffff).toString(16).padStart(6, '0');
  return `${host}-${process.pid}-${salt}${randomBytes(2).toString('hex')}`;
}

async function firstAnswer<T>(urls: readonly string[], f: (url: string) => Promise<T>): Promise<T> {
  const errors: string[] = [];
  for (const url of urls) {
    try {
      return await f(url);
    } catch (err) {
      errors.push(`${url}: ${(err as Error).message}`);
    }
  }
  throw new ConnectFailedError(`no control plane answered: ${errors.join('; ')}`);
}

function within<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(onTimeout()), ms);
    t.unref();
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}

/**
 * Bootstraps and connects; resolves once there is a certificate and a configuration to start with.
 *
 * @example
 * const cp = await startControlPlaneClient({ service: 'checkout', urls: ['https://127.0.0.1:7400'],
 *   token, clock: systemClock, random: Math.random, onWarn: console.warn });
 * @throws ConfigInvalidError when no token is given and the cache cannot stand in for one;
 *   ConnectFailedError when no replica answered in time and nothing is cached.
 */
export async function startControlPlaneClient(o: ControlPlaneClientOptions): Promise<ControlPlaneClient> {
  const cache = new ClientCache(o.cacheDir ?? defaultCacheDir(o.service), o.onWarn);
  // The last good snapshot's documents: the next one validates only those that changed.
  const documents = new DocumentCache();
  const cached = await cache.load();
  const startTimeoutMs = o.startTimeoutMs ?? 30_000;

  let trust: CachedTrust;
  if (o.token !== undefined) {
    const pin = pinOfToken(o.token);
    if (cached.trust?.pins.includes(pin) === true) trust = cached.trust;
    else {
      trust = await firstAnswer(o.urls, (url) => fetchTrustBundle(url, pin));
      await cache.saveTrust(trust);
    }
  } else if (cached.trust !== undefined) trust = cached.trust;
  else throw missingToken(cache.dir, 'no trust bundle is kept');

  let initialMaterial: TlsMaterial | undefined;
  if (cached.identity !== undefined) {
    try {
      const m = materialFromPem(cached.identity, { trustDomain: trust.trustDomain, service: o.service });
      // Issued by the CA this token pins (a control plane re-created with a new CA makes the cached certificate useless).
      materialFromPem({ ...cached.identity, ca: trust.bundlePem }, { trustDomain: trust.trustDomain, service: o.service });
      if (o.clock.wall() < m.notAfter) initialMaterial = m;
    } catch (err) {
      o.onWarn(`the certificate kept in ${cache.dir} is unusable, ignoring it: ${(err as Error).message}`);
    }
  }
  if (initialMaterial === undefined && o.token === undefined) throw missingToken(cache.dir, 'no valid certificate is kept');

  let identity: IdentityProvider | undefined;
  const sign = controlPlaneSigner({ urls: o.urls, service: o.service, trust: () => trust, token: o.token, current: () => identity?.current() });
  const id = issuedIdentity({ service: o.service, trustDomain: trust.trustDomain, sign, initial: initialMaterial }, { clock: o.clock, onWarn: o.onWarn, random: o.random });
  identity = id;
  const persist = (m: TlsMaterial): void => void cache.saveIdentity(m).catch((err: unknown) => o.onWarn(`cannot keep the certificate in ${cache.dir}: ${(err as Error).message}`));
  id.on('rotated', persist);
  try {
    const first = await within(id.ready(), startTimeoutMs, () => new ConnectFailedError(`no certificate from the control plane (${o.urls.join(', ')}) within ${startTimeoutMs} ms`));
    if (first !== initialMaterial) await cache.saveIdentity(first).catch((err: unknown) => o.onWarn(`cannot keep the certificate in ${cache.dir}: ${(err as Error).message}`));
  } catch (err) {
    id.close();
    throw err;
  }

  let target: ControlPlaneTarget | undefined;
  let gauges: ControlPlaneGauges | undefined;
  let version: string | null = null;
  let firstConfig: MeshConfig | undefined;
  let lastNack: string | undefined;
  let lastState: ControlPlaneStateEvent | undefined;
  let failures = 0;
  let wake: () => void = () => {};

  let appliedContent: string | undefined;
  const onSnapshot = async (snap: SnapshotMessage): Promise<string | undefined> => {
    // The same content under another version (another replica computed it at its revision, after
    // a failover): nothing to swap, only the version to take.
    const content = JSON.stringify([snap.mesh, snap.services, snap.endpoints]);
    if (content === appliedContent) {
      version = snap.version;
      gauges?.setVersion(version);
      return undefined;
    }
    let config: MeshConfig;
    try {
      config = snapshotConfig(snap, o.onWarn, trust.trustDomain, o.configLimits, documents);
    } catch (err) {
      const reason = (err as Error).message;
      lastNack = reason;
      o.onWarn(`control-plane snapshot ${snap.version} refused, keeping ${version === null ? 'the configuration in force' : `version ${version}`}: ${reason}`);
      if (err instanceof TrellisError) target?.emit('config-error', err);
      wake();
      return reason;
    }
    if (target === undefined) firstConfig = config;
    else target.applyConfig(config);
    appliedContent = content;
    version = snap.version;
    gauges?.setVersion(version);
    cache.saveSnapshot(snap).catch((err: unknown) => o.onWarn(`cannot keep snapshot ${snap.version} in ${cache.dir}: ${(err as Error).message}`));
    wake();
    return undefined;
  };

  const instance = instanceId(o.random);
  const stream = new ControlPlaneStream({
    urls: o.urls,
    service: o.service,
    instance,
    labels: o.labels ?? {},
    agent: AGENT,
    trust: () => trust,
    material: () => id.current(),
    onSnapshot,
    have: () => version,
    onState: (e) => {
      lastState = e;
      if (e.state === 'disconnected') {
        failures++;
        if (target === undefined) o.onWarn(`control plane ${e.url}: ${e.reason ?? 'disconnected'}`);
      }
      gauges?.setConnected(e.state === 'connected');
      target?.emit('control-plane', e);
      wake();
    },
    onWarn: o.onWarn,
    reportSource: o.reportSource,
    random: o.random,
  });
  stream.start();

  // The first snapshot, or the cached one after a bounded wait.
  let cachedConfig: MeshConfig | undefined;
  if (cached.snapshot !== undefined) {
    try {
      cachedConfig = snapshotConfig(cached.snapshot, o.onWarn, trust.trustDomain, o.configLimits);
    } catch (err) {
      o.onWarn(`the snapshot kept in ${cache.dir} is not valid configuration, ignoring it: ${(err as Error).message}`);
    }
  }
  const deadline = o.clock.now() + (cachedConfig !== undefined ? (o.cachedStartTimeoutMs ?? 5000) : startTimeoutMs);
  while (firstConfig === undefined) {
    if (cachedConfig !== undefined && failures >= o.urls.length) break;
    const left = deadline - o.clock.now();
    if (left <= 0) break;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.min(left, 1000));
      t.unref();
      wake = () => (clearTimeout(t), resolve());
    });
  }
  wake = () => {};
  let initial: MeshConfig;
  if (firstConfig !== undefined) initial = firstConfig;
  else if (cachedConfig !== undefined && cached.snapshot !== undefined) {
    initial = cachedConfig;
    version = cached.snapshot.version;
    stream.holding(cached.snapshot);
    appliedContent = JSON.stringify([cached.snapshot.mesh, cached.snapshot.services, cached.snapshot.endpoints]);
    o.onWarn(`no control plane answered (${lastState?.reason ?? 'no answer'}); starting from the snapshot kept in ${cache.dir} (version ${version}) and retrying`);
  } else {
    stream.close();
    id.close();
    const why = lastNack !== undefined ? `its snapshot was refused: ${lastNack}` : (lastState?.reason ?? 'no answer');
    throw new ConnectFailedError(`no configuration from the control plane (${o.urls.join(', ')}) within ${startTimeoutMs} ms and none kept in ${cache.dir}: ${why}`);
  }

  const served = new Map<string, RegisteredAddress>();
  return {
    identity: id,
    initial,
    trustDomain: trust.trustDomain,
    get version() {
      return version;
    },
    instanceId: instance,
    attach(t) {
      target = t;
      // A snapshot that arrived between start and attach was validated but not yet applied.
      if (firstConfig !== undefined && firstConfig !== initial) t.applyConfig(firstConfig);
      gauges = controlPlaneGauges(t.metricsRegistry, o.service);
      gauges.setConnected(stream.state === 'connected');
      gauges.setVersion(version);
    },
    served(endpoint) {
      const host = endpoint.address.slice(0, endpoint.address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
      const refused = refusedAddressReason(host);
      if (refused !== undefined) {
        o.onWarn(`not registering ${endpoint.address}: the address ${refused}; serve on the address callers dial, or pass { host } to mesh.advertise()`);
        return;
      }
      served.set(endpoint.address, endpoint);
      stream.register([...served.values()]);
    },
    unserved(address) {
      if (!served.delete(address)) return;
      stream.register([...served.values()]);
    },
    deregister: () => {
      served.clear();
      return stream.deregister();
    },
    close() {
      stream.close();
    },
    flushed: () => cache.settled(),
  };
}
