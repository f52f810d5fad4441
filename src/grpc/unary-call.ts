/**
 * One unary gRPC call through the mesh: the object that is the call's state from the
 * application's `start` to its status, below the mesh's interceptor (as `StreamCall` is for
 * streams, stream-call.ts), with one `UnaryAttempt` per try that is the grpc-js listener of that try's call. It
 * applies the destination's unary policy (unary-core.ts) in the described order with no promise
 * per layer, as `src/client/outbound-call.ts` does for HTTP; the semantics are the promise
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
import { context as otelContext, SpanKind, trace } from '@opentelemetry/api';
import type { Context, Tracer } from '@opentelemetry/api';
import { Metadata } from '@grpc/grpc-js';
import type { CallOptions, Deadline as GrpcDeadline, InterceptorOptions, NextCall, StatusObject } from '@grpc/grpc-js';
import { currentAmbient } from '../core/ambient.js';
import type { Classification } from '../core/classify.js';
import type { Clock } from '../core/clock.js';
import type { Deadline, DeadlineQueue } from '../core/deadline-queue.js';
import { AbortedError, NoRouteError, RetriesExhaustedError, TimeoutError, UnknownServiceError } from '../core/errors.js';
import { timerDelay } from '../core/timer-limit.js';
import { startWithFault } from '../client/injected-fault.js';
import type { LbEndpoint } from '../lb/lb-endpoint.js';
import { errorOutcome, UNKNOWN } from '../observability/metrics-labels.js';
import { fromSpanContext } from '../observability/tracer.js';
import type { MeshTracer } from '../observability/tracer.js';
import type { SlotQueue } from '../resilience/concurrency-limit-filter.js';
import { decideRetry, describeError, historyLine, neverRetried } from '../client/retry-decision.js';
import { deadlineExceeded } from '../client/call-deadline.js';
import { grpcResultOutcome } from './classify.js';
import { admitAttempt } from './attempt-admission.js';
import { callTrace, GrpcAttempt, IGNORED, spanName } from './grpc-attempt.js';
import type { GrpcResult, InterceptingCallInterface } from './grpc-call.js';
import { setOwn, takeOwn } from './metadata-entries.js';
import { attachTicket } from './pick-ticket.js';
import { codeForError, grpcCodeLabel, grpcTimeout, GRPC_TIMEOUT_KEY, ROUTE_KEY, statusForError, Status } from './status.js';
import { grpcAttemptAttributes, metadataHeaders } from './tracing.js';
import type { GrpcRoutePolicy, GrpcUnaryCore } from './unary-core.js';

type Listener = Parameters<InterceptingCallInterface['start']>[1];
type MessageContext = Parameters<InterceptingCallInterface['sendMessageWithContext']>[0];

/** Where the call finds its destination's compiled unary path (undefined: not configured). */
export interface UnaryCoreSource {
  readonly clock: Clock;
  unaryCore(service: string): GrpcUnaryCore | undefined;
}

const PROPAGATE_DEADLINE = 1;
const PROPAGATE_CANCELLATION = 8;
const PER_TRY_TIMEOUT: Classification = Object.freeze({ kind: 'failure', conditions: Object.freeze(['timeout']) });
const NO_HEADERS = Object.freeze({});

/** A grpc-js Deadline (wall clock) as a monotonic deadline; undefined for none. */
function monotonic(deadline: GrpcDeadline | undefined, clock: Clock): number | undefined {
  if (deadline === undefined) return undefined;
  const wall = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(wall)) return undefined;
  return clock.now() + (wall - clock.wall());
}

function sooner(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a < b ? a : b;
}

/** The soonest of the call's own deadline, its parent's (when propagated) and the ambient one. */
export function callDeadline(options: CallOptions, clock: Clock): number | undefined {
  let d = options.deadline === undefined ? undefined : monotonic(options.deadline, clock);
  const parent = options.parent;
  if (parent !== undefined && ((options.propagate_flags ?? 0xffff) & PROPAGATE_DEADLINE) !== 0) d = sooner(d, monotonic(parent.getDeadline(), clock));
  return sooner(d, currentAmbient()?.deadline);
}

/** A call that a parent server call's cancellation ends. */
export interface ParentCancelled {
  cancelWithStatus(code: Status, details: string): void;
}

/**
 * Hooks a parent server call's cancellation (when propagated) to `call`; returns what unhooks it,
 * to be called when the call ends (a long-lived parent making many calls would otherwise keep a
 * listener, and the call, per call it ever made), or undefined when nothing was hooked.
 */
