/**
 * A route's fault injection on the hot path (Istio's semantics, as traffic/fault-filter.ts):
 * compiled once per route (`coreFault`), each percentage drawn independently per call; an abort
 * is answered to the caller as it is (`answerAbort`), never retried and charged to no breaker or
 * endpoint; a delay precedes the request (outbound-call.ts waits, then starts the timeout).
 */
import { STATUS_CODES } from 'node:http';
import type { Random } from '../core/clock.js';
import type { RouteSpec } from '../config/types.js';
import type { CallbackHandler } from './caller-handler.js';
import type { ServiceState } from './service-state.js';
import { timerDelay } from '../core/timer-limit.js';

/** A route's fault injection, compiled: each percentage drawn independently per call. */
export interface CoreFault {
  readonly delayMs: number;
  readonly delayHits: () => boolean;
  readonly abortStatus: number;
  readonly abortHits: () => boolean;
  /** Counts one injected fault (the destination's `faults` counter). */
  onFault(): void;
}

function sampler(percent: number, random: Random): () => boolean {
  if (!(percent > 0)) return () => false;
  if (percent >= 100) return () => true;
  const p = percent / 100;
  return () => random() < p;
}

/** The route's faults, or undefined when it injects none. */
export function coreFault(route: RouteSpec, state: ServiceState, random: Random): CoreFault | undefined {
  const f = route.fault;
  if (f === undefined || (f.abort === undefined && f.delay === undefined)) return undefined;
  const delayMs = f.delay?.durationMs ?? 0;
  return {
    delayMs,
    delayHits: f.delay !== undefined && delayMs > 0 ? sampler(f.delay.percent, random) : () => false,
    abortStatus: f.abort?.status ?? 0,
    abortHits: f.abort !== undefined ? sampler(f.abort.percent, random) : () => false,
    onFault: () => {
      state.counters.faults++;
    },
  };
}

/** What an injected abort answers (Envoy's text). */
const FAULT_BODY = Buffer.from('fault filter abort', 'utf8');

/** Answers an injected abort: `status`, a short text body, `x-trellis-fault: abort` (as synthetic-response.ts). */
export function answerAbort(handler: CallbackHandler, status: number): void {
  const body = FAULT_BODY;
  const raw = [Buffer.from('content-type'), Buffer.from('text/plain; charset=utf-8'), Buffer.from('content-length'), Buffer.from(String(body.length)), Buffer.from('x-trellis-fault'), Buffer.from('abort')];
  handler.onHeaders?.(status, raw, () => undefined, STATUS_CODES[status] ?? '');
  handler.onData?.(body);
  handler.onComplete?.([]);
}

/**
 * A route's faults at the start of a call, in Istio's order, for both hot paths (outbound-call.ts,
 * grpc/unary-call.ts): a delay first (it precedes the call without eating into its timeout), then
 * an abort, answered by `abort` (undefined: the route cannot abort) instead of `send`. `send` is
 * told whether a delay came first. Returns the delay's timer, for the caller to clear when the call
 * ends during it; the timer does nothing once `live()` is false.
 */
export function startWithFault(fault: CoreFault, live: () => boolean, abort: (() => void) | undefined, send: (delayed: boolean) => void): ReturnType<typeof setTimeout> | undefined {
  const afterDelay = (delayed: boolean): void => {
    if (abort !== undefined && fault.abortHits()) {
      fault.onFault();
      abort();
      return;
    }
    send(delayed);
  };
  if (!fault.delayHits()) {
    afterDelay(false);
    return undefined;
  }
  fault.onFault();
  return setTimeout(() => {
    if (live()) afterDelay(true);
  }, timerDelay(fault.delayMs));
}
