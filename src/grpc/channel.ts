/**
 * `mesh.grpc`: what a mesh gives @grpc/grpc-js users — a target, credentials and client options
 * (service config selecting the `trellis` LB policy through the resolver, and the client
 * interceptor) for channels, and interceptors and credentials for servers:
 *
 * ```ts
 * const client = new Greeter(mesh.grpc.target('greeter'), mesh.grpc.credentials(), mesh.grpc.clientOptions('greeter'));
 * const server = new grpc.Server({ interceptors: mesh.grpc.serverInterceptors() });
 * server.bindAsync('127.0.0.1:0', mesh.grpc.serverCredentials(), cb);
 * ```
 *
 * One `MeshGrpc` per mesh. Creating it registers the `trellis:` scheme and the `trellis` LB
 * policy with grpc-js (once per process) and this mesh in the process-wide registry under an
 * id of its own (`trellis://m1/greeter`); `close()` removes it. Stacks are built lazily per
 * destination and config version (the Destination object of a version is the cache key), from
 * the destination's shared state.
 */
import type { ChannelCredentials, ChannelOptions, Interceptor, ServerCredentials, ServerInterceptor } from '@grpc/grpc-js';
import type { Clock, Random } from '../core/clock.js';
import type { MeshConfig } from '../config/types.js';
import type { Destination } from '../client/destinations.js';
import type { EndpointSet } from '../client/endpoint-set.js';
import type { MeshMetrics } from '../observability/metrics.js';
import type { MeshTracer } from '../observability/tracer.js';
import type { InboundPolicy } from '../server/inbound-stack.js';
import { compileAuthorization } from './authorization.js';
import type { Authorizer } from './authorization.js';
import { meshClientInterceptor } from './client-interceptors.js';
import type { GrpcClientSide } from './client-interceptors.js';
import { channelCredentials, permissiveServerCredentials, perServiceCredentials, serverCredentials } from './credentials.js';
import { credentials as grpcCredentials } from '@grpc/grpc-js';
import type { Server } from '@grpc/grpc-js';
import type { MtlsMode } from '../config/types.js';
import { listenGrpc } from './listen.js';
import { DeadlineQueue } from '../core/deadline-queue.js';
import type { GrpcListener, GrpcListenOptions } from './listen.js';
import { grpcStacks } from './grpc-stack.js';
import type { GrpcStacks } from './grpc-stack.js';
import type { IdentitySource, ServerIdentityCheckFor } from './identity.js';
import { ensureTrellisLoadBalancer } from './load-balancer.js';
import { meshRegistry } from './registry.js';
import type { GrpcMeshSource } from './registry.js';
import { ensureTrellisResolver, TRELLIS_SCHEME } from './resolver.js';
import { meshServerInterceptor } from './server-interceptors.js';

/** The pieces of a mesh its gRPC side is made of (wired by `meshClient`). */
export interface GrpcMeshParts {
  /** This workload's service name. */
  service: string | undefined;
  clock: Clock;
  random: Random;
  /** The destinations of the config in force. */
  destinations: { get(service: string): Destination | undefined };
  /** The config in force (destination specs, this service's inbound block, the trust domain). */
  config(): MeshConfig | undefined;
  /**
   * Subscribes to changes: `listener(service)` after a destination's endpoints changed,
   * `listener(undefined)` after a config change. Returns the unsubscribe function.
   */
  watch(listener: (service: string | undefined) => void): () => void;
  metrics?: MeshMetrics | undefined;
  tracer?: MeshTracer | undefined;
  /** The inbound policy in force (rate limit, fault), as `InboundPolicies.current()`. */
  inboundPolicy?: (() => InboundPolicy) | undefined;
  /** The workload identity; without it credentials are insecure. */
  identity?: IdentitySource | undefined;
  /** src/tls/spiffe.ts's `checkServerIdentityFor` (needed with an identity). */
  checkServerIdentityFor?: ServerIdentityCheckFor | undefined;
}

/** Client options for a grpc-js client: channel options plus the mesh's interceptor. */
export type GrpcClientOptions = ChannelOptions & { interceptors: Interceptor[] };

