/**
 * The control plane's request pipeline: one small router in front of every handler, so each
 * rule holds for every route, including the ones registered later (`route()` is how the fleet
 * view and dashboard add theirs). Order, cheapest refusal first:
 *
 *   rate limit (per client: its verified certificate, else its address; before anything is read)
 *   → route match (404 / 405), query names (unknown ones refused)
 *   → caller identity (admin token, instance certificate, nobody) → the route's auth rule
 *   → handler (reads its body through `body()`, size-capped; 413 before reading when the
 *     declared length is over) → JSON answer, metrics.
 *
 * Auth rules: `admin` needs the admin token (401 without or wrong; 403 when the caller is an
 * instance with no admin token: an instance certificate never writes); `instance` needs a
 * verified instance certificate; `none` admits anyone. Nothing but `admin` routes change state.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse, ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Clock } from '../core/clock.js';
import { didYouMean } from '../core/did-you-mean.js';
import { ApiError, errorBody, toApiError } from './api-error.js';
import type { Caller } from './caller.js';
import type { ClientLimiter } from './client-limiter.js';
import type { ControlPlaneMetrics } from './metrics.js';

export type AuthRule = 'admin' | 'none' | 'instance';
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** What a handler sees of a request. */
export interface ApiRequest {
  readonly method: HttpMethod;
  /** The path without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  /** `:name` segments of the route's path, decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly headers: IncomingHttpHeaders;
  readonly caller: Caller;
  /** The body, at most `limit` bytes (default the route's `maxBodyBytes`); 413 beyond. */
  body(limit?: number): Promise<Buffer>;
  /** The HTTP/2 stream, for streaming routes (undefined over HTTP/1.1). */
  readonly stream: ServerHttp2Stream | undefined;
}

/** A handler's answer: JSON (`body`) or text (`text` with its content type); or `'handled'` when it answered on the stream itself. */
export type ApiResponse =
  | { readonly status?: number; readonly body: unknown; readonly headers?: Readonly<Record<string, string>> }
  | { readonly status?: number; readonly text: string; readonly contentType: string; readonly headers?: Readonly<Record<string, string>> }
  | 'handled';

export type ApiHandler = (req: ApiRequest) => Promise<ApiResponse>;

export interface RouteOptions {
  readonly auth: AuthRule;
  /** Query parameters the route reads; when given, any other is refused (400). Every built-in route gives its list (an empty one when it reads none). */
  readonly query?: readonly string[];
  /** Largest body read (default 64 KiB). */
  readonly maxBodyBytes?: number;
}

interface Route {
  readonly method: HttpMethod;
  readonly template: string;
  readonly segments: readonly string[];
  readonly handler: ApiHandler;
  readonly options: RouteOptions;
}

export interface RouterDeps {
  readonly identify: (req: IncomingMessage | Http2ServerRequest, socket: TLSSocket | undefined) => Caller;
  readonly limiter: ClientLimiter;
  readonly metrics: ControlPlaneMetrics;
  readonly clock: Clock;
  readonly onWarn: (message: string) => void;
}

const DEFAULT_MAX_BODY = 64 * 1024;
const MAX_PATH = 2048;
const MAX_HEADER_BYTES = 16 * 1024;
const METHODS: readonly string[] = ['GET', 'POST', 'PUT', 'DELETE'];

function socketOf(req: IncomingMessage | Http2ServerRequest): TLSSocket | undefined {
  if ('stream' in req && req.stream !== undefined) return req.stream.session?.socket as TLSSocket | undefined;
  return req.socket as TLSSocket;
}

/** Reads at most `limit` bytes of a request body; refuses a declared or actual length over it. */
function readBody(req: IncomingMessage | Http2ServerRequest, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(new ApiError(413, 'TRELLIS_INVALID_ARGUMENT', `request body of ${declared} bytes is over this endpoint's ${limit}-byte limit`));
  }
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let done = false;
    const fail = (e: Error): void => {
      if (done) return;
      done = true;
      reject(e);
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        fail(new ApiError(413, 'TRELLIS_INVALID_ARGUMENT', `request body is over this endpoint's ${limit}-byte limit`));
        req.pause();
        return;
      }
      parts.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(parts));
    });
    req.on('error', fail);
    req.on('aborted', () => fail(new ApiError(400, 'TRELLIS_INVALID_ARGUMENT', 'the request was aborted')));
  });
}

