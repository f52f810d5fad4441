/**
 * The set of destinations a mesh client can call, for one config version at a time. Applying a
 * config builds the stack of every destination whose inputs changed (the others keep theirs, so
 * a one-service edit costs one build, not one per service) and then swaps the whole table in one
 * assignment: a request looks its stack up once, at its start, so requests in flight finish
 * on the stack they began with while new ones take the new version. Services that leave the
 * config are closed after a grace period, so their in-flight requests complete.
 */
import type { Clock, Random } from '../core/clock.js';
import type { MeshConfig, MeshSpec, ServiceSpec } from '../config/types.js';
import type { Connect } from './mtls-connector.js';
import { BreakerTicker } from '../resilience/circuit-breaker.js';
import { ServiceState } from './service-state.js';
import type { ServiceStateDeps } from './service-state.js';
import { outboundHttpStack } from './outbound-stack.js';
import type { BuiltStack } from './outbound-stack.js';
import type { OutboundObservability } from './outbound-observability.js';
import { destinationKey, sameDestinationKey } from './destination-key.js';
import type { DestinationKey } from './destination-key.js';

export interface Destination {
  /** The Service's `protocol`: HTTP calls refuse `tcp` (wrong-protocol.ts). */
  readonly protocol: ServiceSpec['protocol'];
  readonly state: ServiceState;
  readonly http: BuiltStack;
  readonly maxReplayBytes: number;
}

export type DestinationEvents = Omit<ServiceStateDeps, 'clock' | 'random' | 'ticker'>;

export class Destinations {
  #table: ReadonlyMap<string, Destination> = new Map();
  readonly #states = new Map<string, ServiceState>();
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #tickers = new Map<number, BreakerTicker>();
  readonly #events: DestinationEvents;
  readonly #retiring = new Set<ReturnType<typeof setTimeout>>();
  /** What each destination in the table was built from: its input key and its transport. */
  readonly #built = new Map<string, { key: DestinationKey; connect: Connect | undefined }>();

  readonly #observability: OutboundObservability | undefined;

  /** Decides each destination's transport: an mTLS connect function, or undefined for plaintext. */
  #transport: (service: ServiceSpec, mesh: MeshSpec) => Connect | undefined = () => undefined;

  setTransportPolicy(policy: (service: ServiceSpec, mesh: MeshSpec) => Connect | undefined): void {
    this.#transport = policy;
  }

  constructor(clock: Clock, random: Random, events: DestinationEvents, observability?: OutboundObservability) {
    this.#observability = observability;
    this.#clock = clock;
    this.#random = random;
    this.#events = events;
  }

  /** The destination for a service in the current version, or undefined. */
  get(service: string): Destination | undefined {
    return this.#table.get(service);
  }

  /** Counts a request refused at the entry for an invalid argument (see request-validation.ts). */
  invalidArgument(service: string, method: unknown): void {
    this.#observability?.invalidArgument(service, typeof method === 'string' ? method.toUpperCase() : method === undefined ? 'GET' : '_OTHER');
  }

  names(): string[] {
    return [...this.#table.keys()];
  }

  /**
   * Builds the stack of every destination whose inputs changed (see `destinationKey`), keeps the
   * Destination object of every other one, then swaps the whole table in at once. A kept
   * destination is untouched: same stack, same compiled hot path, same gRPC stacks (cached by
   * Destination object), and its state is not reconfigured. Returns the names rebuilt.
   */
  apply(config: MeshConfig): string[] {
    const next = new Map<string, Destination>();
    const rebuilt: string[] = [];
    for (const [name, spec] of config.services) {
      const connect = this.#transport(spec, config.mesh);
      const key = destinationKey(spec, config.mesh);
      const built = this.#built.get(name);
      const current = this.#table.get(name);
      if (built !== undefined && current !== undefined && built.connect === connect && sameDestinationKey(built.key, key)) {
        next.set(name, current);
        continue;
      }
      let state = this.#states.get(name);
      if (state === undefined) {
        state = new ServiceState(spec, { clock: this.#clock, random: this.#random, ticker: (w) => this.#ticker(w), ...this.#events });
        this.#states.set(name, state);
      }
      state.configure(spec, config.mesh, connect);
      next.set(name, { protocol: spec.protocol, state, http: outboundHttpStack(spec, state, { clock: this.#clock, random: this.#random, observability: this.#observability }), maxReplayBytes: spec.retries.maxReplayBytes });
      this.#built.set(name, { key, connect });
      rebuilt.push(name);
    }
    this.#table = next;
    for (const [name, state] of this.#states) {
      if (!next.has(name)) {
        this.#states.delete(name);
        this.#built.delete(name);
        // In-flight requests keep their stack; the state closes (pools drain) after a grace.
        const t = setTimeout(() => {
          this.#retiring.delete(t);
          void state.close();
        }, 5_000);
        t.unref();
        this.#retiring.add(t);
      }
    }
    return rebuilt;
  }

  /** One bucket-rotation timer per breaker window size, shared by every breaker using it. */
  #ticker(windowMs: number): BreakerTicker {
    let t = this.#tickers.get(windowMs);
    if (t === undefined) {
      t = new BreakerTicker(windowMs);
      this.#tickers.set(windowMs, t);
    }
    return t;
  }

  states(): ServiceState[] {
    return [...this.#states.values()];
  }

  /** Closes every destination; outbound requests still in flight after `graceMs` fail with TRELLIS_CLOSED. */
  async close(graceMs?: number): Promise<void> {
    this.#table = new Map();
    this.#built.clear();
    for (const t of this.#retiring) clearTimeout(t);
    this.#retiring.clear();
    for (const t of this.#tickers.values()) t.close();
    this.#tickers.clear();
    const states = [...this.#states.values()];
    this.#states.clear();
    await Promise.all(states.map((s) => s.close(graceMs)));
  }
}
