/**
 * The HTTP edge's response classifier (Finagle's ResponseClassifier): decides, once, what an
 * attempt's outcome means for retries, the breaker, outlier detection and metrics.
 *
 * Defaults: 5xx responses are failures (conditions `5xx`, the code, and `gateway-error` for
 * 502/503/504); a 4xx is a success for the mesh (the upstream is healthy) unless its code is
 * listed in `retries.on` (e.g. 409) or `retriable-4xx` (409) is; transport errors carry their
 * own condition (`connect-failure`, `reset`, `timeout`). A user classifier given to
 * `mesh.http(service, { classify })` is consulted first for responses.
 */
import type { Dispatcher } from 'undici';
import { IGNORE, SHED, SUCCESS } from '../core/classify.js';
import { SHED_HEADER } from '../core/shed.js';
import type { Classification, Classifier } from '../core/classify.js';
import { isTrellisError, TrellisError } from '../core/errors.js';

/** What a user classifier may answer for a response; undefined = use the default. */
export type ResponseClass = 'success' | 'failure' | 'retryable-failure' | undefined;

/** A user classifier: sees status and headers (the body is still unread). */
export type HttpResponseClassifier = (res: { statusCode: number; headers: Dispatcher.ResponseData['headers'] }) => ResponseClass;

/** Condition a user classifier's `retryable-failure` raises; always listed in retry conditions. */
export const USER_RETRYABLE = 'classified-retryable';

const kUserClass = Symbol('trellis.userClass');

type Tagged = Dispatcher.ResponseData & { [kUserClass]?: ResponseClass };

/** Records a user classification on a response (done at the endpoint level, where it is known). */
export function tagResponse(res: Dispatcher.ResponseData, cls: ResponseClass): void {
  if (cls !== undefined) (res as Tagged)[kUserClass] = cls;
}

const GATEWAY = new Set([502, 503, 504]);
const FAILURE_FROZEN = new Map<number, Classification>();

function statusFailure(status: number): Classification {
  let c = FAILURE_FROZEN.get(status);
  if (c === undefined) {
    const conditions = status >= 500 ? ['5xx', String(status)] : [String(status)];
    if (GATEWAY.has(status)) conditions.push('gateway-error');
    if (status === 409) conditions.push('retriable-4xx');
    c = Object.freeze({ kind: 'failure', conditions: Object.freeze(conditions) });
    FAILURE_FROZEN.set(status, c);
  }
  return c;
}

const USER_FAILURE: Classification = Object.freeze({ kind: 'failure', conditions: Object.freeze([]) });
const USER_RETRYABLE_FAILURE: Classification = Object.freeze({ kind: 'failure', conditions: Object.freeze([USER_RETRYABLE]) });

const ERROR_CONDITIONS: Record<string, Classification> = {
  TRELLIS_CONNECT_FAILED: Object.freeze({ kind: 'failure', conditions: Object.freeze(['connect-failure']) }),
  TRELLIS_RESET: Object.freeze({ kind: 'failure', conditions: Object.freeze(['reset']) }),
  TRELLIS_TIMEOUT: Object.freeze({ kind: 'failure', conditions: Object.freeze(['timeout']) }),
  TRELLIS_UPSTREAM_ERROR: Object.freeze({ kind: 'failure', conditions: Object.freeze(['reset']) }),
  TRELLIS_NO_ENDPOINTS: Object.freeze({ kind: 'failure', conditions: Object.freeze([]) }),
  // The endpoint is not who it must be (stale discovery or an impostor): a failure of that
  // endpoint for outlier detection and the breaker, but no retry condition — another attempt
  // cannot change a certificate, and docs promise identity failures are never retried.
  TRELLIS_PEER_IDENTITY: Object.freeze({ kind: 'failure', conditions: Object.freeze([]) }),
  // Our own certificate is missing: nothing left the process, so nothing is charged to anyone.
  TRELLIS_NO_IDENTITY: IGNORE,
  // The caller's own mistake (its request body stream failed while sent): charged to no one.
  TRELLIS_INVALID_ARGUMENT: IGNORE,
};

/**
 * Builds the classifier for one destination. `retryOn` are the destination's retry conditions:
 * 4xx codes listed there become (retryable) failures.
 */
export function httpClassifier(retryOn: readonly string[]): Classifier<Dispatcher.ResponseData> {
  const retriable4xx = new Set<number>();
  for (const c of retryOn) {
    if (/^4\d\d$/.test(c)) retriable4xx.add(Number(c));
    if (c === 'retriable-4xx') retriable4xx.add(409);
  }
  return (res, err) => {
    if (res !== undefined) {
      // Shed by an overloaded instance before any work: first, whatever a user classifier says.
      if (res.statusCode === 503 && res.headers?.[SHED_HEADER] !== undefined) return SHED;
      const user = (res as Tagged)[kUserClass];
      if (user === 'success') return SUCCESS;
      if (user === 'failure') return USER_FAILURE;
      if (user === 'retryable-failure') return USER_RETRYABLE_FAILURE;
      const s = res.statusCode;
      if (s >= 500) return statusFailure(s);
      if (s >= 400 && retriable4xx.has(s)) return statusFailure(s);
      return SUCCESS;
    }
    if (err instanceof TrellisError) {
      if (err.code === 'TRELLIS_ABORTED' || err.code === 'TRELLIS_CIRCUIT_OPEN' || err.code === 'TRELLIS_RATE_LIMITED' || err.code === 'TRELLIS_CLOSED') return IGNORE;
      return ERROR_CONDITIONS[err.code] ?? ERROR_CONDITIONS.TRELLIS_UPSTREAM_ERROR ?? IGNORE;
    }
    return ERROR_CONDITIONS.TRELLIS_UPSTREAM_ERROR ?? IGNORE;
  };
}

/** Runs `done` once the response body has finished (consumed, dumped, destroyed or errored). */
export function whenBodyDone(res: Dispatcher.ResponseData, done: () => void): void {
  const body = res.body as Dispatcher.ResponseData['body'] & { closed?: boolean; destroyed?: boolean };
  if (body.closed === true || body.destroyed === true) {
    done();
    return;
  }
  body.once('close', done);
}

/** Whether a response body ended in a failure of the endpoint: the connection reset or the body was malformed. */
export function bodyFailed(res: Dispatcher.ResponseData): boolean {
  const err = (res.body as { errored?: unknown }).errored;
  return isTrellisError(err, 'TRELLIS_RESET') || isTrellisError(err, 'TRELLIS_UPSTREAM_ERROR');
}

/** `whenBodyDone`, telling `done` whether the body ended in a failure of the endpoint. */
export function whenBodySettled(res: Dispatcher.ResponseData, done: (failed: boolean) => void): void {
  whenBodyDone(res, () => done(bodyFailed(res)));
}

/** Releases a response that will not reach the caller: reads and drops a small body, keeping the connection. */
export function discardResponse(res: Dispatcher.ResponseData): void {
  res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
}