export class Router {
  readonly #routes: Route[] = [];
  readonly #deps: RouterDeps;

  constructor(deps: RouterDeps) {
    this.#deps = deps;
  }

  /**
   * Registers a handler for `method` and `path` (segments starting with `:` are parameters).
   *
   * @example router.route('GET', '/v1/stat', statHandler, { auth: 'admin', query: ['window', 'service'] });
   */
  route(method: HttpMethod, path: string, handler: ApiHandler, options: RouteOptions): void {
    if (!path.startsWith('/')) throw new TypeError(`route path must start with "/": ${path}`);
    const segments = path.split('/').slice(1);
    if (this.#routes.some((r) => r.method === method && r.template === path)) throw new TypeError(`route ${method} ${path} is already registered`);
    this.#routes.push({ method, template: path, segments, handler, options });
  }

  #match(path: string): { route: Route; params: Record<string, string> }[] {
    const parts = path.split('/').slice(1);
    const out: { route: Route; params: Record<string, string> }[] = [];
    for (const route of this.#routes) {
      if (route.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const want = route.segments[i] as string;
        const got = parts[i] as string;
        if (want.startsWith(':')) {
          if (got === '') ok = false;
          else params[want.slice(1)] = got;
        } else if (want !== got) ok = false;
      }
      if (ok) out.push({ route, params });
    }
    return out;
  }

