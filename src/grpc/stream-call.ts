/**
 * One streaming gRPC call through the mesh (client-, server- or bidi-streaming): the object that
 * is the call's state from the application's `start` to its status, below the mesh's
 * interceptor, with one `StreamAttempt` per try that is the grpc-js listener of that try's call.
 * It runs the destination's compiled route policies (unary-core.ts) as a unary call does
 * (unary-call.ts; what both share is grpc-call-base.ts): route match, fault, rate limits,
 * adaptive concurrency, breaker admit/report, split, balancer, tracing, endpoint accounting,
 * attempt and logical-call metrics, with no promise per layer; what differs is what a stream is:
 *
 * - no route timeout: a long-lived stream is bounded only by its own deadline (`deadline`
 *   option, or its parent's) and the ambient inbound one. The deadline waits in the mesh's
 *   `anyDeadlines` queue; each attempt carries it as `grpc-timeout` — on a `trellis:` channel on
 *   the attempt's PickTicket (the picker writes it at the pick), on another channel written by
 *   the call (the time left now) — and grpc-js is given no deadline, so it arms no timer per
 *   stream. Past it the application gets DEADLINE_EXCEEDED (TRELLIS_TIMEOUT) and the attempt is
 *   cancelled;
 * - gRPC's transparent retry only: an attempt the picker refused before anything left the
 *   process (`connect-failure`: no connection to the chosen endpoint) is played again on another
 *   endpoint while the `StreamRelay` can replay it (grpc-call.ts: `rewind`), within the route's
 *   attempts (at least `TRANSPARENT_ATTEMPTS`), backoff, the shared retry budget and the
 *   deadline; any other status ends the call as it is;
 * - messages flow live: the relay queues what the application sends or asks to read until an
 *   attempt's call is open, then forwards; the first response headers or message commit the
 *   relay (and the stream) to that attempt and go straight to the application. A client-streaming
 *   call's single response (headers, message) is held until its status, as grpc-js does;
 * - a call with a request stream starts at `start()`; a server-streaming call (whose client
 *   sends one message) at `halfClose()`;
 * - the logical call's metrics are recorded once, at its status.
 *
 * The caller's cancel ends the call with the caller's own status and is charged to no one; a
 * parent server call's cancel is followed when propagated. An answer the mesh makes at once
 * (no such service, no route, refused) is delivered on a microtask, never inside the
 * application's `start` or `halfClose`.
 */
import type { InterceptorOptions, Metadata, NextCall, StatusObject } from '@grpc/grpc-js';
import type { Classification } from '../core/classify.js';
import type { RetryPolicyView } from '../client/retry-decision.js';
import type { LbEndpoint } from '../lb/lb-endpoint.js';
import { GrpcCallBase } from './grpc-call-base.js';
import type { UnaryCoreSource } from './grpc-call-base.js';
import { GrpcAttempt } from './grpc-attempt.js';
import { StreamRelay } from './grpc-call.js';
import type { GrpcResult, InterceptingCallInterface, StreamSink } from './grpc-call.js';
import { setOwn } from './metadata-entries.js';
import { attachTicket, refusalOf } from './pick-ticket.js';
import type { PickTicket } from './pick-ticket.js';
import { parseTrellisTarget } from './resolver.js';
import { grpcTimeout, GRPC_TIMEOUT_KEY } from './status.js';
import type { GrpcRoutePolicy, GrpcUnaryCore } from './unary-core.js';

type Listener = Parameters<InterceptingCallInterface['start']>[1];
type MessageContext = Parameters<InterceptingCallInterface['sendMessageWithContext']>[0];

/** decideRetry's reason for stopping when the deadline is too close for the backoff (retry-decision.ts). */
const DEADLINE_STOP = 'deadline leaves no time for another attempt';

// The last channel target seen and whether it runs the Trellis picker (an application has few channels).
let lastTarget = '';
let lastPicker = false;

