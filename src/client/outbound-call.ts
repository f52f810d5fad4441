/**
 * One outbound HTTP call on the hot path: the object that is the request's state for its whole
 * life, from the caller's handler to the last attempt (one per call, one OutboundAttempt per try;
 * no promise, no closure per layer). It applies the destination's policy in the described order
 * (outbound-core.ts): logical metrics, route (route-choice.ts), fault (injected-fault.ts), the
 * overall timeout and propagated deadline, retries (retry-decision.ts) with their budget, backoff,
 * per-try timeout and endpoint avoidance, then per attempt the limits, breaker and balancer
 * (attempt-admission.ts) and the trace headers (call-trace.ts), and hands each attempt to the
 * endpoint's undici Pool. Its parts, one concept each: the overall deadline (call-deadline.ts), what
 * an attempt sends (attempt-request.ts), the judgement of a response (response-verdict.ts), the
 * mirrored copy (call-mirror.ts) and the record of the end (call-outcome.ts).
 *
 * Semantics are the promise stack's (timeout-filter.ts, retry-filter.ts, circuit-breaker.ts,
 * endpoint-filter.ts, metrics-filter.ts), which its tests pin down:
 * - a failed response that will be retried (502/503/504 on `gateway-error`, a shed answer, ...)
 *   never reaches the caller: its body is drained while the next attempt goes elsewhere;
 * - when a reset could still be retried, a small body of known length is read whole before the
 *   caller sees the response, so a reset mid-body is retried instead of reaching the caller;
 * - several failed attempts end in TRELLIS_RETRIES_EXHAUSTED naming each try;
 * - the overall timeout bounds every attempt, backoff and the body; the caller's abort cancels
 *   the call (TRELLIS_ABORTED, its reason as cause) and is charged to no one.
 */
import type { Dispatcher } from 'undici';
import type { Classification } from '../core/classify.js';
import { timerDelay } from '../core/timer-limit.js';
import type { Deadline, DeadlineQueue } from '../core/deadline-queue.js';
import { AbortedError, RetriesExhaustedError, TimeoutError } from '../core/errors.js';
import { errorOutcome, OUTCOME_FAULT, statusLabel } from '../observability/metrics-labels.js';
import { CallerHeaders, replayableBody } from './call-headers.js';
import type { CallbackHandler } from './caller-handler.js';
import type { HttpResponseClassifier } from './http-classify.js';
import { isIdempotentMethod } from './http-request.js';
import type { CallRecorders, OutboundCore, RoutePolicy } from './outbound-core.js';
import type { Context, Tracer } from '@opentelemetry/api';
import type { MeshTracer } from '../observability/tracer.js';
import type { RouteTable } from '../traffic/route-table.js';
import { answerAbort, startWithFault } from './injected-fault.js';
import { propagatedTrace, spanTrace } from './call-trace.js';
import { startAttemptSpan } from './attempt-span.js';
import { chooseRoute } from './route-choice.js';
import { mirrorCall } from './call-mirror.js';
import { decideRetry, describeError, historyLine, neverRetried } from './retry-decision.js';
import { admitEndpoint, admitLimits } from './attempt-admission.js';
import type { SlotQueue } from '../resilience/concurrency-limit-filter.js';
import { lineStart } from './call-access-log.js';
import type { LineStart } from './call-access-log.js';
import { OutboundAttempt, outcomeOf } from './outbound-attempt.js';
import { deadlineExceeded, isPropagated, overallDeadline } from './call-deadline.js';
import { attemptHeaders, poolOptions } from './attempt-request.js';
import { classifyResponse, readWholeFirst } from './response-verdict.js';
import { bodyOutcome, recordCall } from './call-outcome.js';
import { callerBodyError } from './request-body.js';
import { CallerAbort } from './caller-abort.js';
import type { AbortTarget } from './caller-abort.js';

/** The `resume` a response read whole first is given: nothing is paused any more. */
const NO_RESUME = (): void => undefined;

