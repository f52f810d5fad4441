/**
 * One attempt of an outbound call on one endpoint: the undici callback handler handed to the
 * endpoint's Pool (`pool.dispatch(opts, attempt)`), and the endpoint-level bookkeeping of the
 * described stack below retry — attempt metrics, the breaker's verdict, the endpoint's load,
 * latency and outlier stats — written as plain field updates on the attempt's own callbacks.
 *
 * What to do with the response (retry it, hand it to the caller, read a small body whole first)
 * is the call's decision (outbound-call.ts); the attempt reports each event to it and keeps the
 * mode it was told:
 *
 * - `wait`: before the response headers;
 * - `deliver`: headers and body chunks go to the caller's handler as undici gave them;
 * - `buffer`: a small body is read whole before the caller sees anything, so a reset mid-body
 *   fails the attempt (and is retried) instead of reaching the caller half-read;
 * - `drain`: the response will be retried: its body is read and dropped (keeping the connection),
 *   up to DRAIN_LIMIT, past which the attempt is aborted, and until the call's deadline (or
 *   DRAIN_TIMEOUT_MS without one), past which it is aborted too: the Pool's bodyTimeout is off,
 *   so a body that stalls would otherwise hold its connection and the endpoint's load for ever;
 * - `done`: ended, or cancelled by the call (late callbacks are ignored).
 *
 * Invariants: the endpoint's `outstanding` count is released exactly once (at the body's end, an
 * error, or a cancel); the breaker ticket is released once and its outcome recorded at most once;
 * attempt metrics are recorded once, when the attempt settles (its headers, or its error).
 */
import type { Classification } from '../core/classify.js';
import { errorOutcome, OUTCOME_FAILURE, OUTCOME_FAULT, OUTCOME_SUCCESS, statusLabel } from '../observability/metrics-labels.js';
import type { LbEndpoint } from '../lb/lb-endpoint.js';
import type { OutboundCore } from './outbound-core.js';
import { headerFieldsRefused, isBodylessLengthMismatch, mapTransportError } from './undici-errors.js';
import type { OutboundCall } from './outbound-call.js';
import type { Deadline, DeadlineQueue } from '../core/deadline-queue.js';
import type { Span } from '@opentelemetry/api';
import { spanError, spanResponse } from './attempt-span.js';
import type { SlotQueue } from '../resilience/concurrency-limit-filter.js';
import { isTrellisError } from '../core/errors.js';
import { timerDelay } from '../core/timer-limit.js';
import { contentLength } from './call-headers.js';

/** Largest body drained to keep a connection when a response is retried; larger ones are aborted. */
export const DRAIN_LIMIT = 64 * 1024;

/** How long a drained body may take when the call has no deadline (`timeout: 0`). */
export const DRAIN_TIMEOUT_MS = 15_000;

const NO_CHUNKS: Buffer[] = [];

type Mode = 'wait' | 'deliver' | 'buffer' | 'drain' | 'done';

/** A classification's metric outcome. */
export function outcomeOf(cls: Classification): string {
  return cls.kind === 'success' ? OUTCOME_SUCCESS : cls.kind === 'failure' ? OUTCOME_FAILURE : OUTCOME_FAULT;
}

export class OutboundAttempt implements Deadline {
  readonly #call: OutboundCall;
  readonly #core: OutboundCore;
  /** 1-based attempt number. */
  readonly n: number;
  readonly load: LbEndpoint;
  /** The breaker ticket (CircuitBreaker.admit), or -1 with no breaker. */
  readonly #ticket: number;
  readonly #start: number;
  mode: Mode = 'wait';
  #abort: ((reason?: Error) => void) | undefined;
  /** Why the call cancelled this attempt (set before aborting it in undici). */
  #cancelled: Error | undefined;
  /** The classification at the headers, reported to the endpoint (and breaker) at the body's end. */
  #cls: Classification | undefined;
  /** Whether the breaker's verdict waits for the body's end. */
  #breakerAtEnd = false;
  #released = false;
  #settled = false;
  #drained = 0;
  /** Body bytes received for the caller (`deliver`, `buffer`), checked against the content-length at the end. */
  #received = 0;
  /** Ends a drain that outlives the call's deadline. */
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  #chunks: Buffer[] | undefined;
  #status = 0;
  #raw: Buffer[] | undefined;
  #statusText = '';
  // The per-try deadline (a Deadline of the route's per-try DeadlineQueue), armed by the call.
  deadlineAt = 0;
  deadlinePrev: Deadline | undefined = undefined;
  deadlineNext: Deadline | undefined = undefined;
  deadlineQueue: DeadlineQueue | undefined = undefined;
  /** The attempt's CLIENT span, when an SDK records spans. */
  span: Span | undefined = undefined;
  /** The adaptive concurrency slot the attempt holds, given back when it settles. */
  slot: SlotQueue | undefined = undefined;
  /** How many header fields the attempt sent besides the pseudo-headers (its host is :authority over HTTP/2). */
  fields = 0;

