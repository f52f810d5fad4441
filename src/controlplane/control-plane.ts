/**
 * One control-plane replica: store, CA, API server, instance stream, metrics, wired together.
 * It holds no logic of its own: each part is its own file.
 *
 * One port serves everything (`http2.createSecureServer` with `allowHTTP1`): the REST API over
 * HTTP/1.1 or HTTP/2, the instance stream over HTTP/2. The server asks for a client certificate
 * but does not refuse a connection without one (`rejectUnauthorized: false`): the CLI and
 * bootstrapping instances have none. This is the setting docs/security.md warns can fail open
 * "once someone forgets the check", so the check is not left to handlers: the router decides
 * every caller's identity once (`caller.ts`: only `socket.authorized` certificates that are
 * SVIDs of this trust domain count) and enforces each route's declared rule.
 */
import { resolveConfigLimits, type ConfigLimits } from '../config/config-limits.js';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { systemClock, type Clock } from '../core/clock.js';
import { authorityWarnings } from '../tls/authority.js';
import { isTrustDomain } from '../tls/spiffe.js';
import { ApiError } from './api-error.js';
import { ensureAuthority, type ControlPlaneAuthority } from './authority-state.js';
import { identifyCaller } from './caller.js';
import { ClientLimiter, type ClientLimitParams } from './client-limiter.js';
import { registerIdentityApi } from './identity-api.js';
import { parseListen } from './listen-address.js';
import { controlPlaneMetrics, TimedStore } from './metrics.js';
import { registerRegistryApi } from './registry-api.js';
import { registerResourcesApi } from './resources-api.js';
import { Router, type ApiHandler, type HttpMethod, type RouteOptions } from './router.js';
import { issueServingCertificate, type ServingCertificate } from './serving-certificate.js';
import { openStore } from './store/open-store.js';
import type { Store } from './store/store.js';
import { createSync, type StreamAdmissionParams, type Sync } from './sync/index.js';
import { startTokenSweeper } from './token-sweeper.js';
import { createFleet, type Fleet } from './fleet/index.js';
import { startDashboard, type Dashboard } from './dashboard/index.js';
import { adminTokenMatches } from './admin-token.js';
import { closeHttp2Session, refusedByGoaway } from '../server/http2-graceful-close.js';

export interface ControlPlaneOptions {
  /** The data directory (created 0700): the embedded store, `ca/` and `admin-token`. */
  readonly dataDir: string;
  /** `HOST:PORT` to listen on (default `127.0.0.1:7400`; port 0 picks a free one). */
  readonly listen?: string;
  /** etcd member URLs: state lives there, shared by every replica. */
  readonly etcd?: readonly string[];
  /** Trust domain of the CA made on first start (default `cluster.local`); ignored once a CA exists. */
  readonly trustDomain?: string;
  /**
   * Encrypts the CA's issuer key and the token key in the store (every replica must be given the
   * same one); without it they are stored in the clear, protected only by the store's access.
   * At least 8 characters.
   */
  readonly keyPassphrase?: string;
  /** This replica's id in status and registry records (default: random). */
  readonly replicaId?: string;
  /** API rate limit per client: per instance certificate, else per address (default 100/s, burst 200). */
  readonly rateLimit?: ClientLimitParams;
  /**
   * New instance streams this replica admits per second, whoever opens them (default 100/s,
   * burst 200): past it a stream is answered 503 `TRELLIS_OVERLOADED` with a Retry-After the
   * instances honour, so a reconnect storm is taken at this rate (docs/control-plane.md).
   */
  readonly streamAdmission?: StreamAdmissionParams;
  /** Serve the read-only dashboard on `HOST:PORT` (the CLI's default is `127.0.0.1:7401`; off when absent). */
  readonly dashboard?: string | undefined;
  /** Read golden metrics from this Prometheus (which scrapes the instances) instead of aggregating reports. */
  readonly prometheus?: string | undefined;
  /**
   * Loader limits for applies (documents, YAML nodes, bytes per request), as meshClient's
   * `configLimits`: an apply is validated together with every stored document, so a mesh of more
   * than `maxDocuments` resources needs it raised here and on its instances (docs/configuration.md).
   */
  readonly configLimits?: ConfigLimits | undefined;
  readonly clock?: Clock;
  /** Warnings (default: stderr). */
  readonly onWarn?: (message: string) => void;
}