const PER_TRY_TIMEOUT: Classification = Object.freeze({ kind: 'failure', conditions: Object.freeze(['timeout']) });

/** Options the mesh reads besides undici's own. */
export interface CallOptions extends Dispatcher.DispatchOptions {
  idempotent?: boolean;
  routeKey?: string;
}

export class OutboundCall implements Deadline, AbortTarget {
  // The overall deadline (a Deadline of the route's DeadlineQueue).
  deadlineAt = 0;
  deadlinePrev: Deadline | undefined = undefined;
  deadlineNext: Deadline | undefined = undefined;
  deadlineQueue: DeadlineQueue | undefined = undefined;

  readonly #core: OutboundCore;
  readonly #handler: CallbackHandler;
  readonly #opts: CallOptions;
  readonly #classify: HttpResponseClassifier | undefined;
  readonly method: string;
  /** The caller's headers as name/value pairs, without the ones the mesh writes itself. */
  readonly #headers: string[];
  /** Trace headers the caller sent (kept for a mirrored copy), when tracing strips them. */
  readonly #callerTrace: Record<string, string> | undefined;
  /** The caller's `host` header (or the route's authority rewrite); the service name when unset. */
  #host: string | undefined;
  /** Lower-cased headers for route matching, built only when the destination declares routes. */
  #matchHeaders: Record<string, string | string[]> | undefined;
  /** The matched route's policy (the default route when none are declared). */
  #route: RoutePolicy;
  #path: string;
  #routeKey: string | undefined;
  /** Trace headers, the same for every attempt (propagate-only mode): a traceparent value, or name/value pairs. */
  #trace: string | string[] | undefined;
  /** The SDK's tracer and the parent context, when spans are recorded. */
  #otel: Tracer | undefined;
  #otelParent: Context | undefined;
  readonly #idempotent: boolean;
  readonly #replayable: boolean;
  readonly #start: number;
  #deadline: number | undefined;
  /** When the overall timeout started (after an injected delay). */
  #timeoutStart = 0;
  #propagated = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #sleep: ReturnType<typeof setTimeout> | undefined;
  #attempts = 0;
  #current: OutboundAttempt | undefined;
  #avoid: Set<string> | undefined;
  #history: string[] | undefined;
  /** The caller has been told the end (onComplete or onError). */
  #finished = false;
  /** The caller has the response headers. */
  #delivered = false;
  #status = 0;
  #cls: Classification | undefined;
  /** No route matched: metrics say route `unknown`. */
  #unmatched = false;
  /** The matched route's metric recorders for this method (undefined without metrics or route). */
  recorders: CallRecorders | undefined = undefined;
  /** The breaker ticket of the attempt being admitted (attempt-admission.ts writes it; -1 without a breaker). */
  ticket = -1;
  /** The access log's start of line, when the access log is on. */
  readonly #line: LineStart | undefined;
  /** What the caller's abort function reaches the call through; cut when the call ends. */
  #abortLink: CallerAbort | undefined = undefined;
  /** What the caller's handler threw from onHeaders or onData (undici then aborts the attempt with it). */
  #thrown: unknown = undefined;

  /** `headers`: the caller's headers already read (as request validation checked them), else read from `opts`. */
  constructor(core: OutboundCore, opts: CallOptions, handler: CallbackHandler, classify: HttpResponseClassifier | undefined, headers?: CallerHeaders) {
    this.#core = core;
    this.#opts = opts;
    this.#handler = handler;
    this.#classify = classify;
    const m = opts.method;
    this.method = m === 'GET' || m === 'POST' ? m : (m ?? 'GET').toUpperCase();
    // `idempotent: true` allows retrying a POST; `false` forbids retrying a GET (as request() documents).
    const idem = opts.idempotent;
    this.#idempotent = typeof idem === 'boolean' ? idem : this.method === 'GET' || isIdempotentMethod(this.method);
    this.#replayable = replayableBody(opts.body, core.maxReplayBytes);
    this.#start = core.clock.now();
    this.#route = core.routes[0] as RoutePolicy;
    this.#path = opts.path;
    this.#routeKey = opts.routeKey;
    const h = headers ?? new CallerHeaders(opts.headers, core.tracer !== undefined, core.table !== undefined);
    this.#headers = h.pairs;
    this.#host = h.host;
    this.#matchHeaders = h.match;
    this.#callerTrace = h.trace;
    this.#traceFrom(h.trace);
    this.#line = core.accessLog === undefined ? undefined : lineStart(core.clock, core.tracer);
  }