/** The events of a Mesh that `watchMeshEvents` follows. */
export interface MeshEventSource {
  on(event: 'endpoints', listener: (e: { service: string }) => void): unknown;
  on(event: 'config', listener: () => void): unknown;
  off(event: 'endpoints', listener: (e: { service: string }) => void): unknown;
  off(event: 'config', listener: () => void): unknown;
}

/**
 * A mesh's `watch` from its events: `endpoints` events name the service, `config` events
 * stand for every destination.
 *
 * @example
 * watch: watchMeshEvents(mesh)
 */
export function watchMeshEvents(emitter: MeshEventSource): (listener: (service: string | undefined) => void) => () => void {
  return (listener) => {
    const onEndpoints = (e: { service: string }): void => listener(e.service);
    const onConfig = (): void => listener(undefined);
    emitter.on('endpoints', onEndpoints);
    emitter.on('config', onConfig);
    return () => {
      emitter.off('endpoints', onEndpoints);
      emitter.off('config', onConfig);
    };
  };
}

export class MeshGrpc {
  /** This mesh's id in `trellis://<id>/<service>` targets. */
  readonly id: string;
  readonly #parts: GrpcMeshParts;
  readonly #stacks = new WeakMap<Destination, GrpcStacks>();
  readonly #client: GrpcClientSide;
  readonly #source: GrpcMeshSource;
  readonly #interceptors = new Map<string, Interceptor>();
  #authorizer: { spec: unknown; check: Authorizer } | undefined;
  #closed = false;
  #secureChannel: ChannelCredentials | undefined;
  /** One timer for the deadlines of every call this mesh's gRPC stacks have in flight. */
  readonly #deadlines: DeadlineQueue;
  #channelCredentials: ChannelCredentials | undefined;

  constructor(parts: GrpcMeshParts) {
    ensureTrellisResolver();
    ensureTrellisLoadBalancer();
    this.#parts = parts;
    this.#deadlines = DeadlineQueue.anyDeadlines(parts.clock);
    this.#client = { clock: parts.clock, unaryCore: (service) => this.#stacksOf(service)?.unary };
    this.#source = {
      clock: parts.clock,
      endpointSet: (service): EndpointSet | undefined => parts.destinations.get(service)?.state.endpoints,
      watch: parts.watch,
      client: this.#client,
    };
    this.id = meshRegistry.register(this.#source);
  }

  /** The channel target of a destination: `trellis://<mesh-id>/<service>`. */
  target(service: string): string {
    return `${TRELLIS_SCHEME}://${this.id}/${service}`;
  }

  /**
   * Channel credentials: rotating mTLS, or insecure without an identity or where the mode is
   * `off`. The mode is the destination's: with `service`, that Service's `mtls` (else the
   * Mesh's); without, decided per channel from its `trellis:` target, when grpc-js connects (a
   * channel to another target takes the Mesh's mode). Read per connection, so a config change
   * applies to new connections.
   */
  credentials(service?: string): ChannelCredentials {
    const plaintext = (svc: string | undefined): boolean => this.#modeOf(svc) === 'off';
    if (service !== undefined) return plaintext(service) ? grpcCredentials.createInsecure() : this.#secure();
    this.#channelCredentials ??= perServiceCredentials((svc) => plaintext(svc ?? service), () => this.#secure(), grpcCredentials.createInsecure());
    return this.#channelCredentials;
  }

