/**
 * `mesh.connect(service)`: a raw TCP connection to one endpoint of a `protocol: tcp` service,
 * opened through the destination's connection stack (src/client/connection-stack.ts: timeout →
 * retry on connect failure → rate limit → breaker → split → balancer → endpoint), over mTLS when
 * the Mesh or Service mode says so (the same connect function as the HTTP pools: TLS 1.3, the
 * workload certificate in force, the server's SPIFFE identity checked).
 *
 * It resolves with the socket itself — a `net.Socket`, a `tls.TLSSocket` under mTLS — once it
 * can carry bytes, so any client library that takes a socket or a stream uses it as is. What
 * the layers judge is the opening; once open the connection belongs to the caller: its bytes are
 * never replayed, `timeout` does not limit its life, and `mesh.close()` leaves it open.
 *
 * Balancing counts an open connection as one outstanding request of its endpoint (for
 * least-request and peak-EWMA), from connect to close; connect latency feeds the EWMA.
 */
import type { Socket } from 'node:net';
import { CallContext } from '../core/context.js';
import { CallSignal } from '../core/call-signal.js';
import type { Clock, Random } from '../core/clock.js';
import { ClosedError, InvalidArgumentError, UnknownServiceError } from '../core/errors.js';
import type { MeshConfig, ServiceSpec } from '../config/types.js';
import type { Destinations } from './destinations.js';
import type { Connect } from './mtls-connector.js';
import { connectionStack } from './connection-stack.js';
import type { ConnectionStack, ConnectionStackDeps } from './connection-stack.js';
import { dialEndpoint } from './endpoint-dial.js';
import type { ConnectionMetrics, ConnectionProtocol } from '../observability/connection-metrics.js';
import { outcomeOf } from '../observability/connection-metrics.js';

/** Per-call options of `mesh.connect()`. */
export interface ConnectOptions {
  /** Cancels the connect (not the connection once open). */
  signal?: AbortSignal;
  /** Key for ring-hash balancing: the same key reaches the same endpoint while it is healthy. */
  routeKey?: string;
}

/** What Trellis tells the caller about an outbound connection, as `socket.trellis`. */
export interface OutboundConnectionInfo {
  /** The destination service. */
  readonly service: string;
  /** The endpoint (`host:port`) the connection went to. */
  readonly endpoint: string;
}

/** The socket `mesh.connect()` resolves with: a net.Socket (tls.TLSSocket under mTLS) with `trellis`. */
export type MeshSocket = Socket & { readonly trellis: OutboundConnectionInfo };

/** The request of a connection stack: nothing but the call's own wishes (all in the context). */
export type ConnectRequest = Readonly<Record<string, never>>;
const CONNECT: ConnectRequest = Object.freeze({});

export interface ConnectionEdgeDeps {
  clock: Clock;
  random: Random;
  destinations: Destinations;
  config: () => MeshConfig | undefined;
  /** The destination's mTLS connect function, or undefined for plaintext (the Mesh/Service mode). */
  transportFor: (spec: ServiceSpec) => Connect | undefined;
  /** Connection metrics, made on first use. */
  metrics: () => ConnectionMetrics;
  stack: Omit<ConnectionStackDeps, 'clock' | 'random'>;
  closed: () => boolean;
}

/**
 * The destination's spec, state and the stack for it, checking the call first. Shared with the
 * WebSocket edge, which wants `protocol: http`.
 * @throws UnknownServiceError, InvalidArgumentError (wrong protocol), ClosedError.
 */
export function destinationFor(deps: ConnectionEdgeDeps, service: string, api: string, protocols: readonly string[]): ServiceSpec {
  if (typeof service !== 'string' || service === '') throw new InvalidArgumentError(`${api} needs a service name, got ${typeof service === 'string' ? 'an empty string' : typeof service}`);
  if (deps.closed()) throw new ClosedError('the mesh client is closed', { service });
  const spec = deps.config()?.services.get(service);
  if (spec === undefined) throw new UnknownServiceError(`no Service document named ${service}`, { service });
  if (!protocols.includes(spec.protocol)) {
    throw new InvalidArgumentError(`${api} needs a service with protocol ${protocols.join(' or ')}, and ${service} is protocol ${spec.protocol}${spec.protocol === 'tcp' ? ' (call it with mesh.connect)' : ' (call it with mesh.http, mesh.dispatcher or mesh.agent)'}`, { service });
  }
  return spec;
}