  /** The matched route's name (the metrics label). */
  get routeName(): string {
    return this.#unmatched ? 'unknown' : this.#route.name;
  }

  /** Starts the call: tells the caller how to abort it, then sends the first attempt. */
  run(): void {
    const core = this.#core;
    const h = this.#handler;
    if (h.onConnect !== undefined) {
      const abort = new CallerAbort(this);
      this.#abortLink = abort;
      h.onConnect(abort.abort);
    }
    if (this.#finished) return;
    core.counters.requests++;
    if (core.table !== undefined && !this.#matchRoute(core.table)) return;
    this.recorders = this.#route.recorders(this.method);
    const fault = this.#route.fault;
    // Outermost on the route; an abort is answered as it is (never retried, charged to no breaker or endpoint).
    if (fault !== undefined) {
      this.#sleep = startWithFault(
        fault,
        () => !this.#finished,
        () => this.#injectAbort(fault.abortStatus),
        () => this.#sendAndMirror(),
      );
      return;
    }
    this.#sendAndMirror();
  }

  /** The primary, then (when the route mirrors and samples it) its copy (call-mirror.ts). */
  #sendAndMirror(): void {
    this.#send();
    const mirror = this.#route.mirror;
    // Sampled first: an unsampled call builds nothing for the copy.
    if (mirror === undefined || !mirror.sampled()) return;
    const o = this.#opts;
    mirrorCall(mirror, {
      service: this.#core.service,
      route: this.#route.name,
      method: this.method,
      path: this.#path,
      pairs: this.#headers,
      host: this.#host,
      trace: this.#callerTrace,
      body: o.body,
      query: o.query,
      replayable: this.#replayable,
      idempotent: this.#idempotent,
      routeKey: this.#routeKey,
      classify: this.#classify,
    });
  }

  /** Answers the call with an injected abort (injected-fault.ts). */
  #injectAbort(status: number): void {
    this.#status = status;
    this.#delivered = true;
    this.#finish();
    this.#record(statusLabel(status), OUTCOME_FAULT);
    answerAbort(this.#handler, status);
  }

  /** The timeout, the retry budget's deposit, then the first attempt. */
  #send(): void {
    const core = this.#core;

    // Overall timeout and propagated deadline: the sooner wins. The timeout starts after an
    // injected delay (Envoy's router timeout starts after its fault filter).
    const now = this.#route.fault === undefined ? this.#start : core.clock.now();
    this.#timeoutStart = now;
    const timeoutMs = this.#route.timeoutMs;
    const deadline = overallDeadline(timeoutMs, now);
    this.#propagated = isPropagated(deadline, timeoutMs, now);
    this.#deadline = deadline;
    if (deadline !== undefined) {
      if (deadline <= now) {
        this.#fail(this.#timedOut());
        return;
      }
      const q = this.#route.overall;
      // The route's own timeout shares one timer with every call of the route; a sooner propagated
      // deadline (a different duration) has a timer of its own.
      if (q !== undefined && !this.#propagated) q.add(this, now);
      else this.#timer = setTimeout(() => this.#overallTimeout(), timerDelay(deadline - now));
    }
    core.budget.deposit(now);
    // The first attempt starts now: the time just read is its start too (one clock read less).
    if (core.endpoints.known) this.#attempt(now);
    else {
      // Discovery has not answered yet: wait for it (bounded by the timeout and the caller's abort).
      core.endpoints.ready(undefined).then(() => {
        if (!this.#finished) this.#attempt();
      }, () => undefined);
    }
  }

  /** Picks the route (route-choice.ts); fails the call when none matches. */
  #matchRoute(table: RouteTable): boolean {
    const c = chooseRoute(this.#core, table, this.method, this.#path, this.#matchHeaders ?? {}, this.#host, this.#routeKey);
    if (c instanceof Error) {
      this.#unmatched = true;
      this.#fail(c);
      return false;
    }
    this.#route = c.route;
    this.#path = c.path;
    this.#host = c.host;
    this.#routeKey = c.routeKey;
    return true;
  }

  /** Tracing, decided once per call (call-trace.ts): spans per attempt with an SDK, else propagate only. */
  #traceFrom(bag: Record<string, string> | undefined): void {
    const tracer = this.#core.tracer;
    if (tracer === undefined) return;
    const otel = tracer.spanTracer();
    if (otel !== undefined) {
      this.#otel = otel;
      this.#otelParent = tracer.parentOtelContext();
      return;
    }
    this.#trace = propagatedTrace(tracer, bag);
  }

