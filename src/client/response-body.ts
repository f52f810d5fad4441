/**
 * The response body of one attempt, made safe (docs/reliability.md row C5: reset mid-body). Two jobs:
 *
 * - Typed errors: when the connection dies while the body streams (a reset, the upstream closing
 *   early, a malformed chunk), undici destroys the body with its own socket error. `guardBody`
 *   turns such an error into TRELLIS_RESET (or TRELLIS_UPSTREAM_ERROR for a parse error) naming
 *   service, route and endpoint, with undici's error as cause, so the caller never sees a raw
 *   `UND_ERR_SOCKET`, and a truncated body is never a success. Errors the caller or our own
 *   signal put there pass unchanged.
 * - Retry before the caller reads: `bufferBody` reads a body of known length up to
 *   `REPLAY_BODY_CAP` (64 KiB) to its end before the attempt resolves, when a reset could still
 *   be retried. A reset while buffering then fails the *attempt* (the retry filter retries it,
 *   the breaker and outlier detection count it); the caller gets a complete body or an error,
 *   never half of one. Bodies of unknown length (chunked, streams that may never end) or larger
 *   than the cap are streamed as they come: a reset there reaches the caller as TRELLIS_RESET on
 *   the stream, and is not retried (part of the body may already be consumed).
 */
import type { Dispatcher } from 'undici';
import type { CallSignal } from '../core/call-signal.js';
import { isTrellisError } from '../core/errors.js';
import type { ErrorSubject } from '../core/errors.js';
import { BufferedBody } from './buffered-body.js';
import { isTransportError, mapTransportError } from './undici-errors.js';

/** Largest body read whole before the caller sees the response (the replay cap's size). */
export const REPLAY_BODY_CAP = 64 * 1024;

type Body = Dispatcher.ResponseData['body'];

/** Makes transport failures that end `res.body` typed errors naming `subject`. */
export function guardBody(res: Dispatcher.ResponseData, subject: ErrorSubject): void {
  const body = res.body;
  const destroy = body.destroy;
  // undici ends the body through destroy(err) (core/util.js destroy): a per-instance override is
  // the one place every transport failure passes, and costs nothing on a healthy response.
  body.destroy = function (this: Body, err?: Error) {
    return destroy.call(this, err !== undefined && err !== null && !isTrellisError(err) && isTransportError(err) ? mapTransportError(err, subject, 'mid-body') : err);
  } as Body['destroy'];
}

/** Whether `res` has a body of known length small enough to read whole before resolving. */
export function bufferable(res: Dispatcher.ResponseData): boolean {
  const cl = res.headers['content-length'];
  if (typeof cl !== 'string') return false;
  const n = Number(cl);
  return Number.isInteger(n) && n >= 0 && n <= REPLAY_BODY_CAP;
}

/**
 * Reads `res.body` to its end and replaces it with a BufferedBody; rejects with the body's
 * (guarded, so typed) error when the connection fails first.
 */
export function bufferBody(res: Dispatcher.ResponseData, signal: CallSignal | undefined): Promise<Dispatcher.ResponseData> {
  const body = res.body;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    body.on('data', (c: Buffer) => chunks.push(c));
    body.once('error', reject);
    body.once('end', () => {
      const ct = res.headers['content-type'];
      res.body = new BufferedBody(chunks, typeof ct === 'string' ? ct : '', signal) as unknown as Body;
      resolve(res);
    });
  });
}
