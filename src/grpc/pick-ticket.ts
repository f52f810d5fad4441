/**
 * What the mesh's client side tells the Trellis picker about one attempt: the endpoint its
 * balancer chose (so retries avoid earlier endpoints, splits pick the subset, and the endpoint
 * level measures the call it placed) and, for a unary call, the deadline the picker sends as
 * `grpc-timeout`. It travels as the attempt metadata's `MetadataOptions` object, not as
 * metadata entries.
 *
 * Why that object (grpc-js 1.14, read in its source): between the interceptor and the picker
 * grpc-js clones the call's metadata twice — `ResolvingCall.start` and, at every pick,
 * `LoadBalancingCall.doPick` — and the picker's `PickArgs` carry only that clone and the call
 * config's `pickInformation`. `Metadata.clone()` copies every entry (a new value list each) but
 * hands the options object over by reference (`new Metadata(this.options)`), so an object set
 * with `setOptions` reaches every pick of the attempt, re-picks after a QUEUE included, for
 * nothing. Entries cost ~0.5 KB per call through the two clones and a Map grown then shrunk,
 * and had to be stripped before the wire. The resolver's config selector (the other per-call
 * hook) is invoked with the ResolvingCall's clone, so it could only find the attempt through
 * this same object, and its `pickInformation` is typed as a string map.
 *
 * grpc-js reads `waitForReady` from the options (the others are declared, unused in 1.14): a
 * ticket copies the application's four fields, so the call behaves as the application set it.
 * The options object is never sent; a plain channel (no Trellis picker) ignores it.
 *
 * The picker knows a ticket by a `Symbol.for` brand, not `instanceof`: grpc-js keeps the first
 * `trellis` LB policy registered in the process, so with the ESM and CommonJS builds both loaded
 * one copy's picker reads the other copy's tickets.
 */
import { status as Status } from '@grpc/grpc-js';
import type { Metadata, MetadataOptions, StatusObject } from '@grpc/grpc-js';
import type { ReplayBudget } from './replay-budget.js';

const kPickTicket = Symbol.for('trellis.grpc.pickTicket');

/**
 * Why the picker refused an attempt before anything of it left the process: no connection to the
 * chosen endpoint (`connect-failure`: another endpoint may take it, a stream may be replayed), or
 * a connection to a peer that is not the destination's identity (`peer-identity`: not retried).
 */
export type PickRefusalKind = 'connect-failure' | 'peer-identity';

/** What the picker wrote on the ticket of an attempt it refused: why, and the status it ended the call with. */
export interface PickRefusal {
  readonly kind: PickRefusalKind;
  readonly details: string;
}

export class PickTicket implements MetadataOptions {
  readonly [kPickTicket] = true;
  readonly idempotentRequest: boolean | undefined;
  readonly waitForReady: boolean | undefined;
  readonly cacheableRequest: boolean | undefined;
  readonly corked: boolean | undefined;
  /** The endpoint id (`host:port`) the attempt goes to. */
  readonly endpoint: string;
  /** The attempt's deadline (wall-clock ms) for the picker to send as `grpc-timeout`; undefined: grpc-js sends its own, or none. */
  readonly deadline: number | undefined;
  /**
   * The channel's `grpc.per_rpc_retry_buffer_size`, written by the `trellis:` resolver's config
   * selector of a channel that sets it (resolver.ts); read by a stream's relay (grpc-call.ts).
   */
  retryBufferSize: number | undefined = undefined;
  /** The channel's replay total (`grpc.retry_buffer_size`), written by the same selector; read by a stream's relay. */
  replayBudget: ReplayBudget | undefined = undefined;
  /**
   * Written by the Trellis picker when it refused the attempt (load-balancer.ts). This, not a
   * status's trailers, is how the mesh knows that nothing was sent: trailers come from the wire
   * too, and a server must not be able to claim a refusal (a stream it has read would be replayed).
   */
  refusal: PickRefusal | undefined = undefined;

  constructor(app: MetadataOptions, endpoint: string, deadline: number | undefined) {
    this.idempotentRequest = app.idempotentRequest;
    this.waitForReady = app.waitForReady;
    this.cacheableRequest = app.cacheableRequest;
    this.corked = app.corked;
    this.endpoint = endpoint;
    this.deadline = deadline;
  }
}

/**
 * Gives an attempt's metadata (the mesh's own copy, never the application's) its ticket; the
 * application's options are kept in it.
 *
 * @example
 * attachTicket(md, picked.endpoint.id, undefined); // before call.start(md, listener)
 */
export function attachTicket(md: Metadata, endpoint: string, deadline: number | undefined): PickTicket {
  const ticket = new PickTicket(md.getOptions(), endpoint, deadline);
  md.setOptions(ticket);
  return ticket;
}

/**
 * Why the picker refused the attempt of `ticket` that ended with `status`, or undefined when it
 * did not (then `status` is whatever the server, or grpc-js, said). The status must be the one
 * the picker ended the call with: UNAVAILABLE with the refusal's details.
 */
export function refusalOf(ticket: PickTicket | undefined, status: StatusObject): PickRefusalKind | undefined {
  const r = ticket?.refusal;
  return r !== undefined && status.code === Status.UNAVAILABLE && status.details === r.details ? r.kind : undefined;
}

/** The ticket the picker finds in a pick's metadata, or undefined (a call made without the mesh's interceptor). */
export function ticketOf(md: Metadata): PickTicket | undefined {
  const o = md.getOptions() as Partial<PickTicket> | undefined;
  return o?.[kPickTicket] === true ? (o as PickTicket) : undefined;
}
