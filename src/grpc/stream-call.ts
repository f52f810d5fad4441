/**
 * One streaming gRPC call through the mesh (client-, server- or bidi-streaming): the object that
 * is the call's state from the application's `start` to its status, below the mesh's
 * interceptor, with one `StreamAttempt` per try that is the grpc-js listener of that try's call.
 * It runs the destination's compiled route policies (unary-core.ts) as a unary call does
 * (unary-call.ts): route match, fault, rate limits, adaptive concurrency, breaker admit/report,
 * split, balancer, tracing, endpoint accounting, attempt and logical-call metrics, with no
 * promise per layer; what differs is what a stream is:
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
import { context as otelContext, SpanKind, trace } from '@opentelemetry/api';
import type { Context, Tracer } from '@opentelemetry/api';
import { Metadata } from '@grpc/grpc-js';
import type { InterceptorOptions, NextCall, StatusObject } from '@grpc/grpc-js';
import { currentAmbient } from '../core/ambient.js';
import type { Classification } from '../core/classify.js';
import type { Deadline, DeadlineQueue } from '../core/deadline-queue.js';
import { AbortedError, NoRouteError, RetriesExhaustedError, UnknownServiceError } from '../core/errors.js';
import { timerDelay } from '../core/timer-limit.js';
import { startWithFault } from '../client/injected-fault.js';
import { deadlineExceeded } from '../client/call-deadline.js';
import { decideRetry, describeError, historyLine, neverRetried } from '../client/retry-decision.js';
import type { LbEndpoint } from '../lb/lb-endpoint.js';
import { errorOutcome, UNKNOWN } from '../observability/metrics-labels.js';
import { fromSpanContext } from '../observability/tracer.js';
import type { MeshTracer } from '../observability/tracer.js';
import type { SlotQueue } from '../resilience/concurrency-limit-filter.js';
import { grpcResultOutcome } from './classify.js';
import { admitAttempt } from './attempt-admission.js';
import { callTrace, GrpcAttempt, IGNORED, spanName } from './grpc-attempt.js';
import { StreamRelay } from './grpc-call.js';
import type { GrpcResult, InterceptingCallInterface, StreamSink } from './grpc-call.js';
import { setOwn, takeOwn } from './metadata-entries.js';
import { attachTicket } from './pick-ticket.js';
import type { PickTicket } from './pick-ticket.js';
import { parseTrellisTarget } from './resolver.js';
import { codeForError, CONNECT_FAILURE_KEY, grpcCodeLabel, grpcTimeout, GRPC_TIMEOUT_KEY, ROUTE_KEY, statusForError, Status } from './status.js';
import { grpcAttemptAttributes, metadataHeaders } from './tracing.js';
import { callDeadline, followParentCancel } from './unary-call.js';
import type { UnaryCoreSource } from './unary-call.js';
import type { GrpcRoutePolicy, GrpcUnaryCore } from './unary-core.js';

type Listener = Parameters<InterceptingCallInterface['start']>[1];
type MessageContext = Parameters<InterceptingCallInterface['sendMessageWithContext']>[0];

const NO_HEADERS = Object.freeze({});
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
    // Nothing reached a server: keep the stream for another attempt (the call decides).
    const relay = this.#relay;
    if (!(status.metadata.get(CONNECT_FAILURE_KEY).length > 0 && relay.rewind())) relay.detach();
    this.#owner.attemptStatus(this, { status, metadata: this.#headers, message: this.#message, hasMessage: this.#hasMessage, injected: false });
  }

  /** Streams have no per-try timeout. */
  onDeadline(): void {
    // Never in a per-try queue.
  }
}

/** A streaming call below the mesh's interceptor (see the file comment). */
export class StreamCall implements InterceptingCallInterface, Deadline, StreamSink {
  // The call's deadline (a Deadline of the mesh's `anyDeadlines` queue).
  deadlineAt = 0;
  deadlinePrev: Deadline | undefined = undefined;
  deadlineNext: Deadline | undefined = undefined;
  deadlineQueue: DeadlineQueue | undefined = undefined;

