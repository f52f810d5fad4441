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

/** Translates a transport error into a TrellisError naming the subject. */
export function mapTransportError(err: unknown, subject: ErrorSubject): TrellisError {
  if (err instanceof TrellisError) return err;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  const message = err instanceof Error ? err.message : String(err);
  const opts = { ...subject, cause: err };
  if (typeof code === 'string') {
    if (CONNECT_CODES.has(code)) return new ConnectFailedError(`connect failed (${code}): ${message}`, opts);
    if (RESET_CODES.has(code)) return new ResetError(`connection reset (${code}): ${message}`, opts);
    if (TIMEOUT_CODES.has(code)) return new TimeoutError(`transport timeout (${code}): ${message}`, { ...opts, retryable: true });
  }
  return new UpstreamError(`upstream error${typeof code === 'string' ? ` (${code})` : ''}: ${message}`, opts);
}