export function followParentCancel(options: CallOptions, call: ParentCancelled): (() => void) | undefined {
  const parent = options.parent;
  if (parent === undefined || ((options.propagate_flags ?? 0xffff) & PROPAGATE_CANCELLATION) === 0) return undefined;
  const p = parent as unknown as { on(event: 'cancelled', listener: () => void): unknown; removeListener(event: 'cancelled', listener: () => void): unknown };
  const cancel = (): void => call.cancelWithStatus(Status.CANCELLED, 'Cancelled by parent call');
  // Before grpc-js's own listener on the attempt's call: the mesh sees a cancel, not a reset.
  p.on('cancelled', cancel);
  return () => p.removeListener('cancelled', cancel);
}

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
    this.#owner.attemptStatus(this, { status, metadata: this.#headers, message: this.#message, hasMessage: this.#hasMessage, injected: false });
  }

  /** The per-try timeout passed. */
  onDeadline(): void {
    this.#owner.perTryTimeout(this);
  }
}

/** A unary call below the mesh's interceptor (see the file comment). */
export class UnaryCall implements InterceptingCallInterface, Deadline {
  // The overall deadline (a Deadline of the route's queue, or of the mesh's `anyDeadlines`).
  deadlineAt = 0;
  deadlinePrev: Deadline | undefined = undefined;
  deadlineNext: Deadline | undefined = undefined;
  deadlineQueue: DeadlineQueue | undefined = undefined;

  readonly #source: UnaryCoreSource;
  readonly #service: string;
  readonly #options: InterceptorOptions;
  readonly #nextCall: NextCall;
  #listener: Listener;
  #appMetadata: Metadata | undefined;
  #message: unknown;
  #core: GrpcUnaryCore | undefined;
  #route: GrpcRoutePolicy | undefined;
  /** The call's own copy of the metadata, sent by its attempts. */
  #md: Metadata | undefined;
  #routeKey: string | undefined;
  #otel: Tracer | undefined;
  #otelParent: Context | undefined;
  #start = 0;
  #callDeadline: number | undefined;
  #deadline: number | undefined;
  #timeoutStart = 0;
  #propagated = false;
  #sleep: ReturnType<typeof setTimeout> | undefined;
  /** Unhooks the parent server call's cancellation (followParentCancel), when hooked. */
  #unfollowParent: (() => void) | undefined = undefined;
  #attempts = 0;
  #current: UnaryAttempt | undefined;
  #avoid: Set<string> | undefined;
  #history: string[] | undefined;
  #cancelled: { code: number; details: string } | undefined;
  #running = false;
  #finished = false;
  /** Inside the application's `halfClose`: an answer the mesh makes at once waits for a microtask (never a callback before the call returns). */
  #sync = false;

  /** A call below, already opened (the interceptor's target probe): attempt 1's, when it can be. */
  #spare: InterceptingCallInterface | undefined;
  /** The spare was opened with the call's own options, deadline included (grpc-js armed a timer for it). */
  readonly #spareTimed: boolean;
  /** The channel runs the Trellis picker, which reads the attempt's PickTicket and writes `grpc-timeout` from it. */
  readonly #picker: boolean;

  constructor(source: UnaryCoreSource, service: string, options: InterceptorOptions, nextCall: NextCall, spare?: InterceptingCallInterface, picker = true, spareTimed = true) {
    this.#source = source;
    this.#service = service;
    this.#options = options;
    this.#nextCall = nextCall;
    this.#spare = spare;
    this.#picker = picker;
    this.#spareTimed = spareTimed;
  }

  // The application's side (grpc-js InterceptingCallInterface).

  start(metadata: Metadata, listener?: Listener): void {
    this.#appMetadata = metadata;
    this.#listener = listener;
    this.#unfollowParent = followParentCancel(this.#options, this);
  }

  sendMessageWithContext(context: MessageContext, message: unknown): void {
    this.#message = message;
    context.callback?.();
  }

  sendMessage(message: unknown): void {
    this.#message = message;
  }

  halfClose(): void {
    this.#sync = true;
    try {
      this.#run();
    } finally {
      this.#sync = false;
    }
  }

  startRead(): void {
    // A unary response is read by the attempt's call by itself.
  }

