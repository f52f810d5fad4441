/**
 * What a unary call (unary-call.ts) and a stream (stream-call.ts) through the mesh's client
 * interceptor share: the per-call object's state from the application's `start` to its status,
 * and the steps that are the same for both, in the described order with no promise per layer —
 * route match on `/pkg.Service/Method`, the tracing decision, fault, the deadline's entry in its
 * queue, the retry budget's deposit, waiting for discovery's first answer, each attempt's
 * admission (attempt-admission.ts), its span and metadata, the retry decision after a status or
 * an error, the backoff, the caller's and a parent server call's cancel, and the end: the logical
 * call's metrics, the status delivered once (on a microtask when the mesh answers inside the
 * application's own `start` or `halfClose`).
 *
 * What differs is the subclass's: the attempt object (the grpc-js listener of its call), how an
 * attempt's call is opened and fed, the route timeout (a unary call's; a stream has none), the
 * retry policy (a unary call's route retries; a stream's transparent retry, while its messages
 * can be replayed), how the final result reaches the application, and what is let go at the end
 * (a unary call's spare call below, a stream's relay).
 *
 * The caller's cancel ends the call with the caller's own status and is charged to no one; a
 * parent server call's cancel is followed when propagated (`followParentCancel`), between
 * attempts too, when no call below could carry it.
 */
import { context as otelContext, SpanKind, trace } from '@opentelemetry/api';
import type { Context, Tracer } from '@opentelemetry/api';
import { Metadata } from '@grpc/grpc-js';
import type { CallOptions, Deadline as GrpcDeadline, InterceptorOptions, NextCall } from '@grpc/grpc-js';
import { currentAmbient } from '../core/ambient.js';
import type { Classification } from '../core/classify.js';
import type { Clock } from '../core/clock.js';
import type { Deadline, DeadlineQueue } from '../core/deadline-queue.js';
import { AbortedError, NoRouteError, RetriesExhaustedError, UnknownServiceError } from '../core/errors.js';
import { timerDelay } from '../core/timer-limit.js';
import { startWithFault } from '../client/injected-fault.js';
import { deadlineExceeded } from '../client/call-deadline.js';
import { decideRetry, describeError, historyLine, neverRetried } from '../client/retry-decision.js';
import type { RetryPolicyView } from '../client/retry-decision.js';
import type { LbEndpoint } from '../lb/lb-endpoint.js';
import { errorOutcome, UNKNOWN } from '../observability/metrics-labels.js';
import { fromSpanContext } from '../observability/tracer.js';
import type { MeshTracer } from '../observability/tracer.js';
import type { SlotQueue } from '../resilience/concurrency-limit-filter.js';
import { grpcResultOutcome } from './classify.js';
import { admitAttempt } from './attempt-admission.js';
import { callTrace, IGNORED, spanName } from './grpc-attempt.js';
import type { GrpcAttempt } from './grpc-attempt.js';
import type { GrpcResult, InterceptingCallInterface } from './grpc-call.js';
import { setOwn, takeOwn } from './metadata-entries.js';
import { codeForError, grpcCodeLabel, ROUTE_KEY, statusForError, Status } from './status.js';
import { grpcAttemptAttributes, metadataHeaders } from './tracing.js';
import type { GrpcRoutePolicy, GrpcUnaryCore } from './unary-core.js';

type Listener = Parameters<InterceptingCallInterface['start']>[1];

/** Where the call finds its destination's compiled path (undefined: not configured). */
export interface UnaryCoreSource {
  readonly clock: Clock;
  unaryCore(service: string): GrpcUnaryCore | undefined;
}

const PROPAGATE_DEADLINE = 1;
const PROPAGATE_CANCELLATION = 8;
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

/** A mesh gRPC call below the interceptor, unary or streaming (see the file comment); `A` is its attempt. */
export abstract class GrpcCallBase<A extends GrpcAttempt> implements Deadline {
  // The overall deadline (a Deadline of the route's queue, or of the mesh's `anyDeadlines`).
  deadlineAt = 0;
  deadlinePrev: Deadline | undefined = undefined;
  deadlineNext: Deadline | undefined = undefined;
  deadlineQueue: DeadlineQueue | undefined = undefined;

