/**
 * The `trellis:` name resolver for grpc-js: a channel to `trellis://<mesh-id>/<service>` gets
 * the destination's endpoints from the mesh's EndpointSet (static, DNS or registry discovery)
 * and follows its changes, and gets a service config selecting the `trellis` LB policy. The
 * target is what `mesh.grpc.target(service)` returns; `trellis:///<service>` (no mesh id) works
 * when exactly one mesh is open in the process.
 *
 * grpc-js instantiates resolvers itself, one per channel, from a process-wide registry: the
 * scheme is registered once (`ensureTrellisResolver`) and each resolver looks its mesh up in
 * `meshRegistry` by the target's authority. The default authority of such a channel (its
 * `:authority` header and the TLS name checked against the server's identity) is the service
 * name.
 *
 * Updates are pushed on the next tick after a change (never from inside grpc-js's own call into
 * `updateResolution`), and only when the endpoint list changed. Until discovery's first answer
 * nothing is pushed, so calls queue instead of failing.
 */
import { experimental, Metadata, status as Status } from '@grpc/grpc-js';
import type { ChannelOptions, ServiceConfig } from '@grpc/grpc-js';
import type { EndpointSet } from '../client/endpoint-set.js';
import { meshRegistry } from './registry.js';
import type { GrpcMeshSource } from './registry.js';
import { DESTINATION_ATTRIBUTE, TRELLIS_LB_POLICY } from './load-balancer.js';
import { ticketOf } from './pick-ticket.js';
import type { DestinationHandle } from './load-balancer.js';
import { byteOption, CHANNEL_REPLAY_BYTES, ReplayBudget } from './replay-budget.js';

type GrpcUri = experimental.GrpcUri;
type ResolverListener = experimental.ResolverListener;

export const TRELLIS_SCHEME = 'trellis';

/** `mesh-id` and service of a `trellis:` target; undefined for other targets. */
export function parseTrellisTarget(target: string): { mesh: string; service: string } | undefined {
  const m = /^trellis:(?:\/\/([^/]*)\/)?\/?([^/]+)$/.exec(target);
  if (m === null || m[2] === undefined) return undefined;
  return { mesh: m[1] ?? '', service: m[2] };
}

function serviceOf(target: GrpcUri): string {
  return target.path.replace(/^\/+/, '');
}

const SERVICE_CONFIG: ServiceConfig = Object.freeze({ loadBalancingConfig: [{ [TRELLIS_LB_POLICY]: {} }], methodConfig: [] }) as ServiceConfig;

type CallConfig = ReturnType<experimental.ConfigSelector['invoke']>;

/**
 * Every call's config on a `trellis:` channel, one frozen object. The service config above has no
 * `methodConfig` (no grpc-js timeout, retry or hedging policy: the mesh's own apply), and a
 * resolver's service config is the one grpc-js uses, so grpc-js's default config selector would
 * answer every call with this same content — as three new objects per call (the config, an empty
 * `pickInformation`, an empty filter list). grpc-js 1.14 only reads a CallConfig (status,
 * `methodConfig` policies, `pickInformation` into each pick, the filter factories copied into the
 * call's own stack); frozen, a write would throw rather than leak from one call into the next.
 * The picker gets what it needs per attempt from the PickTicket (pick-ticket.ts), not from here.
 */
const CALL_CONFIG: CallConfig = Object.freeze({
  methodConfig: Object.freeze({ name: Object.freeze([]) }),
  pickInformation: Object.freeze({}),
  status: Status.OK,
  dynamicFilterFactories: Object.freeze([]),
}) as unknown as CallConfig;

/**
 * The config selector the resolver hands to grpc-js with each result (grpc-js's
 * `CHANNEL_ARGS_CONFIG_SELECTOR_KEY` attribute), one per channel: the config above, and on the
 * call's pick ticket the channel's replay bounds, where a stream's relay reads them
 * (grpc-call.ts) — `grpc.per_rpc_retry_buffer_size` when the channel sets it, and the channel's
 * `ReplayBudget` (its `grpc.retry_buffer_size`, replay-budget.ts). grpc-js invokes it with the
 * call's metadata (whose options object is the ticket, by reference) when the call starts or the
 * resolver first answers — before it takes any of the call's messages.
 */