/** A running control-plane replica. */
export interface ControlPlane {
  /** `https://host:port` as bound. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly trustDomain: string;
  /** The CA pin (`sha256:<hex>`) every token carries. */
  readonly caPin: string;
  /** True when this start made the CA and the admin token. */
  readonly created: boolean;
  /** Where the admin token is, when this replica's data directory holds it. */
  readonly adminTokenPath: string | undefined;
  readonly replicaId: string;
  /** The Prometheus registry served at `/metrics`. */
  readonly registry: Registry;
  /** The fleet view: golden metrics from reports (or Prometheus), served at `GET /v1/stat`. */
  readonly fleet: Fleet;
  /** `http://host:port/` of the dashboard, when one was asked for. */
  readonly dashboardUrl: string | undefined;
  /** The store this replica reads and writes (for parts added at `route()`, and tests). */
  readonly store: Store;
  /** Adds an API route (for the fleet view, the dashboard): it gets the same rate limits, auth rules and error shape. */
  route(method: HttpMethod, path: string, handler: ApiHandler, options: RouteOptions): void;
  /** Stops accepting, ends instance streams, closes the store. */
  close(): Promise<void>;
}

const DEFAULT_LISTEN = '127.0.0.1:7400';
const DEFAULT_TRUST_DOMAIN = 'cluster.local';
const DEFAULT_RATE: ClientLimitParams = { requestsPerSecond: 100, burst: 200 };
/** Headers larger than this are refused by the HTTP/2 layer (HTTP/1.1 keeps Node's 16 KiB). */
const MAX_HEADER_BYTES = 16 * 1024;
/** How often the serving certificate's age is looked at (it is reissued at two thirds of its life). */
const RENEW_CHECK_MS = 60_000;
const IDLE_TIMEOUT_MS = 120_000;
/** How long close() lets requests in flight finish before cutting connections. */
const CLOSE_GRACE_MS = 2_000;

/**
 * Starts a control-plane replica.
 *
 * @example
 * const cp = await startControlPlane({ dataDir: './cp-data', listen: '127.0.0.1:0' });
 * console.log(cp.url, cp.adminTokenPath);
 * await cp.close();
 */
