/**
 * `mesh.websocket(service, path)`: a `ws` WebSocket to one endpoint of an HTTP service, opened
 * through the destination's connection stack (src/client/connection-stack.ts): route selection
 * (the upgrade is a `GET path` matched like any request) → timeout → retry → rate limit →
 * breaker → split → balancer → tracing → endpoint → transport. The transport opens the
 * connection (plaintext, or mTLS with the server's SPIFFE identity checked: endpoint-dial.ts)
 * and hands it to `ws` (its `createConnection` option), which performs the upgrade over it.
 *
 * It resolves once the upgrade completed (`open`). An upgrade the server answers with a status
 * instead of 101 is a result, classified like an HTTP response (a 5xx counts against the
 * endpoint and the breaker, a 403 does not), and rejects: 403 with TRELLIS_FORBIDDEN (the
 * server's authorization refused this caller), anything else with TRELLIS_UPSTREAM_ERROR naming
 * the status (`statusCode` on the error). The upgrade request carries the trace context and is a
 * CLIENT span of its own. Once open, the WebSocket is the caller's: the timeout no longer
 * applies and `mesh.close()` leaves it open.
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import type { Attributes } from '@opentelemetry/api';
import { CallContext } from '../core/context.js';
import { CallSignal } from '../core/call-signal.js';
import { applyFilter } from '../core/service.js';
import type { StackModule } from '../core/stack.js';
import { ForbiddenError, InvalidArgumentError, UpstreamError } from '../core/errors.js';
import type { ServiceSpec } from '../config/types.js';
import { compileRoutes } from '../traffic/route-table.js';
import type { MeshTracer } from '../observability/tracer.js';
import { tracingAttemptFilter } from '../observability/tracing-filter.js';
import { outcomeOf } from '../observability/connection-metrics.js';
import { connectionStack } from './connection-stack.js';
import type { ConnectionStack } from './connection-stack.js';
import { dialEndpoint } from './endpoint-dial.js';
import type { HttpHeaders } from './http-request.js';
import { destinationFor, watchClose } from './tcp-connect.js';
import type { ConnectionEdgeDeps } from './tcp-connect.js';
import { mapTransportError } from './undici-errors.js';

/** The `ws` client options `mesh.websocket()` passes through (the connection itself is the mesh's). */
export type MeshWebSocketClientOptions = Pick<WebSocket.ClientOptions, 'maxPayload' | 'perMessageDeflate' | 'skipUTF8Validation' | 'origin' | 'protocolVersion'>;

/** Per-call options of `mesh.websocket()`. */
export interface WebSocketOptions {
  /** Subprotocols to offer (`Sec-WebSocket-Protocol`). */
  protocols?: string | string[];
  /** Extra headers on the upgrade request (route matching reads them too). */
  headers?: Record<string, string>;
  /** Cancels the opening (not the WebSocket once open). */
  signal?: AbortSignal;
  /** Key for ring-hash balancing. */
  routeKey?: string;
  /** Options for the `ws` client. */
  ws?: MeshWebSocketClientOptions;
}

interface UpgradeRequest {
  readonly method: 'GET';
  readonly path: string;
  readonly headers: HttpHeaders;
  readonly protocols: string | string[] | undefined;
  readonly ws: MeshWebSocketClientOptions | undefined;
}

/** The server answered the upgrade with a status instead of switching protocols. */
interface RefusedUpgrade {
  readonly statusCode: number;
}

type UpgradeResult = WebSocket | RefusedUpgrade;

function isRefused(r: UpgradeResult): r is RefusedUpgrade {
  return !(r instanceof WebSocket);
}

const sockets = new WeakMap<WebSocket, Socket>();

/** A path the upgrade can carry: starts with `/`, no whitespace or control characters. */
function checkPath(path: unknown, service: string): string {
  if (typeof path !== 'string' || !path.startsWith('/') || /[\s\u0000-\u001f\u007f]/.test(path)) {
    throw new InvalidArgumentError(`mesh.websocket() needs a path starting with / and without spaces or control characters, got ${JSON.stringify(path)}`, { service });
  }
  return path;
}

function tracingModule(tracer: MeshTracer): StackModule<UpgradeRequest, UpgradeResult> {
  const filter = tracingAttemptFilter<UpgradeRequest, UpgradeResult>(tracer, {
    inject: (req, headers) => ({ ...req, headers: { ...req.headers, ...headers } }),
    spanName: () => 'GET',
    requestAttributes(req, ctx): Attributes {
      const a: Attributes = { 'http.request.method': 'GET', 'url.scheme': 'ws', 'url.path': req.path.split('?')[0] ?? req.path, 'server.address': ctx.service };
      if (ctx.endpoint !== undefined) {
        a['network.peer.address'] = ctx.endpoint.host;
        a['network.peer.port'] = ctx.endpoint.port;
      }
      if (ctx.route !== undefined) a['trellis.route'] = ctx.route;
      return a;
    },
    describeResult(res) {
      const status = isRefused(res) ? res.statusCode : 101;
      return { attributes: { 'http.response.status_code': status }, errorType: status >= 400 ? String(status) : undefined };
    },
    carrier: (req) => req.headers,
  });
  return {
    role: 'tracing',
    why: 'below the balancer so the upgrade is a span naming its endpoint and sends its own span id; above the endpoint filter',
    params: `inject ${tracer.formats.join('+')}`,
    make: (next) => applyFilter(filter, next),
  };
}