  protected readonly service: string;
  protected readonly options: InterceptorOptions;
  protected readonly nextCall: NextCall;
  protected listener: Listener;
  /** The destination's compiled path and the matched route, once the call runs. */
  protected core: GrpcUnaryCore | undefined;
  protected route: GrpcRoutePolicy | undefined;
  /** The call's deadline (monotonic ms), once the call runs; undefined for none. */
  protected deadline: number | undefined;
  readonly #source: UnaryCoreSource;
  #appMetadata: Metadata | undefined;
  /** The call's own copy of the metadata, sent by its attempts. */
  #md: Metadata | undefined;
  #routeKey: string | undefined;
  #otel: Tracer | undefined;
  #otelParent: Context | undefined;
  #start = 0;
  /** The call's own deadline and the propagated one, the sooner (read when the call starts). */
  #callDeadline: number | undefined;
  #timeoutStart = 0;
  /** The deadline is the call's own or propagated one, not the route timeout. */
  #propagated = false;
  #sleep: ReturnType<typeof setTimeout> | undefined;
  /** Unhooks the parent server call's cancellation (followParentCancel), when hooked. */
  #unfollowParent: (() => void) | undefined = undefined;
  #attempts = 0;
  #current: A | undefined;
  #avoid: Set<string> | undefined;
  #history: string[] | undefined;
  #cancelled: { code: number; details: string } | undefined;
  #running = false;
  #finished = false;
  /** Inside the application's `start` or `halfClose`: an answer the mesh makes at once waits for a microtask (never a callback before the call returns). */
  #sync = false;

  constructor(source: UnaryCoreSource, service: string, options: InterceptorOptions, nextCall: NextCall) {
    this.#source = source;
    this.service = service;
    this.options = options;
    this.nextCall = nextCall;
  }

  // What the subclass does.

  /** The route timeout that bounds the call (0: none). */
  protected abstract timeoutOf(route: GrpcRoutePolicy): number;
  /** The retry policy the call follows on `route`. */
  protected abstract policyOf(route: GrpcRoutePolicy): RetryPolicyView;
  /** Whether another attempt could still send the request (a stream's relay can replay it). */
  protected abstract replayable(): boolean;
  /** Attempt `n`'s object, the listener of its call. */
  protected abstract newAttempt(n: number, picked: LbEndpoint, ticket: number, now: number): A;
  /** Opens attempt `a`'s call below the interceptor with metadata `md` and sends the request. */
  protected abstract open(a: A, md: Metadata): void;
  /** The final result to the application (headers, message, status). */
  protected abstract deliver(res: GrpcResult): void;
  /** Lets go what the call holds below it, at its end. */
  protected abstract release(): void;

  // The application's side (grpc-js InterceptingCallInterface), the parts both share.

  /**
   * The application's `start`: its metadata and listener, and the parent's cancel followed.
   * False when the call was already cancelled (an application interceptor above the mesh's
   * cancelled it before passing `start` down): this listener gets that status, on a microtask as
   * grpc-js's own calls do, nothing is hooked on the parent and the call never runs.
   */
  protected begin(metadata: Metadata, listener: Listener): boolean {
    this.listener = listener;
    const c = this.#cancelled;
    if (c !== undefined) {
      queueMicrotask(() => listener?.onReceiveStatus?.({ code: c.code, details: c.details, metadata: new Metadata() }));
      return false;
    }
    this.#appMetadata = metadata;
    this.#unfollowParent = followParentCancel(this.options, this);
    return true;
  }

