/**
 * The HTTP request as it travels through the outbound stack: undici's request() options,
 * normalized once at the edge (method upper-cased, headers a lower-cased plain object) plus
 * whether the body can be sent again. Layers (routing, retries, mirroring) read and rewrite
 * this shape; only the transport hands it back to undici.
 */
import type { Dispatcher } from 'undici';
import type { HttpResponseClassifier } from './http-classify.js';

export type HttpHeaders = Record<string, string | string[]>;

/** Options of `mesh.http(service).request()`: undici's request() options, plus mesh wishes. */
export interface MeshRequestOptions extends Omit<Dispatcher.RequestOptions, 'origin' | 'method' | 'path'> {
  path: string;
  method?: Dispatcher.HttpMethod | string;
  /** Allow retries of a method that is not idempotent (POST, PATCH). */
  idempotent?: boolean;
  /** Key for ring-hash balancing: the same key reaches the same endpoint while it is up. */
  routeKey?: string;
}

export interface HttpRequest {
  method: string;
  path: string;
  headers: HttpHeaders;
  body: Dispatcher.DispatchOptions['body'];
  /** True when the body is absent or held in memory within the replay cap. */
  replayable: boolean;
  /** The caller's response classifier (`mesh.http(service, { classify })`), if any. */
  classify: HttpResponseClassifier | undefined;
  /** The remaining undici options (query, opaque, highWaterMark, ...), passed through. */
  rest: Omit<Dispatcher.RequestOptions, 'origin' | 'method' | 'path' | 'headers' | 'body' | 'signal'>;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** RFC 9110 §9.2.2: methods whose repetition has the same effect as one request. */
export function isIdempotentMethod(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/** Headers of any shape undici accepts, as a lower-cased plain object. */
export function normalizeHeaders(input: unknown): HttpHeaders {
  const out: HttpHeaders = {};
  if (input === undefined || input === null) return out;
  const add = (k: string, v: unknown): void => {
    if (v === undefined) return;
    const key = k.toLowerCase();
    const value = Array.isArray(v) ? v.map(String) : String(v);
    const prev = out[key];
    if (prev === undefined) out[key] = value;
    else out[key] = ([] as string[]).concat(prev, value);
  };
  if (Array.isArray(input)) {
    if (input.length > 0 && Array.isArray(input[0])) {
      for (const pair of input as unknown[][]) add(String(pair[0]), pair[1]);
    } else {
      for (let i = 0; i + 1 < input.length; i += 2) add(String(input[i]), input[i + 1]);
    }
    return out;
  }
  if (typeof input === 'object' && Symbol.iterator in (input as object) && typeof (input as { entries?: unknown }).entries === 'function') {
    for (const [k, v] of input as Iterable<[string, unknown]>) add(k, v);
    return out;
  }
  for (const [k, v] of Object.entries(input as Record<string, unknown>)) add(k, v);
  return out;
}

function bodyReplayable(body: unknown, maxReplayBytes: number): boolean {
  if (body === undefined || body === null) return true;
  if (typeof body === 'string') return Buffer.byteLength(body) <= maxReplayBytes;
  if (body instanceof Uint8Array) return body.byteLength <= maxReplayBytes;
  return false;
}

/** Builds the stack's request from request() options. */
export function toHttpRequest(opts: MeshRequestOptions, maxReplayBytes: number, classify?: HttpResponseClassifier): HttpRequest {
  const { method, path, headers, body, signal: _signal, idempotent: _i, routeKey: _r, ...rest } = opts;
  return {
    method: (method ?? 'GET').toUpperCase(),
    path,
    headers: normalizeHeaders(headers),
    body,
    replayable: bodyReplayable(body, maxReplayBytes),
    classify,
    rest,
  };
}