  readonly #source: UnaryCoreSource;
  readonly #service: string;
  readonly #options: InterceptorOptions;
  readonly #nextCall: NextCall;
  readonly #requestStream: boolean;
  readonly #responseStream: boolean;
  /** True: the channel is a `trellis:` one; undefined: read from the first attempt's call. */
  readonly #picker: boolean | undefined;
  #listener: Listener;
  #appMetadata: Metadata | undefined;
  #message: unknown;
  #relay: StreamRelay | undefined;
  #core: GrpcUnaryCore | undefined;
  #route: GrpcRoutePolicy | undefined;
  /** The call's own copy of the metadata, sent by its attempts. */
  #md: Metadata | undefined;
  #routeKey: string | undefined;
  #otel: Tracer | undefined;
  #otelParent: Context | undefined;
  #start = 0;
  /** The call's own deadline and the propagated one, the sooner (read when the call starts). */
  #callDeadline: number | undefined;
  #deadline: number | undefined;
  #timeoutStart = 0;
  #sleep: ReturnType<typeof setTimeout> | undefined;
  /** Unhooks the parent server call's cancellation (followParentCancel), when hooked. */
  #unfollowParent: (() => void) | undefined = undefined;
  #attempts = 0;
  #current: StreamAttempt | undefined;
  #avoid: Set<string> | undefined;
  #history: string[] | undefined;
  #cancelled: { code: number; details: string } | undefined;
  #running = false;
  #finished = false;
  /** Inside the application's `start` or `halfClose`: an answer the mesh makes at once waits for a microtask. */
  #sync = false;

  /** `picker`: true when the channel is known to be a `trellis:` one, undefined to read it from the attempt's call. */
  constructor(source: UnaryCoreSource, service: string, options: InterceptorOptions, nextCall: NextCall, picker: boolean | undefined) {
    this.#source = source;
    this.#service = service;
    this.#options = options;
    this.#nextCall = nextCall;
    this.#picker = picker;
    this.#requestStream = options.method_definition.requestStream;
    this.#responseStream = options.method_definition.responseStream;
  }

  // The application's side (grpc-js InterceptingCallInterface).