/** Whether a call opened below, not yet started, belongs to a `trellis:` channel (its `getPeer()` is the channel's target). */
function onPickerChannel(call: InterceptingCallInterface): boolean {
  const target = call.getPeer();
  if (target !== lastTarget) {
    lastTarget = target;
    lastPicker = parseTrellisTarget(target) !== undefined;
  }
  return lastPicker;
}

/** One try of a stream on one endpoint: the grpc-js listener of its call (grpc-attempt.ts keeps its bookkeeping). */
class StreamAttempt extends GrpcAttempt {
  readonly #owner: StreamCall;
  readonly #relay: StreamRelay;
  /** Whether response headers and messages go to the application as they come (a response stream). */
  readonly #live: boolean;
  #headers: Metadata | undefined;
  #message: unknown;
  #hasMessage = false;

  constructor(owner: StreamCall, relay: StreamRelay, live: boolean, n: number, load: LbEndpoint, ticket: number, start: number) {
    super(n, load, ticket, start);
    this.#owner = owner;
    this.#relay = relay;
    this.#live = live;
  }

  // grpc-js listener of the attempt's call.

  onReceiveMetadata(metadata: Metadata): void {
    if (this.done) return;
    if (this.#live) {
      // The application sees the server's answer: the stream is this attempt's for good.
      this.#relay.commit();
      this.#relay.sink.onReceiveMetadata(metadata);
    } else this.#headers = metadata;
  }

  // A unary response (a client stream's) is held until the status; grpc-js hands it over (or
  // null for none) just before the status, so it commits nothing.
  onReceiveMessage(message: unknown): void {
    if (this.done) return;
    if (this.#live) {
      this.#relay.commit();
      this.#relay.sink.onReceiveMessage(message);
    } else {
      this.#message = message;
      this.#hasMessage = true;
    }
  }

  onReceiveStatus(status: StatusObject): void {
    if (this.done) return;
    this.done = true;
    // The picker refused it (its ticket says so; a server's trailers cannot): nothing reached a
    // server, so keep the stream for another attempt (the call decides).
    const refusal = refusalOf(this.pick, status);
    const relay = this.#relay;
    if (!(refusal === 'connect-failure' && relay.rewind())) relay.detach();
    this.#owner.attemptStatus(this, { status, metadata: this.#headers, message: this.#message, hasMessage: this.#hasMessage, injected: false, refusal });
  }

  /** Streams have no per-try timeout. */
  onDeadline(): void {
    // Never in a per-try queue.
  }
}

/** A streaming call below the mesh's interceptor (see the file comment). */
export class StreamCall extends GrpcCallBase<StreamAttempt> implements InterceptingCallInterface, StreamSink {
  readonly #requestStream: boolean;
  readonly #responseStream: boolean;
  /** True: the channel is a `trellis:` one; undefined: read from the first attempt's call. */
  readonly #picker: boolean | undefined;
  #message: unknown;
  #relay: StreamRelay | undefined;

  /** `picker`: true when the channel is known to be a `trellis:` one, undefined to read it from the attempt's call. */
  constructor(source: UnaryCoreSource, service: string, options: InterceptorOptions, nextCall: NextCall, picker: boolean | undefined) {
    super(source, service, options, nextCall);
    this.#picker = picker;
    this.#requestStream = options.method_definition.requestStream;
    this.#responseStream = options.method_definition.responseStream;
  }

  // The application's side (grpc-js InterceptingCallInterface; cancel, peer and auth context are the base's).