  cancelWithStatus(code: Status, details: string): void {
    if (this.#finished || this.#cancelled !== undefined) return;
    this.#cancelled = { code, details };
    if (!this.#running) {
      // Before the call runs (no attempt, no deadline entry, nothing counted): it ends as grpc-js's
      // calls do, its status on a microtask, never inside the application's own call (a stream's
      // 'error' would come before the application could listen). Before `start`, `begin` tells
      // the listener it is given.
      this.#finish();
      const l = this.listener;
      if (l !== undefined) queueMicrotask(() => l.onReceiveStatus?.({ code, details, metadata: new Metadata() }));
      return;
    }
    this.fail(new AbortedError(`the caller cancelled the call: ${details}`, { service: this.service, route: this.route?.name }));
  }

  getPeer(): string {
    return this.#current?.call?.getPeer() ?? this.service;
  }

  getAuthContext(): ReturnType<InterceptingCallInterface['getAuthContext']> {
    return this.#current?.call?.getAuthContext() ?? null;
  }

  // The call.

  /** Runs the call from inside the application's own `start` or `halfClose`. */
  protected runNow(): void {
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
    const core = this.#source.unaryCore(this.service);
    if (core === undefined) {
      this.fail(new UnknownServiceError(`${this.service} has no Service document in the configuration`, { service: this.service }));
      return;
    }
    this.core = core;
    const clock = core.clock;
    this.#start = clock.now();
    const o = this.options;
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
        this.fail(new NoRouteError(`no route of ${core.service} matches ${path}`, { service: core.service }));
        return;
      }
      route = r;
      if (this.#routeKey === undefined && r.hashHeader !== undefined) {
        const v = md.get(r.hashHeader)[0];
        if (typeof v === 'string') this.#routeKey = v;
      }
    }
    this.route = route;
    const tracer = core.tracer;
    // Tracing, decided once per call: spans per attempt with an SDK, else the same propagated context on every attempt.
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
        (delayed) => this.#send(core, route, delayed ? core.clock.now() : this.#start),
      );
      return;
    }
    this.#send(core, route, this.#start);
  }

  /** The deadline (the route timeout, the call's own and the propagated one: the soonest), the retry budget's deposit, then the first attempt. */
  #send(core: GrpcUnaryCore, route: GrpcRoutePolicy, now: number): void {
    this.#timeoutStart = now;
    const timeout = this.timeoutOf(route);
    let deadline = timeout > 0 ? now + timeout : undefined;
    const own = this.#callDeadline;
    if (own !== undefined && (deadline === undefined || own < deadline)) {
      deadline = own;
      this.#propagated = true;
    }
    this.deadline = deadline;
    if (deadline !== undefined) {
      if (deadline <= now) {
        this.fail(this.timedOut());
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

  protected timedOut(): ReturnType<typeof deadlineExceeded> {
    return deadlineExceeded(this.deadline, this.#timeoutStart, this.#propagated, this.service, this.route?.name);
  }

  /** The next attempt: admitted as attempt-admission.ts says (rate limits, concurrency, breaker, pick), then opened. */
  #attempt(): void {
    const core = this.core as GrpcUnaryCore;
    admitAttempt(this, core, this.route as GrpcRoutePolicy, ++this.#attempts, core.clock.now(), this.deadline, this.#routeKey, this.#avoid);
  }

  /** The call has ended (attempt-admission.ts gives back a slot granted after that). */
  get ended(): boolean {
    return this.#finished;
  }

  /** An attempt refused before any call below (attempt-admission.ts): counted as a try, then judged. */
  attemptRefused(err: Error, now: number): void {
    const core = this.core as GrpcUnaryCore;
    const route = this.route as GrpcRoutePolicy;
    route.attemptsRecorder?.record(grpcCodeLabel(codeForError(err)), errorOutcome(err), (core.clock.now() - now) / 1000);
    this.#judgeError(err, undefined, route.classify(undefined, err), false);
  }

  /** An admitted attempt (attempt-admission.ts): trace, then the attempt's call below the interceptor. */
  attemptAdmitted(n: number, picked: LbEndpoint, ticket: number, slot: SlotQueue | undefined, now: number): void {
    const core = this.core as GrpcUnaryCore;
    const route = this.route as GrpcRoutePolicy;
    const a = this.newAttempt(n, picked, ticket, now);
    a.slot = slot;
    this.#current = a;
    // grpc-js copies the metadata when the call starts; a retry gets a copy of its own anyway,
    // in case an interceptor below keeps the one it was given.
    const md = n === 1 ? (this.#md as Metadata) : (this.#md as Metadata).clone();
    const otel = this.#otel;
    if (otel !== undefined) {
      const parent = this.#otelParent as Context;
      const path = this.options.method_definition.path;
      const span = otel.startSpan(spanName(path), { kind: SpanKind.CLIENT, attributes: grpcAttemptAttributes(path, core.service, route.name, n, picked.endpoint) }, parent);
      a.span = span;
      const h = (core.tracer as MeshTracer).headersFor(fromSpanContext(span.spanContext()));
      for (const k in h) setOwn(md, k, h[k] as string);
      // The attempt span is active below, so an instrumentation of the call nests under it.
      otelContext.with(trace.setSpan(parent, span), () => this.open(a, md));
      return;
    }
    this.open(a, md);
  }

  /** Attempt `a` ended with a status. */
  attemptStatus(a: A, res: GrpcResult): void {
    const core = this.core as GrpcUnaryCore;
    const route = this.route as GrpcRoutePolicy;
    const now = core.clock.now();
    const cls = route.classify(res, undefined);
    a.settle(core, route, cls, route.classify === core.classify ? cls : core.classify(res, undefined), res, undefined, now);
    if (a !== this.#current || this.#finished) return;
    const policy = this.policyOf(route);
    if (cls.kind === 'ignore') {
      if (cls.shed === true && this.#attempts < policy.attempts && this.replayable() && (this.deadline === undefined || now < this.deadline)) {
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
    const v = decideRetry({ route: policy, budget: core.budget, clock: core.clock, attempts: this.#attempts, idempotent: true, replayable: this.replayable(), cancelled: false, deadline: this.deadline }, cls, undefined);
    if (v.retry) this.#retry(a, route, v.reason, v.delay);
    else this.stopped(v.stop, cls, res);
  }

  /** No retry after failed status `res` (`stop` says why): the caller gets it as it is. */
  protected stopped(_stop: string, _cls: Classification, res: GrpcResult): void {
    this.#finishWith(res);
  }

  /** Attempt `a` failed with `err` (`given`: its classification, when known; `perTry`: its per-try timeout). */
  protected attemptError(a: A, err: Error, given: Classification | undefined, perTry: boolean): void {
    const core = this.core as GrpcUnaryCore;
    const route = this.route as GrpcRoutePolicy;
    const cls = given ?? route.classify(undefined, err);
    a.settle(core, route, cls, given ?? core.classify(undefined, err), undefined, err, core.clock.now());
    if (a !== this.#current || this.#finished) return;
    this.#judgeError(err, a, cls, perTry);
  }

  /** Retry or fail after an attempt's error. */
  #judgeError(err: Error, a: A | undefined, cls: Classification, perTry: boolean): void {
    if (cls.kind !== 'failure') {
      this.fail(err);
      return;
    }
    const core = this.core as GrpcUnaryCore;
    const route = this.route as GrpcRoutePolicy;
    const n = this.#attempts;
    const history = (this.#history ??= []);
    history.push(historyLine(n, cls, describeError(err), a?.load.id));
    const v = decideRetry({ route: this.policyOf(route), budget: core.budget, clock: core.clock, attempts: n, idempotent: true, replayable: this.replayable(), cancelled: false, deadline: this.deadline }, cls, neverRetried(err, perTry));
    if (v.retry) {
      this.#retry(a, route, v.reason, v.delay);
      return;
    }
    if (n === 1) this.fail(err);
    else this.fail(new RetriesExhaustedError(`gave up after ${n} attempts (${v.stop}): ${history.join(', ')}`, { cause: err, service: core.service, route: route.name }));
  }

  #retry(a: A | undefined, route: GrpcRoutePolicy, reason: string, delay: number): void {
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
    if (!this.#finished) this.fail(this.timedOut());
  }

  /** Ends the call with a status: the caller gets it (with what `deliver` adds). */
  #finishWith(res: GrpcResult): void {
    if (this.#finished) return;
    this.#finish();
    const core = this.core as GrpcUnaryCore;
    const route = this.route as GrpcRoutePolicy;
    const rec = route.requests;
    if (rec !== undefined) rec.record(grpcCodeLabel(res.status.code), grpcResultOutcome(res, res.injected ? IGNORED : core.classify(res, undefined)), (core.clock.now() - this.#start) / 1000);
    if (this.#sync) queueMicrotask(() => this.deliver(res));
    else this.deliver(res);
  }

  /** Ends the call with an error (the caller's own status when it cancelled). */
  protected fail(err: Error): void {
    if (this.#finished) return;
    this.#finish();
    const core = this.core;
    const cur = this.#current;
    if (core !== undefined && cur !== undefined && !cur.done) {
      cur.cancel(err);
      const route = this.route as GrpcRoutePolicy;
      cur.settle(core, route, route.classify(undefined, err), core.classify(undefined, err), undefined, err, core.clock.now());
    }
    if (core !== undefined) {
      const sec = (core.clock.now() - this.#start) / 1000;
      const route = this.route;
      if (route?.requests !== undefined) route.requests.record(grpcCodeLabel(codeForError(err)), errorOutcome(err), sec);
      else if (core.metrics !== undefined) core.metrics.recordClientRequest(core.service, route?.name ?? UNKNOWN, 'POST', grpcCodeLabel(codeForError(err)), errorOutcome(err), sec);
    }
    const c = this.#cancelled;
    const status = c !== undefined ? { code: c.code, details: c.details, metadata: new Metadata() } : statusForError(err);
    if (this.#sync) queueMicrotask(() => this.listener?.onReceiveStatus?.(status));
    else this.listener?.onReceiveStatus?.(status);
  }

  #finish(): void {
    this.#finished = true;
    this.#unfollowParent?.();
    this.#unfollowParent = undefined;
    this.release();
    this.deadlineQueue?.cancel(this);
    if (this.#sleep !== undefined) clearTimeout(this.#sleep);
    this.#sleep = undefined;
  }
}