  constructor(call: OutboundCall, core: OutboundCore, n: number, load: LbEndpoint, ticket: number, start: number) {
    this.#call = call;
    this.#core = core;
    this.n = n;
    this.load = load;
    this.#ticket = ticket;
    this.#start = start;
    load.outstanding++;
  }

  get endpointId(): string {
    return this.load.endpoint.id;
  }

  // undici callback handler.

  onConnect(abort: (reason?: Error) => void): void {
    this.#abort = abort;
    if (this.#cancelled !== undefined) abort(this.#cancelled);
  }

  onResponseStarted(): void {
    this.#call.responseStarted(this);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    const mode = this.mode;
    if (mode === 'done') return false;
    if (mode !== 'wait') return true;
    if (statusCode < 200) return this.#call.informational(statusCode, rawHeaders, resume, statusText);
    return this.#call.headers(this, statusCode, rawHeaders, resume, statusText);
  }

  onData(chunk: Buffer): boolean {
    switch (this.mode) {
      case 'deliver':
        this.#received += chunk.length;
        return this.#call.data(chunk);
      case 'buffer':
        this.#received += chunk.length;
        // Most small bodies come in one chunk: a one-element array, not a grown empty one.
        if (this.#chunks === undefined) this.#chunks = [chunk];
        else this.#chunks.push(chunk);
        return true;
      case 'drain':
        this.#drained += chunk.length;
        if (this.#drained > DRAIN_LIMIT) this.cancel(new Error('trellis: retried response body too large to drain'));
        return true;
      default:
        return true;
    }
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    const mode = this.mode;
    if (mode === 'done' || mode === 'wait') return;
    if (mode !== 'drain' && this.#shortBody()) return;
    this.mode = 'done';
    if (mode === 'buffer') {
      const chunks = this.#chunks ?? NO_CHUNKS;
      this.#chunks = undefined;
      this.#call.buffered(this, this.#status, this.#raw ?? [], this.#statusText, chunks, trailers);
      return;
    }
    this.#endOfBody(false);
    if (mode === 'deliver') this.#call.complete(trailers);
  }

  onError(err: Error): void {
    const mode = this.mode;
    if (mode === 'done') return;
    // A 204 or 304 with a content-length is complete (undici-errors.ts); undici reports it as an error.
    if (mode !== 'wait' && this.#cancelled === undefined && isBodylessLengthMismatch(this.#status, err)) {
      this.onComplete(null);
      return;
    }
    this.mode = 'done';
    this.deadlineQueue?.cancel(this);
    const ours = this.#cancelled;
    if (mode === 'wait' || mode === 'buffer') {
      const subject = { service: this.#core.service, route: this.#call.routeName, endpoint: this.endpointId };
      const e = ours ?? this.#call.callerBodyError(err, this.endpointId) ?? (mode === 'wait' ? headerFieldsRefused(err, this.fields, subject) : undefined) ?? mapTransportError(err, subject, mode === 'buffer' ? 'mid-body' : 'request');
      this.#call.attemptFailed(this, e);
      return;
    }
    // After the headers: the body was cut short, by the endpoint unless the caller's own request
    // body failed (an early response streams while the upload goes on): that is charged to no one.
    const mine = ours === undefined ? this.#call.callerBodyError(err, this.endpointId) : undefined;
    this.#endOfBody(ours === undefined && mine === undefined);
    if (mode === 'deliver') {
      this.#call.bodyFailed(ours ?? mine ?? mapTransportError(err, { service: this.#core.service, route: this.#call.routeName, endpoint: this.endpointId }, 'mid-body'));
    }
  }

  /**
   * A body that ended short of its content-length, failed as undici's HTTP/1.1 client fails it.
   * undici's HTTP/2 client completes a response at its stream's end, and node:http2 ends the
   * stream before it reports the peer's RST_STREAM when the reset follows the last DATA frame
   * closely: a 200 of content-length 100 cut after 7 bytes reached the caller as complete.
   */
  #shortBody(): boolean {
    // HTTP/2 only: undici's HTTP/1.1 client checks the length itself (it fails the response first).
    if (!this.#core.endpoints.pools.http2) return false;
    const raw = this.#raw;
    if (raw === undefined || this.#status === 204 || this.#status === 304 || this.#call.method === 'HEAD') return false;
    const expected = contentLength(raw);
    if (expected < 0 || this.#received === expected) return false;
    const err = new Error(`the response body ended after ${this.#received} of its ${expected} bytes (content-length)`);
    (err as Error & { code: string }).code = 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH';
    this.onError(err);
    return true;
  }

  /** The per-try timeout passed before the attempt settled. */
  onDeadline(): void {
    this.#call.perTryTimeout(this);
  }

  // Called by the call.

  /** Keeps the response for the mode the call chose (at the headers); `drainMs` bounds a drain. */
  keep(mode: 'deliver' | 'buffer' | 'drain', status: number, raw: Buffer[], statusText: string, drainMs = DRAIN_TIMEOUT_MS): void {
    this.mode = mode;
    this.#status = status;
    if (mode === 'drain') {
      this.#drainTimer = setTimeout(() => this.cancel(new Error('trellis: retried response body not drained before the deadline')), timerDelay(Math.max(0, drainMs)));
      this.#drainTimer.unref();
    } else {
      this.#raw = raw;
      this.#statusText = statusText;
    }
  }

  /**
   * The attempt's outcome is known (its headers, a buffered body, or an error): attempt metrics,
   * the breaker's verdict, the endpoint's latency sample. With a response, the endpoint's (and a
   * success's breaker) report waits for the body's end (`#endOfBody`).
   */
  settle(cls: Classification, status: number, err: Error | undefined, now: number): void {
    if (this.#settled) return;
    this.#settled = true;
    this.deadlineQueue?.cancel(this);
    const core = this.#core;
    const slot = this.slot;
    if (slot !== undefined) {
      // The latency sample: a response's (not a shed answer's), or a timeout's elapsed time.
      this.slot = undefined;
      slot.release(err === undefined ? (cls.kind === 'ignore' ? undefined : now - this.#start) : isTrellisError(err, 'TRELLIS_TIMEOUT') ? now - this.#start : undefined);
    }
    this.#call.recorders?.attempt.record(err === undefined ? statusLabel(status) : '', err === undefined ? outcomeOf(cls) : errorOutcome(err), (now - this.#start) / 1000);
    const breaker = core.breaker;
    const ticket = this.#ticket;
    if (breaker !== undefined && ticket >= 0) {
      // A success is counted when its body ends (a reset mid-body is a failure); a probe, a
      // failure or an ignored outcome is counted now, which frees the half-open probe slot.
      if (cls.kind === 'success' && err === undefined && (ticket & 1) === 0) this.#breakerAtEnd = true;
      else breaker.report(ticket, cls.kind);
    }
    const span = this.span;
    if (span !== undefined) {
      if (err === undefined) spanResponse(span, status);
      else {
        spanError(span, err);
        span.end();
        this.span = undefined;
      }
    }
    const load = this.load;
    if (err === undefined) {
      // A shed answer is instant and says nothing about the endpoint's latency.
      if (cls.kind !== 'ignore' || cls.shed !== true) load.observe(now - this.#start, now);
      this.#cls = cls;
    } else {
      this.#release();
      if (cls.kind === 'failure') {
        load.observe(now - this.#start, now);
        core.endpoints.report(load.id, false);
      }
    }
  }

  /**
   * Stops the attempt for `reason` (per-try or overall timeout, caller abort, a retry elsewhere).
   * Cancelled before its outcome was known (`wait`, `buffer`), it must then be `settle`d with it.
   */
  cancel(reason: Error): void {
    if (this.#cancelled !== undefined) return;
    this.#cancelled = reason;
    this.deadlineQueue?.cancel(this);
    const mode = this.mode;
    if (mode === 'done') return;
    // Late callbacks (undici reports our abort, maybe synchronously) are ignored from here: before
    // the outcome is known, the call settles the attempt itself with `reason`.
    this.mode = 'done';
    // After the headers, what the response said still counts, not our abort.
    if (mode === 'deliver' || mode === 'drain') this.#endOfBody(false);
    this.#abort?.(reason);
  }

  /** The buffered body was read whole: the endpoint's and breaker's deferred reports are due. */
  ended(): void {
    this.mode = 'done';
    this.#endOfBody(false);
  }

  /** The body ended (`failed`: the connection failed mid-body): the endpoint's and breaker's deferred reports. */
  #endOfBody(failed: boolean): void {
    this.#release();
    if (this.#drainTimer !== undefined) {
      clearTimeout(this.#drainTimer);
      this.#drainTimer = undefined;
    }
    if (this.span !== undefined) {
      this.span.end();
      this.span = undefined;
    }
    const cls = this.#cls;
    const core = this.#core;
    if (failed) core.endpoints.report(this.load.id, false);
    else if (cls !== undefined && cls.kind !== 'ignore') core.endpoints.report(this.load.id, cls.kind === 'success');
    if (this.#breakerAtEnd) {
      this.#breakerAtEnd = false;
      core.breaker?.report(this.#ticket, failed ? 'failure' : 'success');
    }
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.load.outstanding--;
  }
}
