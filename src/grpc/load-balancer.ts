/**
 * The `trellis` load-balancing policy for grpc-js: one subchannel (one HTTP/2 connection) per
 * endpoint of the destination, all kept connected, and a Picker that sends each call where the
 * destination's Trellis balancer says (ewma, least-request, round-robin, random, ring-hash),
 * skipping endpoints that outlier detection ejected. grpc-js's own shape is kept: the policy
 * publishes an immutable Picker whenever a connection changes state; `pick()` is synchronous.
 *
 * Two ways a call is placed:
 * - With the mesh's client interceptors (the usual case), the interceptor's stack has already
 *   chosen the endpoint per attempt (so retries avoid earlier endpoints, route splits pick the
 *   subset, and the endpoint level measures load, latency and failures). The choice arrives as
 *   the attempt's `PickTicket` (pick-ticket.ts: the metadata's options object, which grpc-js
 *   passes through its clones by reference; nothing in the metadata, nothing to strip) and the
 *   picker sends the call on that endpoint's connection: queued while it connects, refused with
 *   UNAVAILABLE when the connection failed, the refusal written on the ticket (never in the
 *   status's trailers, which a server could send too), so the retry layer moves on and a stream
 *   is replayed (nothing was sent). A unary call's deadline arrives on the same ticket
 *   and leaves as `grpc-timeout`, computed at the pick (as grpc-js computes its own).
 * - Without them (a channel built with the target but not the interceptors), the picker picks
 *   itself with the destination's balancer among connected endpoints (a ring-hash key comes from
 *   `x-trellis-route-key` metadata) and does the endpoint level's accounting through grpc-js's
 *   `onCallStarted`/`onCallEnded`: outstanding calls, latency and outlier reports.
 *
 * Signatures are grpc-js 1.14's (`updateAddressList(StatusOr<Endpoint[]>, config, options,
 * resolutionNote)`; resolver attributes arrive merged into `options`). Each endpoint is a
 * grpc-js `LeafLoadBalancer` (a pick-first over its one address), as grpc-js's round_robin
 * does, so reconnection backoff and subchannel sharing are grpc-js's own.
 */
import { connectivityState as ConnectivityState, experimental, Metadata, status as Status } from '@grpc/grpc-js';
import type { ChannelOptions } from '@grpc/grpc-js';
import type { Clock } from '../core/clock.js';
import type { EndpointSet } from '../client/endpoint-set.js';
import type { LbEndpoint } from '../lb/lb-endpoint.js';
import { connectErrors, describeConnectFailure } from './connect-failure.js';
import { setOwn } from './metadata-entries.js';
import { isLocalRefusal } from './local-refusal.js';
import { ticketOf } from './pick-ticket.js';
import type { PickRefusalKind, PickTicket } from './pick-ticket.js';
import { ERROR_KEY, FAILURE_CODES, grpcTimeout, GRPC_TIMEOUT_KEY, ROUTE_KEY } from './status.js';

type Picker = experimental.Picker;
type PickArgs = experimental.PickArgs;
type PickResult = experimental.PickResult;
type GrpcEndpoint = experimental.Endpoint;
const { PickResultType } = experimental;

export const TRELLIS_LB_POLICY = 'trellis';

/**
 * Resolver attribute carrying the destination to the policy. The prefix keeps it out of the
 * subchannel arguments (grpc-js's SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX), so connections stay
 * shared between channels.
 */
export const DESTINATION_ATTRIBUTE = `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.trellis.destination`;

/** What the resolver tells the policy about its destination. */
export interface DestinationHandle {
  readonly service: string;
  readonly set: EndpointSet;
  readonly clock: Clock;
}

class TrellisLbConfig implements experimental.TypedLoadBalancingConfig {
  getLoadBalancerName(): string {
    return TRELLIS_LB_POLICY;
  }
  toJsonObject(): object {
    return { [TRELLIS_LB_POLICY]: {} };
  }
  static createFromJson(_obj: unknown): TrellisLbConfig {
    return new TrellisLbConfig();
  }
}

