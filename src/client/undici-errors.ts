/**
 * Maps what undici and the socket layer throw to Trellis's typed errors, so the layers above
 * classify on stable codes: connect failures (nothing was sent, always safe to retry), resets
 * (the connection died mid-exchange), timeouts, a request body that disagreed with its
 * content-length header as the caller's mistake, and everything else as an upstream error.
 * An error that came from our own abort (deadline, per-try timeout, caller) is returned as is.
 */
import { ConnectFailedError, InvalidArgumentError, ResetError, TimeoutError, TrellisError, UpstreamError } from '../core/errors.js';
import type { ErrorSubject } from '../core/errors.js';
import { bodyLengthMismatchError, isBodyLengthMismatch } from './request-body.js';

const CONNECT_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT',
]);
/**
 * HTTP/2 (`protocol: http2`): a stream reset by the peer (RST_STREAM, `ERR_HTTP2_STREAM_ERROR`;
 * REFUSED_STREAM before the response is a connect failure instead: nothing was processed),
 * a session that failed or went away (a GOAWAY is UND_ERR_SOCKET), and undici's informational
 * errors for a stream that closed or broke before its response completed are resets too.
 */
const HTTP2_RESET_CODES = ['ERR_HTTP2_STREAM_ERROR', 'ERR_HTTP2_STREAM_CANCEL', 'ERR_HTTP2_SESSION_ERROR', 'ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_INVALID_SESSION', 'ERR_HTTP2_ERROR'];
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED', ...HTTP2_RESET_CODES]);

/** undici's InformationalError about an HTTP/2 stream ("HTTP/2: stream closed before ..."). */
function isHttp2StreamInfo(code: string, message: string): boolean {
  return code === 'UND_ERR_INFO' && message.startsWith('HTTP/2');
}
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Errors that can end a response body from the transport's side (undici, socket, parser). */
const MALFORMED_BODY_CODES = new Set(['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_EXCEEDED_MAX_SIZE']);
const BODY_RESET_CODES = new Set([...RESET_CODES, 'ETIMEDOUT', 'UND_ERR_DESTROYED', 'UND_ERR_BODY_TIMEOUT']);

/**
 * undici 7's HTTP/1.1 client fails a 204 or 304 response that carries a content-length
 * (lib/dispatcher/client-h1.js compares the body bytes read with the header at the message's
 * end), though neither status has a body: a 304's content-length is the size the full response
 * would have (RFC 9110 8.6), and llhttp reads no body for either. Such a response is complete,
 * not a failure of its endpoint. (undici has already closed the connection.)
 */
export function isBodylessLengthMismatch(status: number, err: Error): boolean {
  return (status === 304 || status === 204) && (err as { code?: unknown }).code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH';
}

/** A node:http2 server's bound on a request's header fields, pseudo-headers included (its maxHeaderListPairs default). */
export const HTTP2_SERVER_MAX_FIELDS = 128;
/** :method, :scheme, :authority (the host), :path. */
const PSEUDO_HEADERS = 4;

/**
 * HTTP/2's ENHANCE_YOUR_CALM on the request's stream before any response, for a request of more
 * header fields than a node:http2 server takes (`fields`: the header fields the attempt sent
 * besides the pseudo-headers): the server will not take this request as it is, and sent again, to any
 * endpoint, it meets the same answer — the caller's mistake, never retried, charged to no one.
 * Undefined otherwise: a node:http2 server resets a new stream the same way when its session is
 * over its maxSessionMemory (data queued to a slow reader on another stream) or its streams: the
 * server's state, not the request (the same request is taken once the session drained), so that
 * stays a reset. (A session-wide one is a GOAWAY: UND_ERR_SOCKET, a reset.)
 */
export function headerFieldsRefused(err: Error, fields: number, subject: ErrorSubject): TrellisError | undefined {
  const code = (err as { code?: unknown }).code;
  if (code !== 'ERR_HTTP2_STREAM_ERROR' || !err.message.endsWith('NGHTTP2_ENHANCE_YOUR_CALM')) return undefined;
  if (fields + PSEUDO_HEADERS <= HTTP2_SERVER_MAX_FIELDS) return undefined;
  return new InvalidArgumentError(`the server reset the request's stream with ENHANCE_YOUR_CALM before answering a request of ${fields} header fields: it refuses the request as it is, for more header fields than it accepts (a node:http2 server takes ${HTTP2_SERVER_MAX_FIELDS - PSEUDO_HEADERS} besides the pseudo-headers): ${err.message}`, { ...subject, cause: err });
}

/**
 * Whether `err`, ending a response body, came from the transport (the connection or the HTTP
 * parser) rather than from the caller: undici's aborts (`UND_ERR_ABORT`, `UND_ERR_ABORTED`) and
 * anything uncoded are the caller's.
 */
export function isTransportError(err: unknown): boolean {
  if (isMalformedBody(err)) return true;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && (BODY_RESET_CODES.has(code) || isHttp2StreamInfo(code, err instanceof Error ? err.message : ''));
}

/** A response the HTTP parser refused (undici 7 leaves HTTPParserError's `code` unset for some errors, so its name counts too). */
function isMalformedBody(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, name } = err as { code?: unknown; name?: unknown };
  if (name === 'HTTPParserError') return true;
  return typeof code === 'string' && (code.startsWith('HPE_') || MALFORMED_BODY_CODES.has(code));
}

/**
 * Translates a transport error into a TrellisError naming the subject. `phase` 'mid-body' is a
 * failure after the response headers arrived: the body was cut short.
 */
export function mapTransportError(err: unknown, subject: ErrorSubject, phase: 'request' | 'mid-body' = 'request'): TrellisError {
  if (err instanceof TrellisError) return err;
  // The caller's body disagreed with its content-length header: the caller's mistake, not the endpoint's.
  if (isBodyLengthMismatch(err)) return bodyLengthMismatchError(err as Error, subject);
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  const message = err instanceof Error ? err.message : String(err);
  const opts = { ...subject, cause: err };
  if (phase === 'mid-body') {
    if (isMalformedBody(err)) return new UpstreamError(`malformed response body (${typeof code === 'string' ? code : 'HTTPParserError'}): ${message}`, opts);
    // undici's bodyTimeout (the caller's option) expired: the body stalled, the connection did not fail.
    if (typeof code === 'string' && TIMEOUT_CODES.has(code)) return new TimeoutError(`the response body stalled (${code}): ${message}`, { ...opts, retryable: true });
    return new ResetError(`connection failed before the response body completed (${typeof code === 'string' ? code : 'error'}): ${message}`, opts);
  }
  if (typeof code === 'string') {
    if (CONNECT_CODES.has(code)) return new ConnectFailedError(`connect failed (${code}): ${message}`, opts);
    // HTTP/2's REFUSED_STREAM before any response: the server did not process the request
    // (RFC 9113 §8.7), so, like a refused connection, it is safe to send again whatever the method.
    if (code === 'ERR_HTTP2_STREAM_ERROR' && message.endsWith('NGHTTP2_REFUSED_STREAM')) return new ConnectFailedError(`the server refused the stream before processing it (RST_STREAM REFUSED_STREAM): ${message}`, opts);
    if (RESET_CODES.has(code) || isHttp2StreamInfo(code, message)) return new ResetError(`connection reset (${code}): ${message}`, opts);
    if (TIMEOUT_CODES.has(code)) return new TimeoutError(`transport timeout (${code}): ${message}`, { ...opts, retryable: true });
  }
  return new UpstreamError(`upstream error${typeof code === 'string' ? ` (${code})` : ''}: ${message}`, opts);
}
