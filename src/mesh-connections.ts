/**
 * The connection-level edges of one mesh client, wired from its parts and holding no logic of
 * their own: `connect()` (raw TCP out), `listen()` (raw TCP in), the node:http Agents, and their
 * shared connection metrics (made on first use). `Mesh` delegates to it, so mesh.ts stays the public surface only.
 */
import type { Clock, Random } from './core/clock.js';
import type { MeshConfig, MeshSpec, MtlsMode, ServiceSpec } from './config/types.js';
import type { Destinations } from './client/destinations.js';
import type { Connect } from './client/mtls-connector.js';
import { TcpConnector } from './client/tcp-connect.js';
import type { ConnectionEdgeDeps, ConnectOptions, MeshSocket } from './client/tcp-connect.js';
import type { MeshMetrics } from './observability/metrics.js';
import { ConnectionMetrics } from './observability/connection-metrics.js';
import type { IdentityProvider } from './tls/identity.js';
import type { PeerResolver } from './server/peer.js';
import { listenTcp } from './server/tcp-listen.js';
import type { ConnectionHandler, ListenOptions, MeshTcpServer } from './server/tcp-listen.js';
import { compileCallerAuthorization } from './server/tcp-authorization.js';
import type { CallerAuthorizer } from './server/tcp-authorization.js';
import { MeshAgent, MeshHttpsAgent } from './client/mesh-agent.js';
import type { MeshAgentDeps } from './client/mesh-agent.js';
import type { MeshTracer } from './observability/tracer.js';
import type { UnknownHostPolicy } from './client/dispatch-origin.js';
import { WebSocketConnector } from './client/websocket.js';
import { UpgradeDispatcher } from './client/dispatch-upgrade.js';
import type { UpgradeDispatch } from './client/dispatch-upgrade.js';
import type { WebSocketOptions } from './client/websocket.js';
import type WebSocket from 'ws';
import { guardUpgrades } from './server/upgrade-guard.js';
import type { Authorizer } from './server/authorization.js';
import type { Server as NetServer } from 'node:net';

export interface MeshConnectionsDeps {
  service: string | undefined;
  clock: Clock;
  random: Random;
  destinations: Destinations;
  metrics: MeshMetrics;
  identity: IdentityProvider | undefined;
  peers: PeerResolver;
  onWarn: (message: string) => void;
  config: () => MeshConfig | undefined;
  /** The mTLS mode this instance serves in (its own Service's, else the Mesh's). */
  serveMode: () => MtlsMode;
  transportPolicy: (service: ServiceSpec, mesh: MeshSpec) => Connect | undefined;
  closed: () => boolean;
  tracer: MeshTracer;
  /** `dispatcher.unknownHosts` of meshClient: the Agents follow the dispatcher's origin rules. */
  unknownHosts: UnknownHostPolicy;
  /** The request authorizer in force (mesh.serve's), for upgrades. */
  inboundAuthorizer: () => Authorizer | undefined;
}

export class MeshConnections {
  readonly #deps: MeshConnectionsDeps;
  #metrics: ConnectionMetrics | undefined;
  #tcp: TcpConnector | undefined;
  #agent: MeshAgent | undefined;
  #httpsAgent: MeshHttpsAgent | undefined;
  #websockets: WebSocketConnector | undefined;
  #upgrades: UpgradeDispatcher | undefined;
  readonly #listeners = new Set<MeshTcpServer>();
  readonly #authorizers = new WeakMap<object, CallerAuthorizer>();
  readonly #guarded = new WeakSet<NetServer>();

  constructor(deps: MeshConnectionsDeps) {
    this.#deps = deps;
  }

  /** The connection metrics, registered on first use. */
  metrics(): ConnectionMetrics {
    this.#metrics ??= new ConnectionMetrics(this.#deps.metrics.registry);
    return this.#metrics;
  }