  #timedOut(): InstanceType<typeof TimeoutError> {
    return deadlineExceeded(this.#deadline, this.#timeoutStart, this.#propagated, this.#core.service, this.#route.name);
  }

  /** Sends the next attempt: rate limits, adaptive concurrency (which may wait for a slot), then the rest. */
  #attempt(at?: number): void {
    const core = this.#core;
    const n = ++this.#attempts;
    const now = at ?? core.clock.now();
    const limited = admitLimits(core, this.#route);
    if (limited !== undefined) {
      this.#refused(limited, now);
      return;
    }
    const conc = core.concurrency;
    if (conc === undefined) {
      this.#admitted(n, now, undefined);
      return;
    }
    const wait = this.#deadline === undefined ? conc.maxWaitMs : Math.min(conc.maxWaitMs, this.#deadline - now);
    const got = conc.queue.acquire(wait);
    if (got === true) this.#admitted(n, now, conc.queue);
    else if (got === false) this.#refused(conc.refuse(), now);
    else {
      got.then((ok) => {
        const later = core.clock.now();
        if (this.#finished) {
          if (ok) conc.queue.release(undefined);
        } else if (ok) this.#admitted(n, later, conc.queue);
        else this.#refused(conc.refuse(), later);
      }, () => undefined);
    }
  }

