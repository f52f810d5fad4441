/**
 * Test doubles shared by the resilience tests: a tiny response type, a classifier in the shape
 * the HTTP edge will use, and small timing helpers.
 */
import { IGNORE, SUCCESS, type Classification } from '../../src/core/classify.js';
import { CallContext } from '../../src/core/context.js';
import { isTrellisError } from '../../src/core/errors.js';

export interface FakeRes {
  status: number;
  discarded: boolean;
}

export const res = (status: number): FakeRes => ({ status, discarded: false });

export function classify(result: FakeRes | undefined, error: unknown): Classification {
  if (result !== undefined) {
    if (result.status < 500) return SUCCESS;
    const conditions = ['5xx', String(result.status)];
    if (result.status >= 502 && result.status <= 504) conditions.unshift('gateway-error');
    return { kind: 'failure', conditions };
  }
  if (isTrellisError(error, 'TRELLIS_ABORTED')) return IGNORE;
  if (isTrellisError(error, 'TRELLIS_CONNECT_FAILED')) return { kind: 'failure', conditions: ['connect-failure'] };
  if (isTrellisError(error, 'TRELLIS_RESET')) return { kind: 'failure', conditions: ['reset'] };
  // Deliberately matchable, to show that some codes are never retried whatever they classify as.
  if (isTrellisError(error)) return { kind: 'failure', conditions: ['gateway-error'] };
  return { kind: 'failure', conditions: [] };
}

export const discard = (r: FakeRes): void => {
  r.discarded = true;
};

export const ctxFor = (idempotent = true, service = 'products'): CallContext => new CallContext(service, idempotent);

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A promise with its resolvers, for holding a fake call open. */
export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A promise that never settles and holds nothing (a hung upstream that ignores its signal). */
export const never = <T>(): Promise<T> => new Promise<T>(() => {});
