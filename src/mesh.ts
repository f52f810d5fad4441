/**
 * The mesh client a service holds: the public surface (`http()`, `dispatcher`, `serve()`,
 * `reload()`, `inspect()`, `close()` and events). It delegates every behaviour to the parts
 * `meshClient()` wired: destinations (outbound stacks), the config source, the server side.
 */
import { EventEmitter } from 'node:events';
import { Server as NetServer } from 'node:net';
import type { Clock, Random } from './core/clock.js';
import type { InboundPolicies } from './server/inbound-policy.js';
import type { InboundObservability } from './server/inbound-stack.js';
import type { MeshMetrics } from './observability/metrics.js';
import type { MeshTracer } from './observability/tracer.js';
import type { IdentityProvider, TlsMaterial } from './tls/identity.js';
import type { MtlsMode } from './config/types.js';
import { MeshGrpc, watchMeshEvents } from './grpc/channel.js';
import type { PeerResolver } from './server/peer.js';
import type { MeshInboundDeps } from './server/inbound-security.js';
import { expressMiddleware } from './server/express.js';
import type { ExpressMiddleware } from './server/express.js';
import { fastifyPlugin } from './server/fastify.js';
import type { TrellisFastifyPlugin } from './server/fastify.js';
import { checkServerIdentityFor } from './tls/spiffe.js';
import { metricsHandler } from './observability/metrics-handler.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TrellisError } from './core/errors.js';
import type { MeshConfig } from './config/types.js';
import type { Endpoint } from './discovery/endpoint.js';
import type { Destinations } from './client/destinations.js';
import { HttpClient } from './client/http-client.js';
import type { HttpClientOptions, MeshHttpClient } from './client/http-client.js';
import { MeshDispatcher } from './client/mesh-dispatcher.js';
import type { MeshDispatcherOptions } from './client/dispatch-origin.js';
import type { BreakerState } from './client/service-state.js';
import { serve } from './server/serve.js';
import type { MeshServer, RequestHandler, ServeOptions } from './server/serve.js';
import type { MeshInspection } from './inspect.js';
import { inspectDestinations } from './inspect.js';
import type { MeshSpec, ServiceSpec } from './config/types.js';
import type { Connect } from './client/mtls-connector.js';
import { protocolRefusal } from './client/core-dispatcher.js';
import { MeshConnections } from './mesh-connections.js';
import type { MeshAgent, MeshHttpsAgent } from './client/mesh-agent.js';
import type { WebSocketOptions } from './client/websocket.js';
import type WebSocket from 'ws';
import type { ConnectOptions, MeshSocket } from './client/tcp-connect.js';
import type { ConnectionHandler, ListenOptions, MeshTcpServer } from './server/tcp-listen.js';
import type { ControlPlaneStateEvent, RegisteredAddress } from './controlplane-client/control-plane-stream.js';
import { advertise } from './controlplane-client/advertise.js';
import type { AdvertiseOptions, AdvertiseTarget } from './controlplane-client/advertise.js';

export interface MeshEvents {
  config: [{ version: number; services: string[] }];
  'config-error': [TrellisError];
  endpoints: [{ service: string; endpoints: readonly Endpoint[] }];
  breaker: [{ service: string; state: BreakerState }];
  ejection: [{ service: string; endpoint: string; ejected: boolean }];
  warning: [string];
  certificate: [{ spiffeId: string; notAfter: Date }];
  /** A server of this mesh (mesh.serve: `http`, mesh.listen: `tcp`) is bound and accepting. */
  listening: [{ address: string; port: number; protocol: 'http' | 'tcp' }];
  /** The stream to the control plane connected, is connecting, or was lost (with the reason). */
  'control-plane': [ControlPlaneStateEvent];
}

/** The control-plane client as the mesh drives it: registration of what it serves, and shutdown. */
export interface MeshControlPlane {
  served(endpoint: RegisteredAddress): void;
  unserved(address: string): void;
  /** Leaves the registry; resolves once the control plane wrote it (bounded). */
  deregister(): Promise<void>;
  close(): void;
  /** Resolves when its cache writes under way have ended (close() waits for them, bounded). */
  flushed?(): Promise<void>;
}

export interface MeshCloseOptions {
  /** How long close() lets inbound and outbound requests in flight finish (default 10 s). */
  drainTimeoutMs?: number;
}

const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
/** How long close() waits for the control-plane client's cache writes under way. */
const CACHE_FLUSH_MS = 2_000;
/** How long after the drain deadline (and closeAllConnections) close() stops waiting for servers. */
const GIVE_UP_AFTER_CUT_MS = 1_000;