  /** What the connection edges need of the outbound side. */
  edgeDeps(): ConnectionEdgeDeps {
    const d = this.#deps;
    const m = d.metrics;
    return {
      clock: d.clock,
      random: d.random,
      destinations: d.destinations,
      config: d.config,
      transportFor: (spec) => {
        const mesh = d.config()?.mesh;
        return mesh === undefined ? undefined : d.transportPolicy(spec, mesh);
      },
      metrics: () => this.metrics(),
      stack: {
        onRetry: (service, route, reason) => m.retry(service, route, reason),
        onBudgetExhausted: (service) => m.retryBudgetExhausted(service),
        onRateLimited: (service, route) => m.rateLimited(service, route, 'outbound'),
      },
      closed: d.closed,
    };
  }

  connect(service: string, options?: ConnectOptions): Promise<MeshSocket> {
    this.#tcp ??= new TcpConnector(this.edgeDeps());
    return this.#tcp.connect(service, options);
  }

  #agentDeps(): MeshAgentDeps {
    return { edge: this.edgeDeps(), metrics: this.#deps.metrics, tracer: this.#deps.tracer, unknownHosts: this.#deps.unknownHosts };
  }

  get agent(): MeshAgent {
    this.#agent ??= new MeshAgent(this.#agentDeps());
    return this.#agent;
  }

  get httpsAgent(): MeshHttpsAgent {
    this.#httpsAgent ??= new MeshHttpsAgent(this.#agentDeps());
    return this.#httpsAgent;
  }

  websocket(service: string, path: string, options?: WebSocketOptions): Promise<WebSocket> {
    this.#websockets ??= new WebSocketConnector(this.edgeDeps(), this.#deps.tracer);
    return this.#websockets.open(service, path, options);
  }

  /** Sends upgrade dispatches (mesh.dispatcher, mesh.http) through the upgrade edge; made on first use. */
  readonly upgrade: UpgradeDispatch = (service, opts, handler) => {
    this.#upgrades ??= new UpgradeDispatcher(this.edgeDeps(), this.#deps.tracer);
    return this.#upgrades.dispatch(service, opts, handler);
  };

  /** Puts authorization in front of a server's upgrade listeners (once per server). */
  guardUpgrades(server: NetServer): void {
    if (this.#guarded.has(server)) return;
    this.#guarded.add(server);
    const d = this.#deps;
    guardUpgrades(server, { service: d.service, peers: d.peers, clock: d.clock, authorizer: d.inboundAuthorizer, metrics: () => this.metrics(), tracer: d.tracer });
  }

  /** The connection stack of a `protocol: tcp` destination, for describe(). */
  describeTcp(service: string): string | undefined {
    this.#tcp ??= new TcpConnector(this.edgeDeps());
    return this.#tcp.describe(service);
  }

  /** Authorization by caller from this service's `inbound.authorization`, compiled once per config version. */
  authorizer(): CallerAuthorizer {
    const self = this.#deps.service;
    const spec = self === undefined ? undefined : this.#deps.config()?.services.get(self);
    const authz = spec?.inbound?.authorization;
    if (spec === undefined || authz === undefined) return compileCallerAuthorization(undefined);
    let a = this.#authorizers.get(spec);
    if (a === undefined) {
      a = compileCallerAuthorization(authz);
      this.#authorizers.set(spec, a);
    }
    return a;
  }

  async listen(handler: ConnectionHandler, options: ListenOptions = {}): Promise<MeshTcpServer> {
    const d = this.#deps;
    const server = await listenTcp(handler, options, {
      mode: d.serveMode(),
      identity: d.identity,
      peers: d.peers,
      clock: d.clock,
      onWarn: d.onWarn,
      service: d.service,
      authorizer: () => this.authorizer(),
      metrics: () => this.metrics(),
    });
    this.#listeners.add(server);
    return server;
  }

  /** Closes the listeners, draining within `drainMs`. */
  async close(drainMs: number): Promise<void> {
    const servers = [...this.#listeners];
    this.#listeners.clear();
    await Promise.all(servers.map((s) => s.close(drainMs)));
    this.#agent?.destroy();
    this.#httpsAgent?.destroy();
  }
}
