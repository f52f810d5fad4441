/**
 * One unary gRPC call through the mesh: the object that is the call's state from the
 * application's `start` to its status, below the mesh's interceptor (as `StreamCall` is for
 * streams, stream-call.ts; what both share is grpc-call-base.ts), with one `UnaryAttempt` per try
 * that is the grpc-js listener of that try's call. It applies the destination's unary policy
 * (unary-core.ts) in the described order with no promise per layer, as
 * `src/client/outbound-call.ts` does for HTTP; the semantics are the promise
 * stack's (timeout-filter.ts, retry-filter.ts, breaker-adapter.ts, endpoint-filter.ts,
 * metrics-filter.ts, tracing-filter.ts, and the gRPC transport they ran over), which the gRPC tests pin down:
 *
 * - the deadline is the soonest of the call's own (`deadline` option, or its parent's), the
 *   ambient inbound one and the route timeout; each attempt carries it as `grpc-timeout`; past
 *   it the caller gets DEADLINE_EXCEEDED (TRELLIS_TIMEOUT) and the attempt is cancelled;
 * - a failed status is retried on another endpoint within attempts, budget, backoff and the
 *   deadline; a shed answer goes elsewhere at once without a budget token; when retries stop the
 *   caller gets the last status as it is, or the last error (wrapped in RetriesExhausted after
 *   several tries); only the final attempt's headers and message reach the application;
 * - a status grpc-js made itself for a caller's mistake (local-refusal.ts) is charged to no one;
 * - the caller's cancel ends the call with the caller's own status and is charged to no one.
 *
 * The metadata is copied once per call (the application's is never changed); the mesh's own
 * entries (trace context) are written straight into that copy (metadata-entries.ts), and what
 * the picker needs (endpoint, deadline) rides on the attempt's PickTicket (pick-ticket.ts), not
 * in the metadata; a retry sends a copy of its own.
 */
import type { InterceptorOptions, Metadata, NextCall, StatusObject } from '@grpc/grpc-js';
import type { Classification } from '../core/classify.js';
import { TimeoutError } from '../core/errors.js';
import type { RetryPolicyView } from '../client/retry-decision.js';
import type { LbEndpoint } from '../lb/lb-endpoint.js';
import { GrpcCallBase } from './grpc-call-base.js';
import type { UnaryCoreSource } from './grpc-call-base.js';
import { GrpcAttempt } from './grpc-attempt.js';
import type { GrpcResult, InterceptingCallInterface } from './grpc-call.js';
import { setOwn } from './metadata-entries.js';
import { attachTicket, refusalOf } from './pick-ticket.js';
import { grpcTimeout, GRPC_TIMEOUT_KEY, Status } from './status.js';
import type { GrpcRoutePolicy, GrpcUnaryCore } from './unary-core.js';

type Listener = Parameters<InterceptingCallInterface['start']>[1];
type MessageContext = Parameters<InterceptingCallInterface['sendMessageWithContext']>[0];

const PER_TRY_TIMEOUT: Classification = Object.freeze({ kind: 'failure', conditions: Object.freeze(['timeout']) });

/** One try of a unary call on one endpoint: the grpc-js listener of its call (grpc-attempt.ts keeps its bookkeeping). */
class UnaryAttempt extends GrpcAttempt {
  readonly #owner: UnaryCall;
  #headers: Metadata | undefined;
  #message: unknown;
  #hasMessage = false;

  constructor(owner: UnaryCall, n: number, load: LbEndpoint, ticket: number, start: number) {
    super(n, load, ticket, start);
    this.#owner = owner;
  }

  // grpc-js listener of the attempt's call.

  onReceiveMetadata(metadata: Metadata): void {
    if (!this.done) this.#headers = metadata;
  }

  onReceiveMessage(message: unknown): void {
    if (this.done) return;
    this.#message = message;
    this.#hasMessage = true;
  }

  onReceiveStatus(status: StatusObject): void {
    if (this.done) return;
    this.done = true;
    this.#owner.attemptStatus(this, { status, metadata: this.#headers, message: this.#message, hasMessage: this.#hasMessage, injected: false, refusal: refusalOf(this.pick, status) });
  }

  /** The per-try timeout passed. */
  onDeadline(): void {
    this.#owner.perTryTimeout(this);
  }
}

/** A unary call below the mesh's interceptor (see the file comment). */
export class UnaryCall extends GrpcCallBase<UnaryAttempt> implements InterceptingCallInterface {
  #message: unknown;
  /** A call below, already opened (the interceptor's target probe): attempt 1's, when it can be. */
  #spare: InterceptingCallInterface | undefined;
  /** The spare was opened with the call's own options, deadline included (grpc-js armed a timer for it). */
  readonly #spareTimed: boolean;
  /** The channel runs the Trellis picker, which reads the attempt's PickTicket and writes `grpc-timeout` from it. */
  readonly #picker: boolean;