export interface MeshParts {
  service: string | undefined;
  clock: Clock;
  random: Random;
  inbound: InboundPolicies;
  inboundObservability: InboundObservability | undefined;
  metrics: MeshMetrics;
  tracer: MeshTracer;
  identity: IdentityProvider | undefined;
  peers: PeerResolver;
  onWarn: (message: string) => void;
  mtlsMode: () => MtlsMode;
  closeIdentity: () => void;
  destinations: Destinations;
  /** Loads and validates the configured source again (throws TRELLIS_CONFIG_INVALID). */
  reloadSource: (() => Promise<MeshConfig>) | undefined;
  loadSource: (source: unknown) => Promise<MeshConfig>;
  stopWatching: () => void;
  /** How `mesh.dispatcher` treats origins that are not mesh services. */
  dispatcher: MeshDispatcherOptions;
  /** A destination's transport: its mTLS connect function, or undefined for plaintext. */
  transportPolicy: (service: ServiceSpec, mesh: MeshSpec) => Connect | undefined;
  /** The control-plane client, when the mesh has one. */
  controlPlane?: MeshControlPlane | undefined;
}

export class Mesh extends EventEmitter<MeshEvents> {
  /** This workload's service name. */
  readonly service: string | undefined;
  readonly #parts: MeshParts;
  readonly #clients = new Map<string, HttpClient>();
  readonly #servers = new Set<MeshServer>();
  #dispatcher: MeshDispatcher | undefined;
  #config: MeshConfig | undefined;
  #version = 0;
  #closed = false;

  /** gRPC: target, credentials and interceptors for @grpc/grpc-js clients and servers. */
  readonly grpc: MeshGrpc;
  readonly #connections: MeshConnections;