export class WebSocketConnector {
  readonly #deps: ConnectionEdgeDeps;
  readonly #tracer: MeshTracer;
  readonly #stacks = new WeakMap<ServiceSpec, ConnectionStack<UpgradeRequest, UpgradeResult>>();

  constructor(deps: ConnectionEdgeDeps, tracer: MeshTracer) {
    this.#deps = deps;
    this.#tracer = tracer;
  }

  #stack(spec: ServiceSpec): ConnectionStack<UpgradeRequest, UpgradeResult> | undefined {
    let s = this.#stacks.get(spec);
    if (s !== undefined) return s;
    const state = this.#deps.destinations.get(spec.name)?.state;
    if (state === undefined) return undefined;
    const { clock, random, transportFor } = this.#deps;
    const routes = spec.routes.length > 0 ? compileRoutes(spec.routes) : undefined;
    s = connectionStack<UpgradeRequest, UpgradeResult>(spec, state, { clock, random, ...this.#deps.stack }, {
      kind: 'websocket',
      retries: true,
      route: (req) => (routes === undefined ? 0 : routes.match(req)?.route.index),
      discard: (r) => {
        if (!isRefused(r)) r.terminate();
      },
      attemptModules: [tracingModule(this.#tracer)],
      transport: (req, ctx) => {
        const endpoint = ctx.endpoint;
        if (endpoint === undefined) return Promise.reject(new Error('trellis: no endpoint chosen'));
        const subject = { service: spec.name, endpoint: endpoint.id };
        return dialEndpoint({ service: spec.name, endpoint, connect: transportFor(spec), connectTimeoutMs: spec.connection.connectTimeoutMs, signal: ctx.signal }).then(
          (socket) =>
            new Promise<UpgradeResult>((resolve, reject) => {
              const ws = new WebSocket(`ws://${spec.name}${req.path}`, req.protocols, {
                ...req.ws,
                headers: req.headers,
                followRedirects: false,
                createConnection: () => socket,
              });
              let settled = false;
              const settle = (): boolean => {
                if (settled) return false;
                settled = true;
                ctx.signal?.removeEventListener('abort', onAbort);
                return true;
              };
              const onAbort = (): void => {
                if (!settle()) return;
                ws.on('error', () => undefined);
                ws.terminate();
                reject(ctx.signal?.reason);
              };
              ctx.signal?.addEventListener('abort', onAbort);
              ws.once('open', () => {
                if (!settle()) return;
                sockets.set(ws, socket);
                // An open WebSocket is outstanding work on its endpoint until it closes.
                const load = ctx.load;
                if (load !== undefined) {
                  load.outstanding++;
                  socket.once('close', () => load.outstanding--);
                }
                resolve(ws);
              });
              ws.once('unexpected-response', (creq, res) => {
                ws.on('error', () => undefined);
                res.resume();
                creq.destroy();
                socket.destroy();
                if (settle()) resolve({ statusCode: res.statusCode ?? 0 });
              });
              ws.once('error', (err) => {
                socket.destroy();
                if (settle()) reject(mapTransportError(err, subject));
              });
            }),
        );
      },
    });
    this.#stacks.set(spec, s);
    return s;
  }

  /** Opens a WebSocket (see the file comment). */
  async open(service: string, path: string, options: WebSocketOptions = {}): Promise<WebSocket> {
    const spec = destinationFor(this.#deps, service, 'mesh.websocket()', ['http']);
    checkPath(path, service);
    const stack = this.#stack(spec);
    if (stack === undefined) throw new InvalidArgumentError(`no destination named ${service}`, { service });
    const headers: HttpHeaders = { ...options.headers };
    if (spec.routes.length > 0) {
      const m = compileRoutes(spec.routes).match({ method: 'GET', path, headers });
      const r = m === undefined ? undefined : spec.routes[m.route.index];
      const unsupported = r === undefined ? [] : [r.rewrite !== undefined ? 'rewrite' : '', r.mirror !== undefined ? 'mirror' : '', r.fault !== undefined ? 'fault' : ''].filter(Boolean);
      if (unsupported.length > 0) throw new InvalidArgumentError(`route ${r?.name ?? '?'} of ${service} uses ${unsupported.join(', ')}, which a WebSocket upgrade does not take (call that route with mesh.http)`, { service });
    }
    const ctx = new CallContext(service, true);
    if (options.signal !== undefined) ctx.signal = CallSignal.fromAbortSignal(options.signal);
    ctx.routeKey = options.routeKey;
    const metrics = this.#deps.metrics();
    const req: UpgradeRequest = { method: 'GET', path, headers, protocols: options.protocols, ws: options.ws };
    let result: UpgradeResult;
    try {
      result = await stack.service(req, ctx);
    } catch (err) {
      metrics.clientConnect(service, 'websocket', outcomeOf(err));
      throw err;
    }
    if (isRefused(result)) {
      const status = result.statusCode;
      const err =
        status === 403
          ? new ForbiddenError(`the upgrade to ${path} was refused with 403: the server's authorization does not allow this caller`, { service, route: ctx.route })
          : new UpstreamError(`the upgrade to ${path} was answered with ${status} instead of 101 Switching Protocols`, { service, route: ctx.route });
      Object.defineProperty(err, 'statusCode', { value: status, enumerable: true });
      metrics.clientConnect(service, 'websocket', outcomeOf(err));
      throw err;
    }
    metrics.clientConnect(service, 'websocket', 'success');
    const socket = sockets.get(result);
    if (socket !== undefined) watchClose(socket, metrics, service, 'websocket', this.#deps.clock);
    return result;
  }
}
