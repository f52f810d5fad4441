/**
 * Finding a TrellisError behind a wrapper. Node's fetch reports every dispatcher failure as
 * `TypeError: fetch failed` with the real error in `cause`, and applications wrap errors the
 * same way; these helpers look along the `cause` chain so callers can still ask "was this a
 * Trellis circuit-open?". They are the public `trellisErrorOf` and `isTrellisError`.
 *
 * The outermost TrellisError wins: a TRELLIS_RETRIES_EXHAUSTED is not mistaken for the
 * TRELLIS_CONNECT_FAILED it keeps as its cause. The walk is bounded (a cyclic chain is legal).
 */
import { TrellisError } from './errors.js';
import type { ErrorCode } from './errors.js';

/** Wrappers such as fetch's add one or two levels; the bound only guards against cycles. */
const MAX_CAUSE_DEPTH = 8;

/**
 * The TrellisError behind `err`: `err` itself, or the first one along its `cause` chain; with
 * `code`, only when that one has this code.
 *
 * @example
 * try { await fetch('http://products/list'); }
 * catch (e) { if (trellisErrorOf(e)?.code === 'TRELLIS_CIRCUIT_OPEN') return cached(); throw e; }
 */
export function trellisErrorOf(err: unknown, code?: ErrorCode): TrellisError | undefined {
  let current: unknown = err;
  for (let depth = 0; depth <= MAX_CAUSE_DEPTH && typeof current === 'object' && current !== null; depth++) {
    if (current instanceof TrellisError) return code === undefined || current.code === code ? current : undefined;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * True when `err` is a TrellisError or wraps one (see `trellisErrorOf`), optionally with the
 * given code. Not a type guard, since `err` may be the wrapper: `trellisErrorOf(err)` returns
 * the TrellisError itself.
 */
export function isOrWrapsTrellisError(err: unknown, code?: ErrorCode): boolean {
  return trellisErrorOf(err, code) !== undefined;
}