export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const clock = options.clock ?? systemClock;
  const onWarn = options.onWarn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  const listen = parseListen(options.listen ?? DEFAULT_LISTEN);
  const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  if (!isTrustDomain(trustDomain)) throw new TypeError(`trust domain "${trustDomain.slice(0, 64)}" is not valid (lowercase letters, digits, ".", "-", "_")`);
  if (options.keyPassphrase !== undefined && options.keyPassphrase.length < 8) throw new TypeError('the key passphrase must be at least 8 characters');
  const configLimits = resolveConfigLimits(options.configLimits, 'control-plane options', 'configLimits');
  const replicaId = options.replicaId ?? `cp-${randomBytes(4).toString('hex')}`;
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });

  const metrics = controlPlaneMetrics();
  const rawStore = await openStore({ dataDir: options.dataDir, ...(options.etcd !== undefined ? { etcd: [...options.etcd] } : {}) });
  const store: Store = new TimedStore(rawStore, metrics.storeDuration, () => clock.now());
  let authority: ControlPlaneAuthority;
  try {
    authority = await ensureAuthority(store, options.dataDir, trustDomain, clock, onWarn, { keyPassphrase: options.keyPassphrase });
  } catch (err) {
    await rawStore.close();
    throw err;
  }
  const ca = authority.ca;
  for (const w of authorityWarnings(ca, clock)) onWarn(`${w}: rotate the issuer before then, or the control plane issues no certificates`);
  let serving: ServingCertificate = await issueServingCertificate(ca, listen.host, clock);

  const fleet: Fleet = createFleet({ store, clock, ...(options.prometheus !== undefined ? { prometheusUrl: options.prometheus } : {}) });
  const sync: Sync = createSync({
    store,
    replicaId,
    registry: metrics.registry,
    onWarn,
    onReport: (instance, report) => void fleet.ingest(instance, report),
    clock,
    ...(options.streamAdmission !== undefined ? { streamAdmission: options.streamAdmission } : {}),
  });
  const router = new Router({
    identify: (req, socket) => identifyCaller(req.headers, socket, { trustDomain: ca.trustDomain, adminHash: authority.adminHash, pin: authority.pin }),
    limiter: new ClientLimiter(options.rateLimit ?? DEFAULT_RATE, clock),
    metrics,
    clock,
    onWarn,
  });
  registerIdentityApi(router, { store, authority, clock });
  registerResourcesApi(router, { store, trustDomain: ca.trustDomain, metrics, limits: configLimits });
  registerRegistryApi(router, { store, sync, authority, replicaId, clock, servingNotAfter: () => serving.notAfter });
  router.route(
    'POST',
    '/v1/stream',
    async (req) => {
      if (req.stream === undefined) throw new ApiError(505, 'TRELLIS_INVALID_ARGUMENT', 'the instance stream needs HTTP/2');
      const caller = req.caller;
      if (caller.kind !== 'instance') throw new TypeError('unreachable: the route requires an instance');
      sync.handleStream(req.stream, req.headers, { service: caller.service, spiffeId: caller.spiffeId, certificateNotAfter: caller.certificateNotAfter });
      return 'handled';
    },
    { auth: 'instance', query: [] },
  );
  router.route('GET', '/v1/stat', async (req) => ({ body: await fleet.stat(req.query) }), { auth: 'admin', query: ['window', 'service', 'series'] });
  router.route('GET', '/metrics', async () => ({ text: await metrics.registry.metrics(), contentType: metrics.registry.contentType }), { auth: 'none', query: [] });

  const server: Http2SecureServer = createSecureServer({
    allowHTTP1: true,
    requestCert: true,
    rejectUnauthorized: false,
    ca: ca.bundlePem,
    key: serving.keyPem,
    cert: serving.chainPem,
    minVersion: 'TLSv1.2',
    settings: { maxHeaderListSize: MAX_HEADER_BYTES },
    maxSessionMemory: 10,
  });
  server.on('request', (req, res) => {
    // HTTP/2 only: a stream nghttp2 refuses after a graceful GOAWAY (the client retries it).
    if ('stream' in req && refusedByGoaway(req.stream)) return;
    router.handle(req, res);
  });
  // Idle connections (HTTP/1.1 keep-alive, HTTP/2 sessions without frames) are closed; instance
  // streams ping every 5 s and are never idle this long.
  server.setTimeout(IDLE_TIMEOUT_MS);
  const sessions = new Set<ServerHttp2Session>();
  const sockets = new Set<TLSSocket>();
  server.on('session', (s: ServerHttp2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  server.on('secureConnection', (s: TLSSocket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('sessionError', () => {});
  server.on('tlsClientError', () => {});
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    // Nothing is listening: release what was opened, so a caller can retry on another port.
    await sync.close();
    await rawStore.close();
    throw err;
  }
  const bound = server.address() as AddressInfo;
  let dashboard: Dashboard | undefined;
  if (options.dashboard !== undefined) {
    const d = parseListen(options.dashboard);
    try {
      dashboard = await startDashboard({ host: d.host, port: d.port, fleet, store, clock, checkAdminToken: (token) => adminTokenMatches(token, authority.pin, authority.adminHash) === undefined });
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await sync.close();
      await rawStore.close();
      throw err;
    }
  }
  const urlHost = bound.family === 'IPv6' || bound.address.includes(':') ? `[${bound.address}]` : bound.address;

  // Reissue the serving certificate at two thirds of its life; new connections get the new one.
  const renew = setInterval(() => {
    const now = clock.wall();
    if (now < serving.notBefore + ((serving.notAfter - serving.notBefore) * 2) / 3) return;
    issueServingCertificate(ca, listen.host, clock).then(
      (next) => {
        serving = next;
        server.setSecureContext({ ca: ca.bundlePem, key: next.keyPem, cert: next.chainPem, minVersion: 'TLSv1.2' });
      },
      (err: unknown) => onWarn(`renewing the control plane's serving certificate failed: ${err instanceof Error ? err.message : String(err)}`),
    );
  }, RENEW_CHECK_MS);
  renew.unref();
  const tokenSweeper = startTokenSweeper(store, clock, onWarn);

  let closing: Promise<void> | undefined;
  return {
    url: `https://${urlHost}:${bound.port}`,
    host: bound.address,
    port: bound.port,
    trustDomain: ca.trustDomain,
    caPin: authority.pin,
    created: authority.created,
    adminTokenPath: authority.adminTokenPath,
    replicaId,
    registry: metrics.registry,
    fleet,
    dashboardUrl: dashboard?.url,
    store,
    route: (method, path, handler, routeOptions) => router.route(method, path, handler, routeOptions),
    close() {
      closing ??= (async () => {
        clearInterval(renew);
        await tokenSweeper.close();
        await dashboard?.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await sync.close();
        // Idle HTTP/2 sessions and keep-alive sockets would hold close() open: end them,
        // giving requests in flight a moment to finish.
        for (const s of sessions) closeHttp2Session(s);
        const grace = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_GRACE_MS).unref());
        await Promise.race([closed, grace]);
        for (const s of sockets) s.destroy();
        await closed;
        await rawStore.close();
      })();
      return closing;
    },
  };
}