  /** Breaker admission, endpoint choice, headers, Pool; `slot` is the concurrency slot the attempt holds. */
  #admitted(n: number, now: number, slot: SlotQueue | undefined): void {
    const core = this.#core;
    const route = this.#route;
    const picked = admitEndpoint(core, route, this.#routeKey, this.#avoid, this, now);
    if (picked instanceof Error) {
      slot?.release(undefined);
      this.#refused(picked, now);
      return;
    }
    const a = new OutboundAttempt(this, core, n, picked, this.ticket, now);
    a.slot = slot;
    this.#current = a;
    let pool;
    try {
      pool = core.endpoints.pools.get(picked.endpoint);
    } catch (e) {
      this.attemptFailed(a, e as Error);
      return;
    }
    let remaining: number | undefined;
    if (this.#deadline !== undefined) {
      remaining = Math.floor(this.#deadline - now);
      if (remaining <= 0) {
        this.attemptFailed(a, new TimeoutError('deadline expired before the attempt was sent', { service: core.service, route: this.#route.name, endpoint: picked.id }));
        return;
      }
    }
    // Without one of its own, the request carries the Pool's Host (the service name, pool-set.ts).
    let trace: string | string[] | undefined = this.#trace;
    if (trace === undefined && this.#otel !== undefined) {
      const span = startAttemptSpan(this.#otel, this.#otelParent as Context, { service: core.service, route: route.name, method: this.method, path: this.#path }, n, picked);
      a.span = span;
      trace = spanTrace(core.tracer as MeshTracer, span);
    }
    const headers = attemptHeaders(this.#headers, this.#host, remaining, trace);
    // The fields besides the pseudo-headers (HTTP/2 sends the host as :authority).
    a.fields = (headers.length >> 1) - (this.#host === undefined ? 0 : 1);
    const perTry = this.#route.perTry;
    if (perTry !== undefined && (this.#deadline === undefined || now + perTry.durationMs < this.#deadline)) perTry.add(a, now);
    pool.dispatch(poolOptions(this.#path, this.method, headers, this.#opts), a);
  }

  /** An attempt refused before any endpoint (circuit open, no endpoints): counted as a try, then judged. */
  #refused(err: Error, now: number): void {
    const core = this.#core;
    this.recorders?.attempt.record('', errorOutcome(err), (core.clock.now() - now) / 1000);
    this.#judgeError(err, undefined, this.#route.classify(undefined, err), false);
  }

  /** Attempt `a`'s per-try timeout passed (its DeadlineQueue calls this). */
  perTryTimeout(a: OutboundAttempt): void {
    const ms = this.#route.perTryTimeoutMs ?? 0;
    if (a.mode === 'done' || this.#finished) return;
    const core = this.#core;
    const err = new TimeoutError(`per-try timeout of ${ms} ms expired on attempt ${a.n}`, { service: core.service, route: this.#route.name, endpoint: a.endpointId, retryable: true });
    a.cancel(err);
    this.#attemptError(a, err, PER_TRY_TIMEOUT, true);
  }

  /**
   * `err` (an attempt's error) as the caller's own mistake when it is the error the caller's request
   * body stream failed with, or a body that disagreed with its content-length header
   * (request-body.ts): a TRELLIS_INVALID_ARGUMENT, which no endpoint, breaker or retry is charged
   * with (http-classify.ts). Undefined for any other error.
   */
  callerBodyError(err: Error, endpoint: string): Error | undefined {
    // The caller's own handler threw (an undici.stream() factory, a handler's bug): its error, as
    // undici's dispatchers give it back, charged to no endpoint or breaker.
    if (err === this.#thrown) return err;
    return callerBodyError(err, this.#opts.body, this.#headers, { service: this.#core.service, route: this.routeName, endpoint });
  }

  /** The attempt failed before the caller saw anything (an error, or a reset while buffering). */
  attemptFailed(a: OutboundAttempt, err: Error): void {
    this.#attemptError(a, err, this.#route.classify(undefined, err), false);
  }

  #attemptError(a: OutboundAttempt, err: Error, cls: Classification, perTry: boolean): void {
    a.mode = 'done';
    a.settle(cls, 0, err, this.#core.clock.now());
    if (a !== this.#current || this.#finished) return;
    this.#judgeError(err, a, cls, perTry);
  }

  /** Retry or fail after an attempt's error. */
  #judgeError(err: Error, a: OutboundAttempt | undefined, cls: Classification | undefined, perTry: boolean): void {
    const n = this.#attempts;
    if (cls === undefined || cls.kind !== 'failure') {
      this.#fail(err);
      return;
    }
    const stop = this.#retryStop(cls, a, neverRetried(err, perTry), describeError(err));
    if (stop === undefined) return;
    if (n === 1) this.#fail(err);
    else {
      const core = this.#core;
      this.#fail(new RetriesExhaustedError(`gave up after ${n} attempts (${stop}): ${(this.#history ?? []).join(', ')}`, { cause: err, service: core.service, route: this.#route.name }));
    }
  }

  /** Decides on a failed attempt (retry-decision.ts): starts the retry and returns undefined, or returns why not. */
  #retryStop(cls: Classification & { kind: 'failure' }, a: OutboundAttempt | undefined, never: string | undefined, what: string): string | undefined {
    const core = this.#core;
    (this.#history ??= []).push(historyLine(this.#attempts, cls, what, a?.endpointId));
    const v = decideRetry({ route: this.#route, budget: core.budget, clock: core.clock, attempts: this.#attempts, idempotent: this.#idempotent, replayable: this.#replayable, cancelled: this.#finished, deadline: this.#deadline }, cls, never);
    if (!v.retry) return v.stop;
    this.#retry(a, v.reason, v.delay);
    return undefined;
  }

  #retry(a: OutboundAttempt | undefined, reason: string, delay: number): void {
    if (a !== undefined) (this.#avoid ??= new Set()).add(a.endpointId);
    this.#current = undefined;
    this.#route.onRetry(reason);
    if (delay <= 0) this.#attempt();
    else {
      this.#sleep = setTimeout(() => {
        this.#sleep = undefined;
        if (!this.#finished) this.#attempt();
      }, timerDelay(delay));
    }
  }

  /** The first byte of attempt `a`'s response: the caller's response-start time (fetch's resource timing), from the attempt in flight only. */
  responseStarted(a: OutboundAttempt): void {
    if (a === this.#current && !this.#finished) this.#handler.onResponseStarted?.();
  }

  /** A 1xx response: passed to the caller as it is (undici's request() hands it to onInfo). */
  informational(status: number, raw: Buffer[], resume: () => void, text: string): boolean {
    return this.#handler.onHeaders?.(status, raw, resume, text) ?? true;
  }

  /** The response headers of attempt `a`: retry it, or keep it for the caller (whole or streamed). */
  headers(a: OutboundAttempt, status: number, raw: Buffer[], resume: () => void, text: string): boolean {
    const cls = classifyResponse(this.#route, this.#classify, status, raw);
    // The usual case first: a success of the attempt in flight goes to the caller. Read whole
    // first, it settles at its body's end (`buffered`), which reads the clock then, not here.
    if (cls.kind === 'success' && a === this.#current && !this.#finished) return this.#toCaller(a, cls, status, raw, resume, text, undefined);
    const now = this.#core.clock.now();
    if (a !== this.#current || this.#finished) {
      a.settle(cls, status, undefined, now);
      a.keep('drain', status, raw, text, this.#drainMs(now));
      a.cancel(new Error('trellis: attempt no longer wanted'));
      return false;
    }
    if (cls.kind === 'ignore' && cls.shed === true) {
      // Shed before any work: sent elsewhere whatever the method, without a budget token.
      if (this.#attempts < this.#route.attempts && this.#replayable && (this.#deadline === undefined || now < this.#deadline)) {
        a.settle(cls, status, undefined, now);
        a.keep('drain', status, raw, text, this.#drainMs(now));
        this.#retry(a, 'shed', 0);
        return true;
      }
    } else if (cls.kind === 'failure') {
      if (this.#retryStopForResponse(cls, a, status, raw, text, now)) return true;
    }
    return this.#toCaller(a, cls, status, raw, resume, text, now);
  }

  /** How long a retried response's body may drain: until the call's deadline (the attempt's default without one). */
  #drainMs(now: number): number | undefined {
    return this.#deadline === undefined ? undefined : this.#deadline - now;
  }

  /** The caller gets attempt `a`'s response: whole first (readWholeFirst), or streamed from now (`now`: the clock's time, if read). */
  #toCaller(a: OutboundAttempt, cls: Classification, status: number, raw: Buffer[], resume: () => void, text: string, now: number | undefined): boolean {
    if (readWholeFirst(this.#route, this.#idempotent, this.#replayable, a.n, raw)) {
      a.keep('buffer', status, raw, text);
      this.#cls = cls;
      return true;
    }
    a.settle(cls, status, undefined, now ?? this.#core.clock.now());
    a.keep('deliver', status, raw, text);
    return this.#deliver(cls, status, raw, resume, text);
  }

  /** A failed response: true when it is being retried (then it is drained), false when the caller gets it. */
  #retryStopForResponse(cls: Classification & { kind: 'failure' }, a: OutboundAttempt, status: number, raw: Buffer[], text: string, now: number): boolean {
    // Settle first (metrics, breaker, latency), as the promise stack's layers did before retry saw the result.
    a.settle(cls, status, undefined, now);
    const stop = this.#retryStop(cls, a, undefined, String(status));
    if (stop !== undefined) return false;
    a.keep('drain', status, raw, text, this.#drainMs(now));
    return true;
  }

  #deliver(cls: Classification, status: number, raw: Buffer[], resume: () => void, text: string): boolean {
    this.#cls = cls;
    this.#status = status;
    this.#delivered = true;
    try {
      return this.#handler.onHeaders?.(status, raw, resume, text) ?? true;
    } catch (e) {
      this.#thrown = e;
      throw e;
    }
  }

  /** A small body read whole: settles the attempt, then gives the caller the whole response. */
  buffered(a: OutboundAttempt, status: number, raw: Buffer[], text: string, chunks: Buffer[], trailers: string[] | Buffer[] | null): void {
    const cls = this.#cls as Classification;
    // The body's end: the attempt settles, and (the whole response handed over at once) the call ends, now.
    const now = this.#core.clock.now();
    a.settle(cls, status, undefined, now);
    // The body is complete: the endpoint's report is due now.
    a.ended();
    if (this.#finished) return;
    const h = this.#handler;
    try {
      this.#deliver(cls, status, raw, NO_RESUME, text);
      for (const c of chunks) {
        if (this.#finished) return;
        h.onData?.(c);
      }
    } catch (e) {
      // The caller's handler threw: undici ignores it here (the attempt is complete), so the call
      // ends with it now, or nothing would end it before its deadline (never, without one).
      this.#thrown = e;
      this.bodyFailed(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.complete(trailers, now);
  }

  data(chunk: Buffer): boolean {
    if (this.#finished) return true;
    try {
      return this.#handler.onData?.(chunk) ?? true;
    } catch (e) {
      this.#thrown = e;
      throw e;
    }
  }

  /** The delivered response's body ended (`now`: the clock's time, when just read). */
  complete(trailers: string[] | Buffer[] | null, now?: number): void {
    if (this.#finished) return;
    this.#finish();
    this.#record(statusLabel(this.#status), outcomeOf(this.#cls as Classification), now);
    this.#handler.onComplete?.(trailers ?? []);
  }

  /** The delivered response's body failed (a reset mid-body). */
  bodyFailed(err: Error): void {
    if (this.#finished) return;
    this.#finish();
    this.#record(statusLabel(this.#status), bodyOutcome(err));
    this.#handler.onError?.(err);
  }

  /** Ends the call with `err`: before the headers (no status) or, once delivered, on the body. */
  #fail(err: Error): void {
    if (this.#finished) return;
    this.#finish();
    const cur = this.#current;
    if (cur !== undefined) {
      const mode = cur.mode;
      cur.cancel(err);
      if (mode === 'wait' || mode === 'buffer') cur.settle(this.#route.classify(undefined, err), 0, err, this.#core.clock.now());
    }
    if (this.#delivered) this.#record(statusLabel(this.#status), bodyOutcome(err));
    else this.#record('', errorOutcome(err));
    this.#handler.onError?.(err);
  }

  /** The overall timeout passed (the route's DeadlineQueue calls this). */
  onDeadline(): void {
    this.#overallTimeout();
  }

  #overallTimeout(): void {
    this.#timer = undefined;
    if (this.#finished) return;
    this.#fail(this.#timedOut());
  }

  /** The caller's abort (through CallerAbort, which the call cuts when it ends). */
  callerAbort(reason: Error | undefined): void {
    if (this.#finished) return;
    this.#fail(new AbortedError('the caller aborted the request', { cause: reason, service: this.#core.service, route: this.#route.name }));
  }

  #finish(): void {
    this.#finished = true;
    this.#abortLink?.cut();
    this.deadlineQueue?.cancel(this);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#sleep !== undefined) clearTimeout(this.#sleep);
    this.#timer = this.#sleep = undefined;
  }

  #record(status: string, outcome: string, now?: number): void {
    recordCall(this.#core, this.recorders, this.#line, this.#unmatched ? undefined : this.#route.name, this.method, this.#start, status, this.#status, outcome, now);
  }
}