  constructor(source: UnaryCoreSource, service: string, options: InterceptorOptions, nextCall: NextCall, spare?: InterceptingCallInterface, picker = true, spareTimed = true) {
    super(source, service, options, nextCall);
    this.#spare = spare;
    this.#picker = picker;
    this.#spareTimed = spareTimed;
  }

  // The application's side (grpc-js InterceptingCallInterface; cancel, peer and auth context are the base's).

  start(metadata: Metadata, listener?: Listener): void {
    this.begin(metadata, listener);
  }

  sendMessageWithContext(context: MessageContext, message: unknown): void {
    this.#message = message;
    context.callback?.();
  }

  sendMessage(message: unknown): void {
    this.#message = message;
  }

  halfClose(): void {
    this.runNow();
  }

  startRead(): void {
    // A unary response is read by the attempt's call by itself.
  }

  // What a unary call does its own way (grpc-call-base.ts).

  protected timeoutOf(route: GrpcRoutePolicy): number {
    return route.timeoutMs;
  }

  protected policyOf(route: GrpcRoutePolicy): RetryPolicyView {
    return route;
  }

  protected replayable(): boolean {
    return true;
  }

  /** The attempt, in the route's per-try queue when it has one that ends before the deadline. */
  protected newAttempt(n: number, picked: LbEndpoint, ticket: number, now: number): UnaryAttempt {
    const a = new UnaryAttempt(this, n, picked, ticket, now);
    const perTry = (this.route as GrpcRoutePolicy).perTry;
    if (perTry !== undefined && (this.deadline === undefined || now + perTry.durationMs < this.deadline)) perTry.add(a, now);
    return a;
  }

  /**
   * Opens the attempt's call below the interceptor and sends the request. The chosen endpoint and
   * the deadline travel to the Trellis picker on the attempt's `PickTicket` (pick-ticket.ts), and
   * the picker sends the deadline as `grpc-timeout`; grpc-js is given none, so it arms no timer of
   * its own: the call's deadline entry (route or `anyDeadlines` queue) ends the attempt. On a
   * channel without the picker the call writes `grpc-timeout` itself (the time left now).
   */
  protected open(a: UnaryAttempt, md: Metadata): void {
    const d = this.deadline;
    const o = this.options;
    try {
      if (this.#picker) {
        const clock = (this.core as GrpcUnaryCore).clock;
        a.pick = attachTicket(md, a.load.endpoint.id, d === undefined ? undefined : clock.wall() + (d - clock.now()));
      } else if (d !== undefined) {
        const clock = (this.core as GrpcUnaryCore).clock;
        setOwn(md, GRPC_TIMEOUT_KEY, grpcTimeout(d - clock.now()));
      }
      let call = this.#spare;
      this.#spare = undefined;
      if (call !== undefined && o.deadline !== undefined && this.#spareTimed) {
        // Opened with the application's deadline, for which grpc-js arms a timer: not this one.
        call.cancelWithStatus(Status.CANCELLED, 'trellis: target probe');
        call = undefined;
      }
      call ??= this.nextCall(o.deadline === undefined ? o : { ...o, deadline: undefined });
      a.call = call;
      call.start(md, a);
      if (a.done) return;
      call.sendMessage(this.#message);
      call.halfClose();
    } catch (e) {
      if (a.done) return;
      a.done = true;
      this.attemptError(a, e instanceof Error ? e : new Error(String(e)), undefined, false);
    }
  }

  /** Attempt `a`'s per-try timeout passed (the route's per-try queue calls this). */
  perTryTimeout(a: UnaryAttempt): void {
    if (a.done || this.ended) return;
    const route = this.route as GrpcRoutePolicy;
    const err = new TimeoutError(`per-try timeout of ${route.perTryTimeoutMs ?? 0} ms expired on attempt ${a.n}`, { service: this.service, route: route.name, endpoint: a.load.id, retryable: true });
    a.cancel(err);
    this.attemptError(a, err, PER_TRY_TIMEOUT, true);
  }

  /** The caller gets the final attempt's headers, message and status. */
  protected deliver(res: GrpcResult): void {
    const l = this.listener;
    if (l === undefined) return;
    if (res.metadata !== undefined) l.onReceiveMetadata?.(res.metadata);
    if (res.hasMessage) l.onReceiveMessage?.(res.message);
    l.onReceiveStatus?.(res.status);
  }

  /** The spare call below, when attempt 1 did not take it. */
  protected release(): void {
    const spare = this.#spare;
    if (spare === undefined) return;
    this.#spare = undefined;
    spare.cancelWithStatus(Status.CANCELLED, 'trellis: target probe');
  }
}
