/**
 * Outbound HTTP/2 (`protocol: http2`): how an endpoint's undici Pool is made when the service
 * speaks HTTP/2, kept in this one file so the pool-building code stays protocol-blind.
 *
 * - One connection per endpoint (`connections: 1`) carrying up to `HTTP2_MAX_STREAMS` concurrent
 *   streams (undici's `pipelining` is the stream limit on an h2 connection; its own h2c client
 *   defaults to 100). More requests queue in the pool until a stream ends. Balancers already
 *   count attempts in flight (`LbEndpoint.outstanding`), which over HTTP/2 are streams, so
 *   least-request and peak-EWMA compare endpoints by streams, not by connections.
 * - Over mTLS the connection offers ALPN `h2` (undici's `allowH2`, read by the mTLS connector
 *   from the connect options undici passes it); a server that answers `http/1.1` is spoken to in
 *   HTTP/1.1, as ALPN intends. Over plaintext there is no ALPN: HTTP/2 with prior knowledge
 *   (h2c, undici's `useH2c`), so the upstream must speak h2c (`mesh.serve` with `mtls: off`
 *   does, as does `http2.createServer()`).
 * - undici holds back a request it believes non-idempotent while other streams are open on the
 *   connection (a rule for HTTP/1.1 pipelining, where one failure poisons the requests behind
 *   it). HTTP/2 streams fail independently, and retries are the mesh's decision (it passes
 *   undici no retry handler), so every request is marked idempotent for undici's scheduling
 *   alone: a POST is multiplexed like a GET instead of waiting for the connection to go quiet.
 */
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { Connect } from './mtls-connector.js';

/** Concurrent streams per HTTP/2 connection before requests queue. */
export const HTTP2_MAX_STREAMS = 100;

/** A Pool for one HTTP/2 endpoint, multiplexing every request on its connection. */
export class Http2Pool extends Pool {
  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const blob = needsBlob(opts.method, opts.body);
    if (opts.idempotent !== undefined && !blob) return super.dispatch(opts, handler);
    const body = blob ? (new Blob([opts.body as string | ArrayBuffer | NodeJS.TypedArray | DataView]) as unknown as Dispatcher.DispatchOptions['body']) : opts.body;
    return super.dispatch(http2Copy(opts, body), handler);
  }
}

/**
 * undici 7's HTTP/2 client writes a content-length only for POST, PUT and PATCH, and sends a
 * string or Buffer body only with one (lib/dispatcher/client-h2.js writeH2: "buffer body must
 * have content length" asserts, and the endpoint's client sends nothing more). A Blob goes
 * through its stream path, which needs no length (END_STREAM ends the body), so a DELETE (or
 * any other method's) in-memory body is handed over as a Blob, made per attempt from the bytes
 * the call keeps (retries replay it as before). GET and HEAD cannot carry a body over undici's
 * HTTP/2 (it ends their stream with the headers): request-validation.ts refuses those.
 */
function needsBlob(method: string, body: unknown): boolean {
  if (body === undefined || body === null) return false;
  if (typeof body === 'string') {
    if (body.length === 0) return false;
  } else if (ArrayBuffer.isView(body) || body instanceof ArrayBuffer) {
    if (body.byteLength === 0) return false;
  } else {
    return false;
  }
  const m = method.toUpperCase();
  return m !== 'POST' && m !== 'PUT' && m !== 'PATCH' && m !== 'GET' && m !== 'HEAD';
}

/**
 * `opts` for undici's HTTP/2 client: marked idempotent (unless the caller said), with `body`, as
 * an object literal holding every option undici's Client and Request read (undici 7:
 * `lib/dispatcher/client.js` kDispatch, `lib/core/request.js`), not a spread: undici's Request
 * probes ~16 options a call rarely sets, and on Node 20's V8 each miss on a spread-made object
 * costs ~100 ns against a few on a literal (see dispatch-options.ts). The spread cost ~3 µs a
 * request (bench/path-profile.ts --path h2: `Request` +2.1 µs, the spread itself +0.85).
 */
function http2Copy(o: Dispatcher.DispatchOptions, body: Dispatcher.DispatchOptions['body']): Dispatcher.DispatchOptions {
  const r = o as Dispatcher.DispatchOptions & { blocking?: unknown; servername?: unknown; typeOfService?: unknown; maxRedirections?: unknown };
  return {
    path: r.path,
    method: r.method,
    body,
    headers: r.headers,
    query: r.query,
    idempotent: r.idempotent ?? true,
    blocking: r.blocking,
    upgrade: r.upgrade,
    headersTimeout: r.headersTimeout,
    bodyTimeout: r.bodyTimeout,
    reset: r.reset,
    expectContinue: r.expectContinue,
    servername: r.servername,
    throwOnError: r.throwOnError,
    maxRedirections: r.maxRedirections,
    typeOfService: r.typeOfService,
  } as Dispatcher.DispatchOptions;
}

export interface Http2PoolParams {
  connectTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/** The Pool of an HTTP/2 endpoint at `origin` (`https://` with `connect`, else h2c). */
export function http2Pool(origin: string, connect: Connect | undefined, params: Http2PoolParams): Pool {
  return new Http2Pool(origin, {
    // Plaintext: undici's own connector with prior-knowledge h2c (not in its typings).
    connect: connect ?? ({ useH2c: true } as Record<string, unknown>),
    allowH2: true,
    connections: 1,
    pipelining: HTTP2_MAX_STREAMS,
    connectTimeout: params.connectTimeoutMs,
    keepAliveTimeout: params.keepAliveTimeoutMs,
    // Mesh-level timeouts are ours (millisecond precision); undici's are a backstop.
    headersTimeout: 0,
    bodyTimeout: 0,
  });
}