  /** The mTLS mode for `service` (its own `mtls`, else the Mesh's); `off` without an identity. */
  #modeOf(service: string | undefined): MtlsMode {
    const p = this.#parts;
    if (p.identity === undefined) return 'off';
    const config = p.config();
    const own = service === undefined ? undefined : config?.services.get(service)?.mtls;
    return own ?? config?.mesh.mtls ?? 'strict';
  }

  #secure(): ChannelCredentials {
    const p = this.#parts;
    this.#secureChannel ??= channelCredentials({ identity: p.identity, checkServerIdentityFor: p.checkServerIdentityFor, plaintext: false });
    return this.#secureChannel;
  }

  /**
   * Options for a grpc-js client: the mesh's interceptor (bound to `service` when given; else it
   * finds the destination from the channel's `trellis:` target and leaves other channels alone).
   * The service config selecting the `trellis` LB policy comes from the resolver.
   */
  clientOptions(service?: string): GrpcClientOptions {
    return { interceptors: [this.interceptor(service)] };
  }

  /** The client interceptor alone (to combine with the application's own). */
  interceptor(service?: string): Interceptor {
    const key = service ?? '';
    let i = this.#interceptors.get(key);
    if (i === undefined) {
      i = meshClientInterceptor(this.#client, service, this.id, (id) => meshRegistry.get(id)?.client);
      this.#interceptors.set(key, i);
    }
    return i;
  }

  /** Interceptors for `new grpc.Server({ interceptors })`: identity, authorization, rate limit, fault, tracing, metrics. */
  serverInterceptors(): ServerInterceptor[] {
    const p = this.#parts;
    return [
      meshServerInterceptor({
        service: p.service,
        clock: p.clock,
        random: p.random,
        policy: () => p.inboundPolicy?.(),
        authorizer: () => this.#authorizerNow(),
        trustDomain: () => p.config()?.mesh.trustDomain ?? 'cluster.local',
        metrics: p.metrics,
        tracer: p.tracer,
      }),
    ];
  }

  /**
   * Server credentials for `bindAsync`, in this service's mode (its Service document's `mtls`,
   * else the Mesh's): rotating mTLS requiring client certificates (`strict`), mTLS with the
   * client certificate optional (`permissive`: callers without one are `unknown`; for plaintext
   * callers on the same port use `listen()`), or insecure (`off`, or no identity).
   */
  serverCredentials(): ServerCredentials {
    const p = this.#parts;
    const mode = this.#modeOf(p.service);
    if (mode === 'permissive' && p.identity !== undefined) return permissiveServerCredentials(p.identity);
    return serverCredentials({ identity: p.identity, plaintext: mode === 'off' });
  }

  /**
   * Listens for a grpc-js server on `port` in this service's mode: `strict` mTLS, `off`
   * plaintext, and `permissive` both on one port (which `bindAsync` cannot do). Shut the server
   * down as usual; `close()` the listener too.
   *
   * @example
   * const server = new grpc.Server({ interceptors: mesh.grpc.serverInterceptors() });
   * server.addService(Greeter.service, impl);
   * const listener = await mesh.grpc.listen(server, { port: 50051 });
   */
  listen(server: Server, options: GrpcListenOptions = {}): Promise<GrpcListener> {
    const p = this.#parts;
    const mode = this.#modeOf(p.service);
    const identity = p.identity;
    return listenGrpc(server, {
      secure: mode === 'off' || identity === undefined ? undefined : serverCredentials({ identity, plaintext: false }),
      plaintext: mode === 'strict' ? undefined : serverCredentials({ identity: undefined, plaintext: true }),
    }, options);
  }

  /** The gRPC stacks of a destination, described (for inspection and the CLI). */
  describe(service: string): string | undefined {
    return this.#stacksOf(service)?.describe();
  }

  /** Removes this mesh from the process registry: its channels then fail with UNAVAILABLE. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    meshRegistry.unregister(this.id);
  }

  #stacksOf(service: string): GrpcStacks | undefined {
    const p = this.#parts;
    const dest = p.destinations.get(service);
    if (dest === undefined) return undefined;
    let s = this.#stacks.get(dest);
    if (s === undefined) {
      const spec = p.config()?.services.get(service);
      if (spec === undefined) return undefined;
      s = grpcStacks(spec, dest.state, { clock: p.clock, random: p.random, deadlines: this.#deadlines, metrics: p.metrics, tracer: p.tracer });
      this.#stacks.set(dest, s);
    }
    return s;
  }

  #authorizerNow(): Authorizer {
    const p = this.#parts;
    const spec = p.service === undefined ? undefined : p.config()?.services.get(p.service)?.inbound?.authorization;
    const cur = this.#authorizer;
    if (cur !== undefined && cur.spec === spec) return cur.check;
    const check = compileAuthorization(spec);
    this.#authorizer = { spec, check };
    return check;
  }
}