  /** The node:http / http2 compat `request` listener. */
  handle(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
    const started = this.#deps.clock.now();
    let label = 'unmatched';
    const method = req.method ?? 'GET';
    const finish = (status: number): void => {
      this.#deps.metrics.requests.inc({ route: label, method: METHODS.includes(method) ? method : 'other', code: String(status) });
      this.#deps.metrics.requestDuration.observe({ route: label }, (this.#deps.clock.now() - started) / 1000);
    };
    const answer = (status: number, body: string, contentType: string, headers: Readonly<Record<string, string>> = {}): void => {
      finish(status);
      if (res.headersSent || res.writableEnded) return;
      res.writeHead(status, { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store', ...headers });
      res.end(body);
    };
    const refuse = (e: ApiError): void => answer(e.status, `${JSON.stringify(errorBody(e))}\n`, 'application/json', e.headers);

    const socket = socketOf(req);
    const limited = this.#deps.limiter.take(clientKey(socket));
    if (limited !== undefined) {
      const seconds = Math.max(1, Math.ceil(limited / 1000));
      refuse(new ApiError(429, 'TRELLIS_RATE_LIMITED', `too many requests from this client; retry after ${seconds} s`, { headers: { 'retry-after': String(seconds) } }));
      return;
    }
    let headerBytes = 0;
    for (const h of req.rawHeaders) headerBytes += h.length + 2;
    if (headerBytes > MAX_HEADER_BYTES) {
      // HTTP/1.1 stops at Node's 16 KiB before we get here; HTTP/2 peers may ignore the advertised maxHeaderListSize.
      refuse(new ApiError(431, 'TRELLIS_INVALID_ARGUMENT', `request headers are over ${MAX_HEADER_BYTES} bytes`));
      return;
    }
    const rawUrl = req.url ?? '/';
    if (rawUrl.length > MAX_PATH) {
      refuse(new ApiError(414, 'TRELLIS_INVALID_ARGUMENT', `request target longer than ${MAX_PATH} characters`));
      return;
    }
    const url = new URL(rawUrl, 'https://control-plane');
    const matches = this.#match(url.pathname);
    if (matches.length === 0) {
      const known = [...new Set(this.#routes.map((r) => r.template))];
      refuse(new ApiError(404, 'TRELLIS_NOT_FOUND', `no API path ${url.pathname.slice(0, 200)}${didYouMean(url.pathname, known)}`));
      return;
    }
    const found = matches.find((m) => m.route.method === method || (method === 'HEAD' && m.route.method === 'GET'));
    if (found === undefined) {
      const allow = matches.map((m) => m.route.method).join(', ');
      refuse(new ApiError(405, 'TRELLIS_INVALID_ARGUMENT', `${method} is not allowed on ${matches[0]?.route.template}; allowed: ${allow}`, { headers: { allow } }));
      return;
    }
    const { route, params } = found;
    label = route.template;
    for (const name of route.options.query === undefined ? [] : url.searchParams.keys()) {
      if (!(route.options.query ?? []).includes(name)) {
        refuse(new ApiError(400, 'TRELLIS_INVALID_ARGUMENT', `unknown query parameter "${name.slice(0, 64)}" for ${route.template}${didYouMean(name, route.options.query ?? [])}`));
        return;
      }
    }
    const decoded: Record<string, string> = {};
    try {
      for (const [k, v] of Object.entries(params)) decoded[k] = decodeURIComponent(v);
    } catch {
      refuse(new ApiError(400, 'TRELLIS_INVALID_ARGUMENT', 'malformed percent-encoding in the path'));
      return;
    }
    const caller = this.#deps.identify(req, socket);
    const denied = authProblem(route.options.auth, caller);
    if (denied !== undefined) {
      refuse(denied);
      return;
    }
    const stream = 'stream' in req ? req.stream : undefined;
    const apiReq: ApiRequest = {
      method: route.method,
      path: url.pathname,
      query: url.searchParams,
      params: decoded,
      headers: req.headers,
      caller,
      stream,
      body: (limit) => readBody(req, limit ?? route.options.maxBodyBytes ?? DEFAULT_MAX_BODY),
    };
    route.handler(apiReq).then(
      (r) => {
        if (r === 'handled') {
          finish(200);
          return;
        }
        if ('text' in r) answer(r.status ?? 200, method === 'HEAD' ? '' : r.text, r.contentType, r.headers);
        else answer(r.status ?? 200, method === 'HEAD' ? '' : `${JSON.stringify(r.body)}\n`, 'application/json', r.headers);
      },
      (err: unknown) => {
        const e = toApiError(err);
        if (e.status >= 500) this.#deps.onWarn(`${method} ${route.template}: ${e.message}`);
        refuse(e);
      },
    );
  }
}

/**
 * Whose bucket a request draws from: an instance with a verified certificate has its own (many
 * instances may share an address: a host, a NAT, a benchmark), anyone else its address's.
 */
function clientKey(socket: TLSSocket | undefined): string {
  if (socket === undefined) return 'unknown';
  if (socket.authorized === true) {
    const fp = socket.getPeerX509Certificate()?.fingerprint256;
    if (fp !== undefined) return `cert:${fp}`;
  }
  return `addr:${socket.remoteAddress ?? 'unknown'}`;
}

function authProblem(rule: AuthRule, caller: Caller): ApiError | undefined {
  if (rule === 'none') return undefined;
  if (rule === 'admin') {
    if (caller.kind === 'admin') return undefined;
    if (caller.kind === 'bad-admin-token') return new ApiError(401, 'TRELLIS_TOKEN_INVALID', `admin token refused: ${caller.reason}`);
    if (caller.kind === 'instance') return new ApiError(403, 'TRELLIS_FORBIDDEN', `${caller.spiffeId} is an instance; this needs the admin token (instances never change state)`);
    return new ApiError(401, 'TRELLIS_TOKEN_INVALID', 'this needs the admin token (Authorization: Bearer <admin token>)', { headers: { 'www-authenticate': 'Bearer' } });
  }
  if (caller.kind === 'instance') return undefined;
  return new ApiError(401, 'TRELLIS_PEER_IDENTITY', 'this needs an instance certificate from this control plane (mutual TLS)');
}