  constructor(parts: MeshParts) {
    super();
    this.service = parts.service;
    this.#parts = parts;
    this.grpc = new MeshGrpc({
      service: parts.service,
      clock: parts.clock,
      random: parts.random,
      destinations: parts.destinations,
      config: () => this.#config,
      watch: watchMeshEvents(this),
      metrics: parts.metrics,
      tracer: parts.tracer,
      inboundPolicy: () => parts.inbound.current(),
      identity: parts.identity,
      checkServerIdentityFor,
    });
    this.#connections = new MeshConnections({
      service: parts.service,
      clock: parts.clock,
      random: parts.random,
      destinations: parts.destinations,
      metrics: parts.metrics,
      identity: parts.identity,
      peers: parts.peers,
      onWarn: parts.onWarn,
      config: () => this.#config,
      serveMode: () => this.#config?.services.get(this.service ?? '')?.mtls ?? parts.mtlsMode(),
      transportPolicy: parts.transportPolicy,
      closed: () => this.#closed,
      tracer: parts.tracer,
      unknownHosts: parts.dispatcher.unknownHosts ?? 'refuse',
      inboundAuthorizer: () => parts.inbound.current().authorizer,
    });
    parts.identity?.on('rotated', this.#onCertificate);
    const first = parts.identity?.current();
    if (first !== undefined) parts.metrics.setCertificateExpiry(first.service, first.notAfter);
  }

  readonly #onCertificate = (m: TlsMaterial): void => {
    this.#parts.metrics.setCertificateExpiry(m.service, m.notAfter);
    this.emit('certificate', { spiffeId: m.spiffeId, notAfter: new Date(m.notAfter) });
  };

  /** This workload's identity (certificates in force and their rotations), when it has one. */
  get identity(): IdentityProvider | undefined {
    return this.#parts.identity;
  }

  /** The configuration in force. */
  get config(): MeshConfig | undefined {
    return this.#config;
  }

  /** Version counter of the configuration in force (1 for the first). */
  get configVersion(): number {
    return this.#version;
  }

  /** Swaps in a validated configuration; requests in flight finish on the old stacks. */
  applyConfig(config: MeshConfig): void {
    this.#parts.tracer.update(config.mesh.tracing);
    this.#parts.destinations.apply(config);
    this.#parts.inbound.apply(config);
    this.#config = config;
    this.#version++;
    this.emit('config', { version: this.#version, services: [...config.services.keys()] });
  }

  /**
   * Loads a configuration (a path, YAML text or parsed documents; by default the source given
   * to meshClient) and applies it. A bad one is refused with TRELLIS_CONFIG_INVALID and the
   * configuration in force stays.
   */
  async reload(source?: unknown): Promise<void> {
    let next: MeshConfig;
    try {
      if (source !== undefined) next = await this.#parts.loadSource(source);
      else if (this.#parts.reloadSource !== undefined) next = await this.#parts.reloadSource();
      else return;
    } catch (err) {
      this.emit('config-error', err as TrellisError);
      throw err;
    }
    if (!this.#closed) this.applyConfig(next);
  }

  /** An undici-shaped client for one destination service. */
  http(service: string, options: HttpClientOptions = {}): MeshHttpClient {
    const refused = protocolRefusal(service, this.#config?.services.get(service)?.protocol);
    if (refused !== undefined) throw refused;
    if (options.classify !== undefined) return new HttpClient(service, this.#parts.destinations, options, () => this.#closed, this.#connections.upgrade);
    let c = this.#clients.get(service);
    if (c === undefined) {
      c = new HttpClient(service, this.#parts.destinations, options, () => this.#closed, this.#connections.upgrade);
      this.#clients.set(service, c);
    }
    return c;
  }

  /**
   * An undici Dispatcher routing `http://<service>/` through the mesh; other hostnames pass
   * through; `https://<service>`, `http://<service>:<port>` and (by default) unknown single-label
   * hosts are refused with a TrellisError (see docs/api.md).
   */
  get dispatcher(): MeshDispatcher {
    this.#dispatcher ??= new MeshDispatcher(this.#parts.destinations, this.#parts.dispatcher, undefined, this.#connections.upgrade);
    return this.#dispatcher;
  }

  /**
   * An `http.Agent` for node:http clients (axios, got, node-fetch): `http://<service>/` goes
   * through the mesh, other hosts follow the dispatcher's rules. See docs/api.md for what an
   * Agent can and cannot do (it retries connect failures only).
   *
   * @example
   * await axios.get('http://products/list', { httpAgent: mesh.agent });
   */
  get agent(): MeshAgent {
    return this.#connections.agent;
  }

  /** The `https.Agent` counterpart: ordinary HTTPS for other hosts, `https://<service>` refused (write `http://<service>`). */
  get httpsAgent(): MeshHttpsAgent {
    return this.#connections.httpsAgent;
  }

  /** Serves a node:http handler or Express app with the mesh's inbound side. */
  async serve(handler: RequestHandler, options: ServeOptions = {}): Promise<MeshServer> {
    const p = this.#parts;
    const own = this.#config?.services.get(this.service ?? '');
    const s = await serve(handler, options, { ...this.#inboundDeps(), mode: own?.mtls ?? p.mtlsMode(), identity: p.identity, onWarn: p.onWarn });
    this.#connections.guardUpgrades(s.server);
    this.emit('listening', { address: s.address, port: s.port, protocol: 'http' });
    const cp = p.controlPlane;
    if (cp === undefined) {
      this.#servers.add(s);
      return s;
    }
    // Registered while it serves: out of the registry before it stops accepting.
    cp.served({ address: s.address, protocol: 'http' });
    const registered: MeshServer = { ...s, close: () => (cp.unserved(s.address), s.close()) };
    this.#servers.add(registered);
    return registered;
  }

  /**
   * Registers a server this instance runs itself (Express `app.listen()`, a gRPC server's bound
   * port) with the control plane while it serves; `mesh.serve`, `mesh.listen` and `mesh.fastify()`
   * do it by themselves. Without a control plane it registers nothing. An HTTP server given to it
   * (the default `protocol`) also gets the inbound side in front of its upgrade listeners, with or
   * without a control plane: a `ws` server attached to it sees only authorized upgrades, with
   * `req.trellis.peer`. Returns the function that deregisters.
   *
   * @example
   * const server = app.listen(8080, '127.0.0.1');
   * mesh.advertise(server);
   * grpcServer.bindAsync('127.0.0.1:9090', mesh.grpc.serverCredentials(), (err, port) => mesh.advertise({ port }, { protocol: 'grpc' }));
   */
  advertise(target: AdvertiseTarget, options: AdvertiseOptions = {}): () => void {
    // An HTTP server the application owns: its upgrades pass the inbound side, as mesh.serve's do.
    if (target instanceof NetServer && (options.protocol ?? 'http') === 'http') this.#connections.guardUpgrades(target);
    const cp = this.#parts.controlPlane;
    if (cp === undefined) return () => {};
    return advertise(cp, target, options, this.#parts.onWarn);
  }

  /**
   * Opens a raw TCP connection to a `protocol: tcp` service: balanced, retried on connect
   * failure, guarded by its breaker and outlier detection, over mTLS when the mode says so.
   * Resolves with the socket (a tls.TLSSocket under mTLS) once it can carry bytes.
   *
   * @example
   * const socket = await mesh.connect('redis');
   * socket.write('PING\r\n');
   */
  connect(service: string, options?: ConnectOptions): Promise<MeshSocket> {
    return this.#connections.connect(service, options);
  }

  /**
   * Opens a `ws` WebSocket to an HTTP service: balanced, over mTLS when the mode says so, the
   * upgrade authorized by the server and traced. Resolves once the upgrade completed.
   *
   * @example
   * const ws = await mesh.websocket('chat', '/rooms/1');
   * ws.on('message', (m) => console.log(String(m)));
   */
  websocket(service: string, path: string, options?: WebSocketOptions): Promise<WebSocket> {
    return this.#connections.websocket(service, path, options);
  }

  /**
   * Serves raw TCP with the mesh's inbound side: mTLS per the mode, the caller on
   * `socket.trellis.peer`, authorization by caller (`from:`). Drains on `mesh.close()`.
   *
   * @example
   * await mesh.listen((socket) => socket.end(`hello ${socket.trellis.peer.service}\n`), { port: 6380 });
   */
  async listen(handler: ConnectionHandler, options?: ListenOptions): Promise<MeshTcpServer> {
    const s = await this.#connections.listen(handler, options);
    this.emit('listening', { address: s.address, port: s.port, protocol: 'tcp' });
    const cp = this.#parts.controlPlane;
    if (cp === undefined) return s;
    cp.served({ address: s.address, protocol: 'tcp' });
    return { server: s.server, address: s.address, port: s.port, close: (drainTimeoutMs?: number) => (cp.unserved(s.address), s.close(drainTimeoutMs)) };
  }

  /** The prom-client registry holding Trellis's metrics (the application's, when it gave one). */
  get metricsRegistry(): MeshMetrics['registry'] {
    return this.#parts.metrics.registry;
  }

  /** A node:http handler serving the metrics in Prometheus text format (mount it at /metrics). */
  metricsHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    return metricsHandler(this.#parts.metrics.registry);
  }

  /** The inbound stack's parts, shared by serve(), express() and fastify(). */
  #inboundDeps(): MeshInboundDeps {
    const p = this.#parts;
    return { clock: p.clock, random: p.random, service: this.service, policy: () => p.inbound.current(), observability: p.inboundObservability, peers: p.peers };
  }

  /**
   * Express middleware giving an app that owns its server the same inbound stack as serve():
   * identity, authorization, rate limit, fault, deadline and trace context, metrics; sets
   * `req.trellis.peer`. Use it first: `app.use(mesh.express())`.
   */
  express(): ExpressMiddleware {
    return expressMiddleware(this.#inboundDeps());
  }

  /** The same inbound stack as a Fastify 5 plugin: `await fastify.register(mesh.fastify())`. */
  fastify(): TrellisFastifyPlugin {
    return fastifyPlugin({ ...this.#inboundDeps(), advertise: (server) => this.advertise(server) });
  }

  /** A snapshot of every destination: stack, endpoints, load, ejections, breaker, budget. */
  inspect(): MeshInspection {
    return inspectDestinations(this.#parts.destinations, this.#parts.clock, this.#parts.inbound.current().overload);
  }

  /**
   * Stops serving (draining), closes pools, timers and watchers; the process can then exit.
   *
   * One drain deadline (`drainTimeoutMs`, default 10 s) bounds the whole close: servers drain
   * (each also within its own `drainTimeoutMs`) and are cut at the deadline; outbound requests
   * still in flight then fail with TRELLIS_CLOSED, however long their own timeout, so a hung
   * upstream cannot hold close() for a request timeout.
   */
  async close(options: MeshCloseOptions = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Deregister first, so callers stop choosing this instance while it drains.
    await this.#parts.controlPlane?.deregister().catch(() => {});
    const drainMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    const clock = this.#parts.clock;
    const deadline = clock.now() + drainMs;
    this.#parts.stopWatching();
    const servers = [...this.#servers];
    const cut = setTimeout(() => {
      for (const s of servers) s.server.closeAllConnections();
    }, drainMs);
    cut.unref();
    // Bounded, and by a timer that holds the process: a connection whose end node:http never
    // counts (an HTTP/2 session handed over from the http.Server, seen once under load) must not
    // leave close() pending forever with nothing left in the event loop.
    let giveUp: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      giveUp = setTimeout(() => {
        this.#parts.onWarn(`close: a server was still closing ${drainMs + GIVE_UP_AFTER_CUT_MS} ms after close(); going on without it`);
        resolve();
      }, drainMs + GIVE_UP_AFTER_CUT_MS);
    });
    await Promise.race([Promise.all([...servers.map((s) => s.close()), this.#connections.close(drainMs)]), bound]);
    clearTimeout(giveUp);
    clearTimeout(cut);
    this.grpc.close();
    await this.#parts.destinations.close(Math.max(0, deadline - clock.now()));
    this.#parts.inbound.close();
    await this.#parts.tracer.close();
    this.#parts.identity?.off('rotated', this.#onCertificate);
    this.#parts.controlPlane?.close();
    this.#parts.closeIdentity();
    // The snapshot or certificate being kept in the cache directory is written before close()
    // resolves (an application may remove the directory or exit next), within 2 s.
    const flushed = this.#parts.controlPlane?.flushed?.();
    if (flushed !== undefined) {
      let stop: NodeJS.Timeout | undefined;
      await Promise.race([flushed, new Promise<void>((r) => (stop = setTimeout(r, CACHE_FLUSH_MS)))]);
      clearTimeout(stop);
    }
    await this.#dispatcher?.close();
  }
}
