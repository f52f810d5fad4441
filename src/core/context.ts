/**
 * CallContext: what a request carries through the layers besides the request itself —
 * destination, route, attempt number, deadline, cancellation, the chosen endpoint, and
 * per-call wishes (idempotency, ring-hash key). Filters read and set its fields; a retry
 * filter forks it per attempt so attempts never see each other's endpoint or signal.
 */
import type { Endpoint } from '../discovery/endpoint.js';
import type { LbEndpoint } from '../lb/lb-endpoint.js';
import type { CallSignal } from './call-signal.js';

export class CallContext {
  /** Destination service name. */
  readonly service: string;
  /** Name of the matched route, once routing ran (`default` when none matched by name). */
  route: string | undefined;
  /** 1-based attempt number; 1 until a retry filter forks the context. */
  attempt = 1;
  /** Absolute deadline on the monotonic clock (ms), or undefined for none. */
  deadline: number | undefined;
  /** Cancels the call (caller abort, overall timeout) or this attempt (per-try timeout). */
  signal: CallSignal | undefined;
  /** The endpoint the balancer chose for this attempt. */
  endpoint: Endpoint | undefined;
  /** The balancer's load record of that endpoint (outstanding requests, latency). */
  load: LbEndpoint | undefined;
  /** Endpoint ids earlier attempts used, so a retry goes elsewhere when it can. */
  avoid: ReadonlySet<string> | undefined;
  /** Whether the request may be sent twice (method semantics, or the caller said so). */
  idempotent: boolean;
  /** Key for consistent-hash balancing (`routeKey` option). */
  routeKey: string | undefined;
  /** Endpoint-label selector for the backend (set by routing; undefined = every endpoint). */
  subset: Readonly<Record<string, string>> | undefined;
  /**
   * Set by the retry filter on an attempt that would be retried if the connection reset: the
   * transport may then finish a small response before resolving, so a reset mid-body fails the
   * attempt (retried) instead of reaching the caller half-read.
   */
  retriesReset: boolean;

  constructor(service: string, idempotent: boolean) {
    this.service = service;
    this.route = undefined;
    this.deadline = undefined;
    this.signal = undefined;
    this.endpoint = undefined;
    this.load = undefined;
    this.avoid = undefined;
    this.idempotent = idempotent;
    this.routeKey = undefined;
    this.subset = undefined;
    this.retriesReset = false;
  }

  /** A copy for one attempt: same call fields, fresh endpoint. */
  fork(): CallContext {
    const c = new CallContext(this.service, this.idempotent);
    c.route = this.route;
    c.attempt = this.attempt;
    c.deadline = this.deadline;
    c.signal = this.signal;
    c.avoid = this.avoid;
    c.routeKey = this.routeKey;
    c.subset = this.subset;
    return c;
  }
}