function channelSelector(perCall: number | undefined, budget: ReplayBudget): experimental.ConfigSelector {
  return Object.freeze({
    invoke: (_method: string, metadata: Metadata): CallConfig => {
      const ticket = ticketOf(metadata);
      if (ticket !== undefined) {
        ticket.retryBufferSize = perCall;
        ticket.replayBudget = budget;
      }
      return CALL_CONFIG;
    },
    unref: (): void => undefined,
  });
}

class TrellisResolver implements experimental.Resolver {
  readonly #mesh: string;
  readonly #service: string;
  readonly #listener: ResolverListener;
  #source: GrpcMeshSource | undefined;
  #unwatch: (() => void) | undefined;
  #lastKey: string | undefined;
  #lastSet: EndpointSet | undefined;
  #scheduled = false;
  #destroyed = false;
  readonly #selector: experimental.ConfigSelector;

  constructor(target: GrpcUri, listener: ResolverListener, options: ChannelOptions) {
    this.#mesh = target.authority ?? '';
    this.#service = serviceOf(target);
    this.#listener = listener;
    const total = byteOption(options['grpc.retry_buffer_size']) ?? CHANNEL_REPLAY_BYTES;
    this.#selector = channelSelector(byteOption(options['grpc.per_rpc_retry_buffer_size']), new ReplayBudget(total));
  }

  updateResolution(): void {
    if (this.#unwatch === undefined) {
      this.#source = meshRegistry.get(this.#mesh);
      this.#unwatch = this.#source?.watch((service) => {
        if (service === undefined || service === this.#service) this.#schedule();
      });
    }
    this.#lastKey = undefined; // grpc-js asked: answer even if nothing changed
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#destroyed) return;
    this.#scheduled = true;
    process.nextTick(() => {
      this.#scheduled = false;
      if (!this.#destroyed) this.#push();
    });
  }

  #fail(details: string): void {
    this.#lastKey = undefined;
    this.#listener(experimental.statusOrFromError({ code: Status.UNAVAILABLE, details, metadata: new Metadata() }), {}, null, details);
  }

  #push(): void {
    const source = this.#source;
    if (source === undefined) {
      this.#fail(this.#mesh === '' ? `trellis: target ${TRELLIS_SCHEME}:///${this.#service} needs exactly one open mesh in the process; use mesh.grpc.target('${this.#service}')` : `trellis: no open mesh ${this.#mesh} in this process (closed?)`);
      return;
    }
    const set = source.endpointSet(this.#service);
    if (set === undefined) {
      this.#fail(`trellis: ${this.#service} is not a configured service`);
      return;
    }
    if (!set.known) return; // discovery has not answered yet: calls wait
    const endpoints = set.endpoints().map((e) => e.endpoint);
    const key = endpoints.map((e) => e.id).sort().join(',');
    if (key === this.#lastKey && set === this.#lastSet) return;
    this.#lastKey = key;
    this.#lastSet = set;
    const handle: DestinationHandle = { service: this.#service, set, clock: source.clock };
    this.#listener(
      experimental.statusOrFromValue(endpoints.map((e) => ({ addresses: [{ host: e.host, port: e.port }] }))),
      { [DESTINATION_ATTRIBUTE]: handle, [experimental.CHANNEL_ARGS_CONFIG_SELECTOR_KEY]: this.#selector },
      experimental.statusOrFromValue(SERVICE_CONFIG),
      `trellis ${this.#service}: ${endpoints.length} endpoint(s) from ${set.sourceDescription}`,
    );
  }

  destroy(): void {
    this.#destroyed = true;
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  static getDefaultAuthority(target: GrpcUri): string {
    return serviceOf(target);
  }
}

let registered = false;

/** Registers the `trellis:` scheme with grpc-js, once per process (later calls do nothing). */
export function ensureTrellisResolver(): void {
  if (registered) return;
  registered = true;
  experimental.registerResolver(TRELLIS_SCHEME, TrellisResolver);
}