  start(metadata: Metadata, listener?: Listener): void {
    this.#appMetadata = metadata;
    this.#listener = listener;
    this.#relay = new StreamRelay(this, this.#options.method_definition.requestSerialize);
    this.#unfollowParent = followParentCancel(this.#options, this);
    if (this.#requestStream) this.#runNow();
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
    else this.#runNow();
  }

  startRead(): void {
    // A unary response is read by the attempt's call by itself.
    if (this.#responseStream) this.#relay?.startRead();
  }

  cancelWithStatus(code: Status, details: string): void {
    if (this.#finished || this.#cancelled !== undefined) return;
    this.#cancelled = { code, details };
    if (!this.#running) {
      this.#finished = true;
      this.#relay?.detach();
      this.#listener?.onReceiveStatus?.({ code, details, metadata: new Metadata() });
      return;
    }
    this.#fail(new AbortedError(`the caller cancelled the call: ${details}`, { service: this.#service, route: this.#route?.name }));
  }

  getPeer(): string {
    return this.#current?.call?.getPeer() ?? this.#service;
  }

  getAuthContext(): ReturnType<InterceptingCallInterface['getAuthContext']> {
    return this.#current?.call?.getAuthContext() ?? null;
  }

  // The relay's sink: response headers and messages of a response stream, as they arrive.

  onReceiveMetadata(metadata: Metadata): void {
    this.#listener?.onReceiveMetadata?.(metadata);
  }

  onReceiveMessage(message: unknown): void {
    this.#listener?.onReceiveMessage?.(message);
  }

  // The call.

  #runNow(): void {
    this.#sync = true;
    try {
      this.#run();
    } finally {
      this.#sync = false;
    }
  }

  #run(): void {
    if (this.#running || this.#finished) return;
    this.#running = true;
    const core = this.#source.unaryCore(this.#service);
    if (core === undefined) {
      this.#fail(new UnknownServiceError(`${this.#service} has no Service document in the configuration`, { service: this.#service }));
      return;
    }
    this.#core = core;
    const clock = core.clock;
    this.#start = clock.now();
    const o = this.#options;
    this.#callDeadline = o.deadline === undefined && o.parent === undefined ? currentAmbient()?.deadline : callDeadline(o, clock);
    const md = this.#appMetadata === undefined ? new Metadata() : this.#appMetadata.clone();
    this.#md = md;
    this.#routeKey = takeOwn(md, ROUTE_KEY);
    core.counters.requests++;
    const table = core.table;
    let route = core.routes[0] as GrpcRoutePolicy;
    if (table !== undefined) {
      const path = o.method_definition.path;
      const m = table.match({ method: 'POST', path, headers: core.matchesHeaders ? metadataHeaders(md) : NO_HEADERS });
      const r = m === undefined ? undefined : core.routes[m.route.index];
      if (m === undefined || r === undefined) {
        this.#fail(new NoRouteError(`no route of ${core.service} matches ${path}`, { service: core.service }));
        return;
      }
      route = r;
      if (this.#routeKey === undefined && r.hashHeader !== undefined) {
        const v = md.get(r.hashHeader)[0];
        if (typeof v === 'string') this.#routeKey = v;
      }
    }
    this.#route = route;
    const tracer = core.tracer;
    if (tracer !== undefined) {
      const spans = callTrace(tracer, md);
      if (spans !== undefined) {
        this.#otel = spans.otel;
        this.#otelParent = spans.parent;
      }
    }
    const fault = route.fault;
    // Outermost on the route; an abort is answered as it is (never retried, charged to no breaker or endpoint).
    if (fault !== undefined) {
      const abort = route.abort;
      this.#sleep = startWithFault(
        fault,
        () => !this.#finished,
        abort === undefined ? undefined : () => this.#finishWith(abort()),
        (delayed) => this.#send(core, delayed ? core.clock.now() : this.#start),
      );
      return;
    }
    this.#send(core, this.#start);
  }

  /** The deadline (the call's own and the propagated one: no route timeout), the retry budget's deposit, then the first attempt. */
  #send(core: GrpcUnaryCore, now: number): void {
    this.#timeoutStart = now;
    const deadline = this.#callDeadline;
    this.#deadline = deadline;
    if (deadline !== undefined) {
      if (deadline <= now) {
        this.#fail(this.#timedOut());
        return;
      }
      core.anyDeadlines.addAt(this, deadline, now);
    }
    core.budget.deposit();
    if (core.endpoints.known) this.#attempt();
    else {
      // Discovery has not answered yet: wait for it (bounded by the deadline and the caller's cancel).
      core.endpoints.ready(undefined).then(() => {
        if (!this.#finished) this.#attempt();
      }, () => undefined);
    }
  }

  #timedOut(): ReturnType<typeof deadlineExceeded> {
    return deadlineExceeded(this.#deadline, this.#timeoutStart, true, this.#service, this.#route?.name);
  }

  /** The next attempt: admitted as attempt-admission.ts says (rate limits, concurrency, breaker, pick), then opened. */
  #attempt(): void {
    const core = this.#core as GrpcUnaryCore;
    admitAttempt(this, core, this.#route as GrpcRoutePolicy, ++this.#attempts, core.clock.now(), this.#deadline, this.#routeKey, this.#avoid);
  }

  /** The call has ended (attempt-admission.ts gives back a slot granted after that). */
  get ended(): boolean {
    return this.#finished;
  }

  /** An attempt refused before any call below (attempt-admission.ts). */
  attemptRefused(err: Error, now: number): void {
    this.#refused(err, now);
  }

  /** An admitted attempt (attempt-admission.ts): trace, then the attempt's call below the interceptor. */
  attemptAdmitted(n: number, picked: LbEndpoint, ticket: number, slot: SlotQueue | undefined, now: number): void {
    const core = this.#core as GrpcUnaryCore;
    const route = this.#route as GrpcRoutePolicy;
    const a = new StreamAttempt(this, this.#relay as StreamRelay, this.#responseStream, n, picked, ticket, now);
    a.slot = slot;
    this.#current = a;
    // grpc-js copies the metadata when the call starts; a retry gets a copy of its own anyway,
    // in case an interceptor below keeps the one it was given.
    const md = n === 1 ? (this.#md as Metadata) : (this.#md as Metadata).clone();
    const otel = this.#otel;
    if (otel !== undefined) {
      const parent = this.#otelParent as Context;
      const path = this.#options.method_definition.path;
      const span = otel.startSpan(spanName(path), { kind: SpanKind.CLIENT, attributes: grpcAttemptAttributes(path, core.service, route.name, n, picked.endpoint) }, parent);
      a.span = span;
      const h = (core.tracer as MeshTracer).headersFor(fromSpanContext(span.spanContext()));
      for (const k in h) setOwn(md, k, h[k] as string);
      // The attempt span is active below, so an instrumentation of the call nests under it.
      otelContext.with(trace.setSpan(parent, span), () => this.#open(a, md));
      return;
    }
    this.#open(a, md);
  }

  /**
   * Opens the attempt's call below the interceptor (without a deadline: grpc-js arms no timer;
   * the call's entry in `anyDeadlines` ends it), gives it the chosen endpoint and the deadline —
   * on its PickTicket on a `trellis:` channel, whose picker writes `grpc-timeout`, else as
   * `grpc-timeout` written now — starts it, sends a server-streaming call's one request, and
   * joins the relay to it.
   */
  #open(a: StreamAttempt, md: Metadata): void {
    const d = this.#deadline;
    const o = this.#options;
    try {
      const call = this.#nextCall(o.deadline === undefined ? o : { ...o, deadline: undefined });
      a.call = call;
      const clock = (this.#core as GrpcUnaryCore).clock;
      let ticket: PickTicket | undefined;
      if (this.#picker ?? onPickerChannel(call)) ticket = attachTicket(md, a.load.endpoint.id, d === undefined ? undefined : clock.wall() + (d - clock.now()));
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
      this.#attemptError(a, e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** An attempt refused before any endpoint (rate limit, overload, open circuit, no endpoints): counted as a try, then judged. */
  #refused(err: Error, start: number): void {
    const core = this.#core as GrpcUnaryCore;
    const route = this.#route as GrpcRoutePolicy;
    route.attemptsRecorder?.record(grpcCodeLabel(codeForError(err)), errorOutcome(err), (core.clock.now() - start) / 1000);
    this.#judgeError(err, undefined, route.classify(undefined, err));
  }

  /** Attempt `a` ended with a status. */
  attemptStatus(a: StreamAttempt, res: GrpcResult): void {
    const core = this.#core as GrpcUnaryCore;
    const route = this.#route as GrpcRoutePolicy;
    const now = core.clock.now();
    const cls = route.classify(res, undefined);
    a.settle(core, route, cls, route.classify === core.classify ? cls : core.classify(res, undefined), res, undefined, now);
    if (a !== this.#current || this.#finished) return;
    const policy = route.transparent;
    if (cls.kind === 'ignore') {
      if (cls.shed === true && this.#attempts < policy.attempts && this.#replayable() && (this.#deadline === undefined || now < this.#deadline)) {
        // Shed before any work: sent elsewhere at once, without a budget token.
        this.#retry(a, route, 'shed', 0);
        return;
      }
      this.#finishWith(res);
      return;
    }
    if (cls.kind !== 'failure') {
      this.#finishWith(res);
      return;
    }
    (this.#history ??= []).push(historyLine(this.#attempts, cls, 'failure', a.load.id));
    const v = decideRetry({ route: policy, budget: core.budget, clock: core.clock, attempts: this.#attempts, idempotent: true, replayable: this.#replayable(), cancelled: false, deadline: this.#deadline }, cls, undefined);
    if (v.retry) this.#retry(a, route, v.reason, v.delay);
    // A stream that never reached a server and whose deadline leaves no time to place it again
    // ends as its deadline says (grpc-js, given the deadline, would have ended it so too).
    else if (v.stop === DEADLINE_STOP && cls.conditions.includes('connect-failure')) this.#fail(this.#timedOut());
    else this.#finishWith(res);
  }

  #replayable(): boolean {
    return this.#relay?.replayable ?? true;
  }

  #attemptError(a: StreamAttempt, err: Error): void {
    const core = this.#core as GrpcUnaryCore;
    const route = this.#route as GrpcRoutePolicy;
    const cls = route.classify(undefined, err);
    a.settle(core, route, cls, core.classify(undefined, err), undefined, err, core.clock.now());
    if (a !== this.#current || this.#finished) return;
    this.#judgeError(err, a, cls);
  }

  /** Retry or fail after an attempt's error. */
  #judgeError(err: Error, a: StreamAttempt | undefined, cls: Classification): void {
    if (cls.kind !== 'failure') {
      this.#fail(err);
      return;
    }
    const core = this.#core as GrpcUnaryCore;
    const route = this.#route as GrpcRoutePolicy;
    const n = this.#attempts;
    const history = (this.#history ??= []);
    history.push(historyLine(n, cls, describeError(err), a?.load.id));
    const v = decideRetry({ route: route.transparent, budget: core.budget, clock: core.clock, attempts: n, idempotent: true, replayable: this.#replayable(), cancelled: false, deadline: this.#deadline }, cls, neverRetried(err, false));
    if (v.retry) {
      this.#retry(a, route, v.reason, v.delay);
      return;
    }
    if (n === 1) this.#fail(err);
    else this.#fail(new RetriesExhaustedError(`gave up after ${n} attempts (${v.stop}): ${history.join(', ')}`, { cause: err, service: core.service, route: route.name }));
  }

  #retry(a: StreamAttempt | undefined, route: GrpcRoutePolicy, reason: string, delay: number): void {
    if (a !== undefined) (this.#avoid ??= new Set()).add(a.load.id);
    this.#current = undefined;
    route.onRetry(reason);
    if (delay <= 0) this.#attempt();
    else {
      this.#sleep = setTimeout(() => {
        this.#sleep = undefined;
        if (!this.#finished) this.#attempt();
      }, timerDelay(delay));
    }
  }

  /** The deadline passed (the mesh's `anyDeadlines` queue calls this). */
  onDeadline(): void {
    if (!this.#finished) this.#fail(this.#timedOut());
  }

  /** Ends the call with a status: the caller gets it (and a client stream's response, held until now). */
  #finishWith(res: GrpcResult): void {
    if (this.#finished) return;
    this.#finish();
    const core = this.#core as GrpcUnaryCore;
    const route = this.#route as GrpcRoutePolicy;
    const rec = route.requests;
    if (rec !== undefined) rec.record(grpcCodeLabel(res.status.code), grpcResultOutcome(res, res.injected ? IGNORED : core.classify(res, undefined)), (core.clock.now() - this.#start) / 1000);
    if (this.#sync) queueMicrotask(() => this.#deliver(res));
    else this.#deliver(res);
  }

  #deliver(res: GrpcResult): void {
    const l = this.#listener;
    if (l === undefined) return;
    if (!this.#responseStream) {
      if (res.metadata !== undefined) l.onReceiveMetadata?.(res.metadata);
      if (res.hasMessage) l.onReceiveMessage?.(res.message);
    }
    l.onReceiveStatus?.(res.status);
  }

  /** Ends the call with an error (the caller's own status when it cancelled). */
  #fail(err: Error): void {
    if (this.#finished) return;
    this.#finish();
    const core = this.#core;
    const cur = this.#current;
    if (core !== undefined && cur !== undefined && !cur.done) {
      cur.cancel(err);
      const route = this.#route as GrpcRoutePolicy;
      cur.settle(core, route, route.classify(undefined, err), core.classify(undefined, err), undefined, err, core.clock.now());
    }
    if (core !== undefined) {
      const sec = (core.clock.now() - this.#start) / 1000;
      const route = this.#route;
      if (route?.requests !== undefined) route.requests.record(grpcCodeLabel(codeForError(err)), errorOutcome(err), sec);
      else if (core.metrics !== undefined) core.metrics.recordClientRequest(core.service, route?.name ?? UNKNOWN, 'POST', grpcCodeLabel(codeForError(err)), errorOutcome(err), sec);
    }
    const c = this.#cancelled;
    const status = c !== undefined ? { code: c.code, details: c.details, metadata: new Metadata() } : statusForError(err);
    if (this.#sync) queueMicrotask(() => this.#listener?.onReceiveStatus?.(status));
    else this.#listener?.onReceiveStatus?.(status);
  }

  #finish(): void {
    this.#finished = true;
    this.#unfollowParent?.();
    this.#unfollowParent = undefined;
    this.#relay?.detach();
    this.deadlineQueue?.cancel(this);
    if (this.#sleep !== undefined) clearTimeout(this.#sleep);
    this.#sleep = undefined;
  }
}
