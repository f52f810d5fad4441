/**
 * gRPC status codes at the Trellis edge: the kebab-case names config writes (`retries.on`,
 * `fault.abort.grpcStatus`) and the numeric codes grpc-js speaks; the mapping of a Trellis
 * error to the status a caller sees (through `ERROR_CODES`, the one table the HTTP edge uses
 * too); and the metadata keys the mesh uses between its own layers.
 *
 * Invariant: every status the mesh makes itself carries `x-trellis-error: <code>` in its
 * trailers, so a caller (and a test) can tell a mesh refusal from an upstream answer.
 */
import { Metadata, status as Status } from '@grpc/grpc-js';
import type { StatusObject } from '@grpc/grpc-js';
import { ERROR_CODES, isTrellisError } from '../core/errors.js';

/** Trailer naming the Trellis error code of a status the mesh produced. */
export const ERROR_KEY = 'x-trellis-error';
/** Trailer set on a status the fault filter injected. */
export const FAULT_KEY = 'x-trellis-fault';
/**
 * gRPC's deadline header (PROTOCOL-HTTP2): for a unary call, written by the Trellis picker from
 * the attempt's PickTicket (pick-ticket.ts) or, on a channel without it, by the call itself.
 */
export const GRPC_TIMEOUT_KEY = 'grpc-timeout';

const TIMEOUT_UNITS: readonly (readonly [string, number])[] = [['m', 1], ['S', 1000], ['M', 60_000], ['H', 3_600_000]];

/**
 * `grpc-timeout` for `timeoutMs` left (gRPC's PROTOCOL-HTTP2: at most 8 digits and a unit;
 * grpc-js's own `getDeadlineTimeoutString` rounds up the same way).
 */
export function grpcTimeout(timeoutMs: number): string {
  const ms = Math.max(timeoutMs, 0);
  for (const [unit, factor] of TIMEOUT_UNITS) {
    const amount = ms / factor;
    if (amount < 1e8) return String(Math.ceil(amount)) + unit;
  }
  return '99999999H';
}

/**
 * Request metadata carrying a ring-hash key (`routeKey` of HTTP calls). Read by the interceptor
 * (and by the picker for calls made without it) and stripped before sending.
 */
export const ROUTE_KEY = 'x-trellis-route-key';

/** `unavailable` → 14, as grpc-js's `status` enum numbers them. */
const BY_NAME = new Map<string, number>();
/** 14 → `unavailable`. */
const NAMES: string[] = [];
for (const [name, code] of Object.entries(Status)) {
  if (typeof code !== 'number') continue;
  const kebab = name.toLowerCase().replace(/_/g, '-');
  BY_NAME.set(kebab, code);
  BY_NAME.set(name, code);
  NAMES[code] = kebab;
}

/** The numeric code of a kebab-case (`resource-exhausted`) or enum (`RESOURCE_EXHAUSTED`) name. */
export function grpcCodeOf(name: string): number | undefined {
  return BY_NAME.get(name);
}

/** The kebab-case name of a code (`14` → `unavailable`), as `retries.on` writes it. */
export function grpcCodeName(code: number): string {
  return NAMES[code] ?? 'unknown';
}

const CODE_STRINGS: readonly string[] = Array.from({ length: 17 }, (_, i) => String(i));

/** A status code as a label value (`'14'`). */
export function grpcCodeLabel(code: number): string {
  return CODE_STRINGS[code] ?? '2';
}

/**
 * Codes that mean the upstream (or the path to it) failed: they count against the breaker and
 * outlier detection and may be retried. Other non-OK codes are the application's answer (like
 * an HTTP 4xx) unless `retries.on` names them.
 */
export const FAILURE_CODES: ReadonlySet<number> = new Set([
  Status.UNAVAILABLE,
  Status.DEADLINE_EXCEEDED,
  Status.INTERNAL,
  Status.UNKNOWN,
  Status.RESOURCE_EXHAUSTED,
]);

/**
 * Server-side failures, as the OpenTelemetry RPC conventions count them on server spans and as
 * `trellis_server_requests_total{outcome="failure"}` does: the others are the caller's doing.
 */
export const SERVER_FAILURE_CODES: ReadonlySet<number> = new Set([
  Status.UNKNOWN,
  Status.DEADLINE_EXCEEDED,
  Status.UNIMPLEMENTED,
  Status.INTERNAL,
  Status.UNAVAILABLE,
  Status.DATA_LOSS,
]);

/**
 * An HTTP status as the gRPC code a client reports for it (gRPC's
 * doc/http-grpc-status-mapping.md), for a fault abort written with `status` only.
 */
export function grpcCodeForHttpStatus(http: number): number {
  switch (http) {
    case 400:
      return Status.INTERNAL;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.UNAVAILABLE;
    default:
      return Status.UNKNOWN;
  }
}

/** A status the mesh itself produced, with its error code in the trailers. */
export function meshStatus(code: number, details: string, errorCode: string): StatusObject {
  const metadata = new Metadata();
  metadata.set(ERROR_KEY, errorCode);
  return { code, details, metadata };
}

/** The code a caller sees for an error a layer threw (see `statusForError`). */
export function codeForError(err: unknown): number {
  if (!isTrellisError(err)) return Status.INTERNAL;
  return grpcCodeOf(ERROR_CODES[err.code].grpcCode) ?? Status.UNKNOWN;
}

/**
 * The status a caller sees for an error a layer threw: a TrellisError through `ERROR_CODES`
 * (TRELLIS_CIRCUIT_OPEN → UNAVAILABLE, TRELLIS_TIMEOUT → DEADLINE_EXCEEDED, ...), anything
 * else INTERNAL.
 */
export function statusForError(err: unknown): StatusObject {
  if (isTrellisError(err)) return meshStatus(codeForError(err), err.message, err.code);
  const message = err instanceof Error ? err.message : String(err);
  return meshStatus(Status.INTERNAL, `trellis: ${message}`, 'TRELLIS_UPSTREAM_ERROR');
}

export { Status };