/** Records the connection's close in the metrics: lifetime and bytes. */
export function watchClose(socket: Socket, metrics: ConnectionMetrics, service: string, protocol: ConnectionProtocol, clock: Clock): void {
  const opened = clock.now();
  socket.once('close', () => {
    metrics.clientClosed(service, protocol, { durationSec: (clock.now() - opened) / 1000, bytesSent: socket.bytesWritten, bytesReceived: socket.bytesRead });
  });
}

export class TcpConnector {
  readonly #deps: ConnectionEdgeDeps;
  readonly #stacks = new WeakMap<ServiceSpec, ConnectionStack<ConnectRequest, Socket>>();

  constructor(deps: ConnectionEdgeDeps) {
    this.#deps = deps;
  }

  /** The connection stack of a destination, for describe(). */
  describe(service: string): string | undefined {
    const spec = this.#deps.config()?.services.get(service);
    return spec === undefined || spec.protocol !== 'tcp' ? undefined : this.#stack(spec)?.describe();
  }

  #stack(spec: ServiceSpec): ConnectionStack<ConnectRequest, Socket> | undefined {
    let s = this.#stacks.get(spec);
    if (s !== undefined) return s;
    const state = this.#deps.destinations.get(spec.name)?.state;
    if (state === undefined) return undefined;
    const { clock, random } = this.#deps;
    const connectTimeoutMs = spec.connection.connectTimeoutMs;
    const transportFor = this.#deps.transportFor;
    s = connectionStack<ConnectRequest, Socket>(spec, state, { clock, random, ...this.#deps.stack }, {
      kind: 'tcp',
      retries: true,
      route: () => 0,
      discard: (socket) => socket.destroy(),
      transport: (_req, ctx) => {
        const endpoint = ctx.endpoint;
        if (endpoint === undefined) return Promise.reject(new Error('trellis: no endpoint chosen'));
        return dialEndpoint({ service: spec.name, endpoint, connect: transportFor(spec), connectTimeoutMs, signal: ctx.signal }).then((socket) => {
          // An open connection is outstanding work on its endpoint until it closes.
          const load = ctx.load;
          if (load !== undefined) {
            load.outstanding++;
            socket.once('close', () => load.outstanding--);
          }
          Object.defineProperty(socket, 'trellis', { value: Object.freeze({ service: spec.name, endpoint: endpoint.id }), enumerable: true });
          return socket;
        });
      },
    });
    this.#stacks.set(spec, s);
    return s;
  }

  /** Opens a connection (see the file comment). */
  async connect(service: string, options: ConnectOptions = {}): Promise<MeshSocket> {
    const spec = destinationFor(this.#deps, service, 'mesh.connect()', ['tcp']);
    const stack = this.#stack(spec);
    if (stack === undefined) throw new UnknownServiceError(`no destination named ${service}`, { service });
    // Opening is idempotent: nothing the caller writes has been sent before the socket is theirs.
    const ctx = new CallContext(service, true);
    if (options.signal !== undefined) ctx.signal = CallSignal.fromAbortSignal(options.signal);
    ctx.routeKey = options.routeKey;
    const metrics = this.#deps.metrics();
    let socket: Socket;
    try {
      socket = await stack.service(CONNECT, ctx);
    } catch (err) {
      metrics.clientConnect(service, 'tcp', outcomeOf(err));
      throw err;
    }
    metrics.clientConnect(service, 'tcp', 'success');
    watchClose(socket, metrics, service, 'tcp', this.#deps.clock);
    return socket as MeshSocket;
  }
}