  cancelWithStatus(code: Status, details: string): void {
    if (this.#finished || this.#cancelled !== undefined) return;
    this.#cancelled = { code, details };
    if (!this.#running) {
      this.#finished = true;
      this.#dropSpare();
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

  // The call.

  #run(): void {
    if (this.#running || this.#finished) return;
    this.#running = true;
    const source = this.#source;
    const core = source.unaryCore(this.#service);
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
    if (tracer !== undefined) this.#traceFrom(tracer, md);
    const fault = route.fault;
    // Outermost on the route; an abort is answered as it is (never retried, charged to no breaker or endpoint).
    if (fault !== undefined) {
      const abort = route.abort;
      this.#sleep = startWithFault(
        fault,
        () => !this.#finished,
        abort === undefined ? undefined : () => this.#finishWith(abort()),
        (delayed) => this.#send(core, route, delayed ? core.clock.now() : this.#start),
      );
      return;
    }
    this.#send(core, route, this.#start);
  }

  /** Tracing, decided once per call: spans per attempt with an SDK, else the same propagated context on every attempt. */
  #traceFrom(tracer: MeshTracer, md: Metadata): void {
    const spans = callTrace(tracer, md);
    if (spans !== undefined) {
      this.#otel = spans.otel;
      this.#otelParent = spans.parent;
    }
  }

  /** The timeout and deadline, the retry budget's deposit, then the first attempt. */
  #send(core: GrpcUnaryCore, route: GrpcRoutePolicy, now: number): void {
    this.#timeoutStart = now;
    let deadline = route.timeoutMs > 0 ? now + route.timeoutMs : undefined;
    const own = this.#callDeadline;
    if (own !== undefined && (deadline === undefined || own < deadline)) {
      deadline = own;
      this.#propagated = true;
    }
    this.#deadline = deadline;
    if (deadline !== undefined) {
      if (deadline <= now) {
        this.#fail(this.#timedOut());
        return;
      }
      const q = route.overall;
      if (q !== undefined && !this.#propagated) q.add(this, now);
      else core.anyDeadlines.addAt(this, deadline, now);
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

  #timedOut(): InstanceType<typeof TimeoutError> {
    return deadlineExceeded(this.#deadline, this.#timeoutStart, this.#propagated, this.#service, this.#route?.name);
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
    const a = new UnaryAttempt(this, n, picked, ticket, now);
    a.slot = slot;
    this.#current = a;
    const perTry = route.perTry;
    if (perTry !== undefined && (this.#deadline === undefined || now + perTry.durationMs < this.#deadline)) perTry.add(a, now);
    // grpc-js copies the metadata when the call starts; a retry gets a copy of its own anyway,
    // in case an interceptor below keeps the one it was given.
    const md = n === 1 ? (this.#md as Metadata) : (this.#md as Metadata).clone();
    const otel = this.#otel;
    if (otel !== undefined) {
      const parent = this.#otelParent as Context;
      const span = otel.startSpan(spanName(this.#options.method_definition.path), { kind: SpanKind.CLIENT, attributes: grpcAttemptAttributes(this.#options.method_definition.path, core.service, route.name, n, picked.endpoint) }, parent);
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
   * Opens the attempt's call below the interceptor and sends the request. The chosen endpoint and
   * the deadline travel to the Trellis picker on the attempt's `PickTicket` (pick-ticket.ts), and
   * the picker sends the deadline as `grpc-timeout`; grpc-js is given none, so it arms no timer of
   * its own: the call's deadline entry (route or `anyDeadlines` queue) ends the attempt. On a
   * channel without the picker the call writes `grpc-timeout` itself (the time left now).
   */
  #open(a: UnaryAttempt, md: Metadata): void {
    const d = this.#deadline;
    const o = this.#options;
    try {
      if (this.#picker) {
        const clock = (this.#core as GrpcUnaryCore).clock;
        attachTicket(md, a.load.endpoint.id, d === undefined ? undefined : clock.wall() + (d - clock.now()));
      } else if (d !== undefined) {
        const clock = (this.#core as GrpcUnaryCore).clock;
        setOwn(md, GRPC_TIMEOUT_KEY, grpcTimeout(d - clock.now()));
      }
      let call = this.#spare;
      this.#spare = undefined;
      if (call !== undefined && o.deadline !== undefined && this.#spareTimed) {
        // Opened with the application's deadline, for which grpc-js arms a timer: not this one.
        call.cancelWithStatus(Status.CANCELLED, 'trellis: target probe');
        call = undefined;
      }
      call ??= this.#nextCall(o.deadline === undefined ? o : { ...o, deadline: undefined });
      a.call = call;
      call.start(md, a);
      if (a.done) return;
      call.sendMessage(this.#message);
      call.halfClose();
    } catch (e) {
      if (a.done) return;
      a.done = true;
      this.#attemptError(a, e instanceof Error ? e : new Error(String(e)), undefined, false);
    }
  }

  /** An attempt refused before any endpoint (rate limit, overload, open circuit, no endpoints): counted as a try, then judged. */
  #refused(err: Error, start: number): void {
    const core = this.#core as GrpcUnaryCore;
    const route = this.#route as GrpcRoutePolicy;
    route.attemptsRecorder?.record(grpcCodeLabel(codeForError(err)), errorOutcome(err), (core.clock.now() - start) / 1000);
    this.#judgeError(err, undefined, route.classify(undefined, err), false);
  }

  /** Attempt `a`'s per-try timeout passed (the route's per-try queue calls this). */
  perTryTimeout(a: UnaryAttempt): void {
    if (a.done || this.#finished) return;
    const route = this.#route as GrpcRoutePolicy;
    const err = new TimeoutError(`per-try timeout of ${route.perTryTimeoutMs ?? 0} ms expired on attempt ${a.n}`, { service: this.#service, route: route.name, endpoint: a.load.id, retryable: true });
    a.cancel(err);
    this.#attemptError(a, err, PER_TRY_TIMEOUT, true);
  }

  /** Attempt `a` ended with a status. */
  attemptStatus(a: UnaryAttempt, res: GrpcResult): void {
    const core = this.#core as GrpcUnaryCore;
    const route = this.#route as GrpcRoutePolicy;
    const now = core.clock.now();
    const cls = route.classify(res, undefined);
    a.settle(core, route, cls, route.classify === core.classify ? cls : core.classify(res, undefined), res, undefined, now);
    if (a !== this.#current || this.#finished) return;
    if (cls.kind === 'ignore') {
      if (cls.shed === true && this.#attempts < route.attempts && (this.#deadline === undefined || now < this.#deadline)) {
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
    const v = decideRetry({ route, budget: core.budget, clock: core.clock, attempts: this.#attempts, idempotent: true, replayable: true, cancelled: false, deadline: this.#deadline }, cls, undefined);
    if (v.retry) this.#retry(a, route, v.reason, v.delay);
    else this.#finishWith(res);
  }

  #attemptError(a: UnaryAttempt, err: Error, given: Classification | undefined, perTry: boolean): void {
    const core = this.#core as GrpcUnaryCore;
    const route = this.#route as GrpcRoutePolicy;
    const cls = given ?? route.classify(undefined, err);
    a.settle(core, route, cls, given ?? core.classify(undefined, err), undefined, err, core.clock.now());
    if (a !== this.#current || this.#finished) return;
    this.#judgeError(err, a, cls, perTry);
  }

  /** Retry or fail after an attempt's error. */
  #judgeError(err: Error, a: UnaryAttempt | undefined, cls: Classification, perTry: boolean): void {
    if (cls.kind !== 'failure') {
      this.#fail(err);
      return;
    }
    const core = this.#core as GrpcUnaryCore;
    const route = this.#route as GrpcRoutePolicy;
    const n = this.#attempts;
    const history = (this.#history ??= []);
    history.push(historyLine(n, cls, describeError(err), a?.load.id));
    const v = decideRetry({ route, budget: core.budget, clock: core.clock, attempts: n, idempotent: true, replayable: true, cancelled: false, deadline: this.#deadline }, cls, neverRetried(err, perTry));
    if (v.retry) {
      this.#retry(a, route, v.reason, v.delay);
      return;
    }
    if (n === 1) this.#fail(err);
    else this.#fail(new RetriesExhaustedError(`gave up after ${n} attempts (${v.stop}): ${history.join(', ')}`, { cause: err, service: core.service, route: route.name }));
  }

  #retry(a: UnaryAttempt | undefined, route: GrpcRoutePolicy, reason: string, delay: number): void {
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

  /** The overall deadline passed (its queue calls this). */
  onDeadline(): void {
    if (!this.#finished) this.#fail(this.#timedOut());
  }

  /** Ends the call with a status: the caller gets its headers, message and status. */
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
    if (res.metadata !== undefined) l.onReceiveMetadata?.(res.metadata);
    if (res.hasMessage) l.onReceiveMessage?.(res.message);
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

  #dropSpare(): void {
    const spare = this.#spare;
    if (spare === undefined) return;
    this.#spare = undefined;
    spare.cancelWithStatus(Status.CANCELLED, 'trellis: target probe');
  }

  #finish(): void {
    this.#finished = true;
    this.#unfollowParent?.();
    this.#unfollowParent = undefined;
    this.#dropSpare();
    this.deadlineQueue?.cancel(this);
    if (this.#sleep !== undefined) clearTimeout(this.#sleep);
    this.#sleep = undefined;
  }
}
