/**
 * Label values of Trellis metrics, kept to small fixed sets so that no request can create an
 * unbounded number of series (the public contract (docs/), "Observability names"):
 *
 * - `method`: the HTTP methods OpenTelemetry knows (RFC 9110 plus PATCH), case-sensitive as the
 *   semantic conventions say; anything else is `_OTHER`.
 * - `status_code`: a three-digit status as a string, or `''` when there was no response.
 * - `outcome`: `success`, `failure`, `fault`, or the outcome `ERROR_CODES` gives an error code.
 *   Anything else is reported as `failure`.
 * - `route`, `caller`: names from configuration or identity, `unknown` when not known; never a
 *   raw path.
 *
 * Every function here is on the request path: a Set lookup or an array index, no allocation.
 */
import { ERROR_CODES, isTrellisError } from '../core/errors.js';

/** OpenTelemetry's value for a method outside the known set. */
export const OTHER_METHOD = '_OTHER';

/** Label value when a route, caller or service is not known. */
export const UNKNOWN = 'unknown';

const KNOWN_METHODS: ReadonlySet<string> = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']);

/** `GET` stays `GET`; `get`, `PURGE` or a 10 kB string become `_OTHER` (OTel HTTP semconv). */
export function normalizeMethod(method: string): string {
  return KNOWN_METHODS.has(method) ? method : OTHER_METHOD;
}

const STATUS_STRINGS: readonly string[] = Array.from({ length: 600 }, (_, i) => (i >= 100 ? String(i) : ''));
// HTTP status codes (100-599) and gRPC status codes (0-16: gRPC calls put their code in status_code).
const STATUS_SET: ReadonlySet<string> = new Set([...STATUS_STRINGS.filter((s) => s !== ''), ...Array.from({ length: 17 }, (_, i) => String(i))]);

/** A status code (100-599) as its label value; `''` for anything else, or no response. */
export function statusLabel(status: number | undefined): string {
  if (status === undefined || !Number.isInteger(status)) return '';
  return STATUS_STRINGS[status] ?? '';
}

/** Keeps a status label value that is an HTTP status (100-599) or a gRPC code (0-16), else `''`. */
export function normalizeStatus(status: string): string {
  return STATUS_SET.has(status) ? status : '';
}

export const OUTCOME_SUCCESS = 'success';
export const OUTCOME_FAILURE = 'failure';
/** A response the mesh answered on purpose (an injected fault), classified `ignore`. */
export const OUTCOME_FAULT = 'fault';

/** Every outcome a Trellis metric can carry. */
export const OUTCOMES: ReadonlySet<string> = new Set([
  OUTCOME_SUCCESS,
  OUTCOME_FAILURE,
  OUTCOME_FAULT,
  ...Object.values(ERROR_CODES).map((info) => info.outcome),
]);

/** Keeps an outcome from the fixed set; anything else counts as `failure`. */
export function normalizeOutcome(outcome: string): string {
  return OUTCOMES.has(outcome) ? outcome : OUTCOME_FAILURE;
}

/** The outcome of an error: its code's outcome in `ERROR_CODES`, else `failure`. */
export function errorOutcome(err: unknown): string {
  return isTrellisError(err) ? ERROR_CODES[err.code].outcome : OUTCOME_FAILURE;
}