/** `host:port` as discovery spells endpoint ids (IPv6 in brackets). */
export function addressId(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function endpointId(e: GrpcEndpoint): string {
  const a = e.addresses[0];
  if (a === undefined) return '';
  return 'port' in a ? addressId(a.host, a.port) : a.path;
}

const QUEUE: PickResult = Object.freeze({ pickResultType: PickResultType.QUEUE, subchannel: null, status: null, onCallStarted: null, onCallEnded: null });

/**
 * The picker's refusal of a call: UNAVAILABLE with `details`. With `ticket` (an attempt of the
 * mesh's interceptor) the refusal's kind is written on it, where the attempt reads it (pick-ticket.ts).
 */
function refused(details: string, kind: PickRefusalKind | undefined, ticket: PickTicket | undefined, drop: boolean, errorCode?: string): PickResult {
  const metadata = new Metadata();
  if (errorCode !== undefined) metadata.set(ERROR_KEY, errorCode);
  if (ticket !== undefined && kind !== undefined) ticket.refusal = { kind, details };
  return { pickResultType: drop ? PickResultType.DROP : PickResultType.TRANSIENT_FAILURE, subchannel: null, status: { code: Status.UNAVAILABLE, details, metadata }, onCallStarted: null, onCallEnded: null };
}

type Child = experimental.LeafLoadBalancer;

class TrellisPicker implements Picker {
  readonly #children: ReadonlyMap<string, Child>;
  readonly #notReady: ReadonlySet<string>;
  readonly #anyReady: boolean;
  readonly #handle: DestinationHandle | undefined;
  readonly #errors: ReadonlyMap<string, string>;

  constructor(children: ReadonlyMap<string, Child>, handle: DestinationHandle | undefined, errors: ReadonlyMap<string, string>) {
    this.#children = children;
    this.#errors = errors;
    this.#handle = handle;
    const notReady = new Set<string>();
    for (const [id, c] of children) if (c.getConnectivityState() !== ConnectivityState.READY) notReady.add(id);
    this.#notReady = notReady;
    this.#anyReady = notReady.size < children.size;
  }

  pick(args: PickArgs): PickResult {
    const ticket = ticketOf(args.metadata);
    if (ticket === undefined) return this.#balanced(args);
    const deadline = ticket.deadline;
    // Each pick's metadata is a fresh clone (grpc-js's doPick): a re-pick writes it again, from its own moment.
    if (deadline !== undefined) setOwn(args.metadata, GRPC_TIMEOUT_KEY, grpcTimeout(deadline - (this.#handle?.clock.wall() ?? Date.now())));
    return this.#placed(ticket, args);
  }

  #placed(ticket: PickTicket, args: PickArgs): PickResult {
    const id = ticket.endpoint;
    const child = this.#children.get(id);
    if (child === undefined) return refused(`trellis: endpoint ${id} is not (or no longer) an endpoint of this channel`, 'connect-failure', ticket, true);
    switch (child.getConnectivityState()) {
      case ConnectivityState.READY:
        return child.getPicker().pick(args);
      case ConnectivityState.TRANSIENT_FAILURE: {
        // Say why (a certificate that is not the destination's, a foreign CA...), not only where.
        const f = describeConnectFailure(this.#handle?.service ?? 'the destination', id, this.#errors.get(id));
        return f.identity ? refused(f.details, 'peer-identity', ticket, true, 'TRELLIS_PEER_IDENTITY') : refused(f.details, 'connect-failure', ticket, true);
      }
      case ConnectivityState.IDLE:
        child.exitIdle();
        return QUEUE;
      default:
        return QUEUE;
    }
  }

  #balanced(args: PickArgs): PickResult {
    const handle = this.#handle;
    if (!this.#anyReady || handle === undefined) {
      for (const c of this.#children.values()) if (c.getConnectivityState() === ConnectivityState.IDLE) c.exitIdle();
      return this.#children.size === 0 ? refused('trellis: no endpoints', undefined, undefined, false) : QUEUE;
    }
    const key = args.metadata.get(ROUTE_KEY)[0];
    if (key !== undefined) args.metadata.remove(ROUTE_KEY);
    const picked = handle.set.backend(undefined).balancer.pick({ key: typeof key === 'string' ? key : undefined, avoid: this.#notReady });
    let child = picked === undefined ? undefined : this.#children.get(picked.id);
    if (child === undefined || child.getConnectivityState() !== ConnectivityState.READY) {
      // Every balanced endpoint is down or ejected: any connected one beats failing.
      for (const c of this.#children.values()) if (c.getConnectivityState() === ConnectivityState.READY) child = c;
      if (child === undefined) return QUEUE;
      return child.getPicker().pick(args);
    }
    return accounted(child.getPicker().pick(args), picked as LbEndpoint, handle);
  }
}

/** The endpoint level's accounting for a call the picker placed itself. */
function accounted(result: PickResult, load: LbEndpoint, handle: DestinationHandle): PickResult {
  if (result.pickResultType !== PickResultType.COMPLETE) return result;
  const { clock, set } = handle;
  let start = 0;
  const started = result.onCallStarted;
  const ended = result.onCallEnded;
  return {
    ...result,
    onCallStarted: () => {
      start = clock.now();
      load.outstanding++;
      started?.();
    },
    onCallEnded: (code, details, metadata) => {
      load.outstanding--;
      const now = clock.now();
      // A call grpc-js refused itself (never sent) says nothing about the endpoint.
      const failed = FAILURE_CODES.has(code) && !isLocalRefusal(code, details);
      if (code === Status.OK || failed) {
        load.observe(now - start, now);
        set.report(load.id, !failed);
      }
      ended?.(code, details, metadata);
    },
  };
}

export class TrellisLoadBalancer implements experimental.LoadBalancer {
  readonly #helper: experimental.ChannelControlHelper;
  #children = new Map<string, Child>();
  /** The last connection error grpc-js reported per endpoint, until it connects. */
  readonly #errors = new Map<string, string>();
  #handle: DestinationHandle | undefined;
  #paused = false;
  #lastError: string | null = null;

  constructor(helper: experimental.ChannelControlHelper) {
    this.#helper = helper;
  }

  /** A child's helper: records its own last error, so a refusal names the endpoint's reason. */
  #helperFor(id: string): experimental.ChannelControlHelper {
    return experimental.createChildChannelControlHelper(this.#helper, {
      updateState: (state, _picker, errorMessage) => {
        if (errorMessage !== null) {
          const message = connectErrors.failed(this.#errorKey(id), errorMessage);
          this.#lastError = message;
          this.#errors.set(id, message);
        } else if (state === ConnectivityState.READY) {
          this.#errors.delete(id);
          connectErrors.connected(this.#errorKey(id));
        }
        this.#publish();
      },
    });
  }

  /** Per destination and endpoint: two services may reach one address with different credentials. */
  #errorKey(id: string): string {
    return `${this.#handle?.service ?? ''} ${id}`;
  }

  updateAddressList(endpoints: experimental.StatusOr<GrpcEndpoint[]>, config: experimental.TypedLoadBalancingConfig, given: ChannelOptions, resolutionNote: string): boolean {
    if (!(config instanceof TrellisLbConfig)) return false;
    this.#handle = (given[DESTINATION_ATTRIBUTE] as DestinationHandle | undefined) ?? this.#handle;
    // The resolver's config selector arrives merged into the options: it is the channel's, not a
    // connection's, so it stays out of theirs (a channel that sets `grpc.per_rpc_retry_buffer_size`
    // has a selector of its own, which would keep its connections from being shared).
    const { [experimental.CHANNEL_ARGS_CONFIG_SELECTOR_KEY]: _selector, ...options } = given;
    if (!endpoints.ok) {
      if (this.#children.size === 0) this.#helper.updateState(ConnectivityState.TRANSIENT_FAILURE, new experimental.UnavailablePicker(endpoints.error), endpoints.error.details);
      return true;
    }
    this.#paused = true;
    const next = new Map<string, Child>();
    for (const e of endpoints.value) {
      const id = endpointId(e);
      const cur = this.#children.get(id);
      if (cur !== undefined) {
        next.set(id, cur);
        continue;
      }
      const child = new experimental.LeafLoadBalancer(e, this.#helperFor(id), options, resolutionNote);
      next.set(id, child);
      child.startConnecting();
    }
    for (const [id, c] of this.#children) {
      if (next.has(id)) continue;
      c.destroy();
      this.#errors.delete(id);
    }
    this.#children = next;
    this.#paused = false;
    this.#publish();
    return true;
  }

  /** Publishes the aggregate state and a new picker; keeps every endpoint connected. */
  #publish(): void {
    if (this.#paused) return;
    let ready = 0;
    let connecting = 0;
    let failed = 0;
    for (const c of this.#children.values()) {
      const s = c.getConnectivityState();
      if (s === ConnectivityState.READY) ready++;
      else if (s === ConnectivityState.CONNECTING) connecting++;
      else if (s === ConnectivityState.TRANSIENT_FAILURE) failed++;
    }
    const picker = new TrellisPicker(new Map(this.#children), this.#handle, new Map(this.#errors));
    if (ready > 0) this.#helper.updateState(ConnectivityState.READY, picker, null);
    else if (connecting > 0) this.#helper.updateState(ConnectivityState.CONNECTING, picker, null);
    else if (failed > 0) {
      const message = `trellis: no connection to any endpoint of ${this.#handle?.service ?? 'the destination'}; last error: ${this.#lastError ?? 'unknown'}`;
      this.#helper.updateState(ConnectivityState.TRANSIENT_FAILURE, picker, message);
    } else this.#helper.updateState(ConnectivityState.IDLE, picker, null);
    for (const c of this.#children.values()) if (c.getConnectivityState() === ConnectivityState.IDLE) c.exitIdle();
  }

  exitIdle(): void {
    for (const c of this.#children.values()) c.exitIdle();
  }

  resetBackoff(): void {
    // Backoff lives in each endpoint's pick-first child.
  }

  destroy(): void {
    for (const c of this.#children.values()) c.destroy();
    this.#children.clear();
  }

  getTypeName(): string {
    return TRELLIS_LB_POLICY;
  }
}

/** Registers the `trellis` policy with grpc-js, once per process. */
export function ensureTrellisLoadBalancer(): void {
  if (experimental.isLoadBalancerNameRegistered(TRELLIS_LB_POLICY)) return;
  experimental.registerLoadBalancerType(TRELLIS_LB_POLICY, TrellisLoadBalancer, TrellisLbConfig);
}
