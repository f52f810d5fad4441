/**
 * Classification: the protocol edge tells the protocol-neutral layers (retry, breaker, outlier
 * detection, metrics) what a result means, so they are written once for HTTP, gRPC and TCP.
 *
 * - `success`: counts as a success everywhere.
 * - `failure`: counts against breaker and outlier detection; `condition` names what
 *   happened (`5xx`, `gateway-error`, a status code, `reset`, ...) for retry matching.
 * - `ignore`: neither success nor failure (e.g. a caller abort, an injected fault); with
 *   `shed`, the upstream refused before doing any work and asked for another instance.
 */

/** Names of the conditions a retry policy can match (`retries.on`). */
export type RetryCondition = string;

export type Classification =
  | { readonly kind: 'success' }
  | { readonly kind: 'failure'; readonly conditions: readonly RetryCondition[] }
  | { readonly kind: 'ignore'; readonly shed?: boolean };

export const SUCCESS: Classification = Object.freeze({ kind: 'success' });
export const IGNORE: Classification = Object.freeze({ kind: 'ignore' });
/**
 * The upstream shed the request before doing any work (src/core/shed.ts): neither success nor
 * failure for the breaker and outlier detection, not a latency sample, and retried on another
 * endpoint whatever the method, without spending the retry budget.
 */
export const SHED: Classification = Object.freeze({ kind: 'ignore', shed: true });

/** Classifies a settled attempt: `error` is set when it threw, `result` when it returned. */
export type Classifier<Res> = (result: Res | undefined, error: unknown) => Classification;

/** Releases a result that will not reach the caller (e.g. drains an HTTP body before a retry). */
export type Discard<Res> = (result: Res) => void;