  start(metadata: Metadata, listener?: Listener): void {
    if (!this.begin(metadata, listener)) return;
    this.#relay = new StreamRelay(this, this.options.method_definition.requestSerialize);
    if (this.#requestStream) this.runNow();
  }

  sendMessageWithContext(context: MessageContext, message: unknown): void {
    if (this.#requestStream) {
      this.#relay?.send(context, message);
      return;
    }
    this.#message = message;
    context.callback?.();
  }

  sendMessage(message: unknown): void {
    this.sendMessageWithContext({}, message);
  }

  halfClose(): void {
    if (this.#requestStream) this.#relay?.halfClose();
    else this.runNow();
  }

  startRead(): void {
    // A unary response is read by the attempt's call by itself.
    if (this.#responseStream) this.#relay?.startRead();
  }

  // The relay's sink: response headers and messages of a response stream, as they arrive.

  onReceiveMetadata(metadata: Metadata): void {
    this.listener?.onReceiveMetadata?.(metadata);
  }

  onReceiveMessage(message: unknown): void {
    this.listener?.onReceiveMessage?.(message);
  }

  // What a stream does its own way (grpc-call-base.ts).

  /** No route timeout: a long-lived stream is bounded only by its own and the propagated deadline. */
  protected timeoutOf(): number {
    return 0;
  }

  /** gRPC's transparent retry only. */
  protected policyOf(route: GrpcRoutePolicy): RetryPolicyView {
    return route.transparent;
  }

  protected replayable(): boolean {
    return this.#relay?.replayable ?? true;
  }

  protected newAttempt(n: number, picked: LbEndpoint, ticket: number, now: number): StreamAttempt {
    return new StreamAttempt(this, this.#relay as StreamRelay, this.#responseStream, n, picked, ticket, now);
  }

  /**
   * Opens the attempt's call below the interceptor (without a deadline: grpc-js arms no timer;
   * the call's entry in `anyDeadlines` ends it), gives it the chosen endpoint and the deadline —
   * on its PickTicket on a `trellis:` channel, whose picker writes `grpc-timeout`, else as
   * `grpc-timeout` written now — starts it, sends a server-streaming call's one request, and
   * joins the relay to it.
   */
  protected open(a: StreamAttempt, md: Metadata): void {
    const d = this.deadline;
    const o = this.options;
    try {
      const call = this.nextCall(o.deadline === undefined ? o : { ...o, deadline: undefined });
      a.call = call;
      const clock = (this.core as GrpcUnaryCore).clock;
      let ticket: PickTicket | undefined;
      if (this.#picker ?? onPickerChannel(call)) a.pick = ticket = attachTicket(md, a.load.endpoint.id, d === undefined ? undefined : clock.wall() + (d - clock.now()));
      else if (d !== undefined) setOwn(md, GRPC_TIMEOUT_KEY, grpcTimeout(d - clock.now()));
      call.start(md, a);
      if (a.done) return;
      if (!this.#requestStream) {
        call.sendMessage(this.#message);
        call.halfClose();
      }
      (this.#relay as StreamRelay).attach(call, this.#requestStream, ticket);
    } catch (e) {
      if (a.done) return;
      a.done = true;
      this.attemptError(a, e instanceof Error ? e : new Error(String(e)), undefined, false);
    }
  }

  /**
   * A stream that never reached a server and whose deadline leaves no time to place it again
   * ends as its deadline says (grpc-js, given the deadline, would have ended it so too).
   */
  protected override stopped(stop: string, cls: Classification, res: GrpcResult): void {
    if (stop === DEADLINE_STOP && cls.kind === 'failure' && cls.conditions.includes('connect-failure')) this.fail(this.timedOut());
    else super.stopped(stop, cls, res);
  }

  /** The caller gets the status (and a client stream's response, held until now). */
  protected deliver(res: GrpcResult): void {
    const l = this.listener;
    if (l === undefined) return;
    if (!this.#responseStream) {
      if (res.metadata !== undefined) l.onReceiveMetadata?.(res.metadata);
      if (res.hasMessage) l.onReceiveMessage?.(res.message);
    }
    l.onReceiveStatus?.(res.status);
  }

  /** Later sends are dropped (grpc-js's own calls ignore writes after the status). */
  protected release(): void {
    this.#relay?.detach();
  }
}
