/**
 * Maps what undici and the socket layer throw to Trellis's typed errors, so the layers above
 * classify on stable codes: connect failures (nothing was sent, always safe to retry), resets
 * (the connection died mid-exchange), timeouts, and everything else as an upstream error.
 * An error that came from our own abort (deadline, per-try timeout, caller) is returned as is.
 */
import { ConnectFailedError, ResetError, TimeoutError, TrellisError, UpstreamError } from '../core/errors.js';
import type { ErrorSubject } from '../core/errors.js';

const CONNECT_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT',
]);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED']);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * Whether `err` came from the transport (undici, the socket, the HTTP parser) rather than from
 * a caller: it carries one of their codes.
 */
export function isTransportError(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  if (typeof code !== 'string') return false;
  return CONNECT_CODES.has(code) || RESET_CODES.has(code) || TIMEOUT_CODES.has(code) || code.startsWith('UND_ERR_') || code.startsWith('HPE_');
}

/**
 * Translates a transport error into a TrellisError naming the subject. `phase` 'mid-body' is a
 * failure after the response headers arrived: the body was cut short.
 */
export function mapTransportError(err: unknown, subject: ErrorSubject, phase: 'request' | 'mid-body' = 'request'): TrellisError {
  if (err instanceof TrellisError) return err;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  const message = err instanceof Error ? err.message : String(err);
  const opts = { ...subject, cause: err };
  if (phase === 'mid-body') {
    if (typeof code === 'string' && code.startsWith('HPE_')) return new UpstreamError(`malformed response body (${code}): ${message}`, opts);
    return new ResetError(`connection failed before the response body completed (${typeof code === 'string' ? code : 'error'}): ${message}`, opts);
  }
  if (typeof code === 'string') {
    if (CONNECT_CODES.has(code)) return new ConnectFailedError(`connect failed (${code}): ${message}`, opts);
    if (RESET_CODES.has(code)) return new ResetError(`connection reset (${code}): ${message}`, opts);
    if (TIMEOUT_CODES.has(code)) return new TimeoutError(`transport timeout (${code}): ${message}`, { ...opts, retryable: true });
  }
  return new UpstreamError(`upstream error${typeof code === 'string' ? ` (${code})` : ''}: ${message}`, opts);
}
