/**
 * The HTTP upgrade edge, shared by `mesh.websocket()` (a `ws` WebSocket, websocket.ts) and by
 * upgrades through `mesh.http()` and `mesh.dispatcher` (undici's `upgrade()`, undici's
 * `WebSocket`: dispatch-upgrade.ts). An upgrade is one HTTP/1.1 request whose answer, when it is
 * 101, hands the connection over to another protocol; so its unit of work is an *opening*, and it
 * goes through the destination's connection stack (connection-stack.ts): route selection (the
 * request matched like any, method, path and headers) → timeout → retry → rate limit → breaker →
 * split → balancer → tracing (this file: the upgrade is a CLIENT span and carries the trace
 * context) → endpoint → transport, which opens the connection (plaintext, or mTLS with the
 * server's SPIFFE identity checked: endpoint-dial.ts) and lets the edge's `handshake` perform the
 * upgrade over it.
 *
 * An upgrade answered with a status instead of 101 is a result, classified like an HTTP response
 * (a 5xx counts against the endpoint and the breaker, a 403 does not), and the caller gets a typed
 * error: 403 TRELLIS_FORBIDDEN (the server's authorization refused this caller), anything else
 * TRELLIS_UPSTREAM_ERROR, both with the `statusCode`. Connection metrics count each opening by
 * outcome and, once switched, the connection's life and bytes; an open connection is one
 * outstanding request of its endpoint (least-request, peak-EWMA) until it closes. Once switched
 * the connection is the caller's: the timeout no longer applies and `mesh.close()` leaves it open.
 */
import type { Socket } from 'node:net';
import type { Attributes } from '@opentelemetry/api';
import { CallContext } from '../core/context.js';
import type { CallSignal } from '../core/call-signal.js';
import { applyFilter } from '../core/service.js';
import type { StackModule } from '../core/stack.js';
import { ForbiddenError, InvalidArgumentError, UnknownServiceError, UpstreamError } from '../core/errors.js';
import type { TrellisError } from '../core/errors.js';
import type { ServiceSpec } from '../config/types.js';
import { compileRoutes } from '../traffic/route-table.js';
import type { MeshTracer } from '../observability/tracer.js';
import { tracingAttemptFilter } from '../observability/tracing-filter.js';
import { outcomeOf } from '../observability/connection-metrics.js';
import type { ConnectionProtocol } from '../observability/connection-metrics.js';
import { connectionStack } from './connection-stack.js';
import type { ConnectionStack } from './connection-stack.js';
import { dialEndpoint } from './endpoint-dial.js';
import type { HttpHeaders } from './http-request.js';
import { destinationFor, watchClose } from './tcp-connect.js';
import type { ConnectionEdgeDeps } from './tcp-connect.js';

/** What every upgrade request has: what routing, authorization and tracing read. */
export interface UpgradeRequest {
  readonly method: string;
  readonly path: string;
  /** Lower-cased names; the trace headers are added per attempt. */
  readonly headers: HttpHeaders;
}

/** How one edge performs the upgrade over a connection the mesh opened. */
export interface UpgradeHandshake<Req extends UpgradeRequest, Res> {
  /** For describe() and span attributes: `websocket` (ws) or `upgrade` (undici). */
  readonly kind: string;
  /** `url.scheme` on the span. */
  readonly scheme: (req: Req) => string;
  /** Sends the upgrade over `socket` and settles with the answer; honours `ctx.signal`. */
  handshake(socket: Socket, req: Req, ctx: CallContext, spec: ServiceSpec): Promise<Res>;
  /** 101 for a switched connection, else the status the server answered with. */
  statusOf(res: Res): number;
  /** The connection of a switched result (undefined for a refused one). */
  socketOf(res: Res): Socket | undefined;
  /** Releases a result nobody will read (switched after its timeout, or retried). */
  discard(res: Res): void;
}

/** Per-call wishes of an upgrade. */
export interface UpgradeCall {
  signal?: CallSignal | undefined;
  routeKey?: string | undefined;
}

function tracingModule<Req extends UpgradeRequest, Res>(tracer: MeshTracer, edge: UpgradeHandshake<Req, Res>): StackModule<Req, Res> {
  const filter = tracingAttemptFilter<Req, Res>(tracer, {
    inject: (req, headers) => ({ ...req, headers: { ...req.headers, ...headers } }),
    spanName: (req) => req.method,
    requestAttributes(req, ctx): Attributes {
      const a: Attributes = { 'http.request.method': req.method, 'url.scheme': edge.scheme(req), 'url.path': req.path.split('?')[0] ?? req.path, 'server.address': ctx.service };
      if (ctx.endpoint !== undefined) {
        a['network.peer.address'] = ctx.endpoint.host;
        a['network.peer.port'] = ctx.endpoint.port;
      }
      if (ctx.route !== undefined) a['trellis.route'] = ctx.route;
      return a;
    },
    describeResult(res) {
      const status = edge.statusOf(res);
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

/** The error a caller gets for an upgrade answered `status` instead of 101. */
export function refusedUpgradeError(status: number, path: string, service: string, route: string | undefined): TrellisError {
  const err =
    status === 403
      ? new ForbiddenError(`the upgrade to ${path} was refused with 403: the server's authorization does not allow this caller`, { service, route })
      : new UpstreamError(`the upgrade to ${path} was answered with ${status} instead of 101 Switching Protocols`, { service, route });
  Object.defineProperty(err, 'statusCode', { value: status, enumerable: true });
  return err;
}

/** The connection stacks of one upgrade edge, one per destination and config version. */
export class UpgradeStacks<Req extends UpgradeRequest, Res> {
  readonly #deps: ConnectionEdgeDeps;
  readonly #tracer: MeshTracer;
  readonly #edge: UpgradeHandshake<Req, Res>;
  readonly #stacks = new WeakMap<ServiceSpec, ConnectionStack<Req, Res>>();

  constructor(deps: ConnectionEdgeDeps, tracer: MeshTracer, edge: UpgradeHandshake<Req, Res>) {
    this.#deps = deps;
    this.#tracer = tracer;
    this.#edge = edge;
  }

  #stack(spec: ServiceSpec): ConnectionStack<Req, Res> | undefined {
    let s = this.#stacks.get(spec);
    if (s !== undefined) return s;
    const state = this.#deps.destinations.get(spec.name)?.state;
    if (state === undefined) return undefined;
    const { clock, random, transportFor } = this.#deps;
    const edge = this.#edge;
    const routes = spec.routes.length > 0 ? compileRoutes(spec.routes) : undefined;
    s = connectionStack<Req, Res>(spec, state, { clock, random, ...this.#deps.stack }, {
      kind: edge.kind,
      retries: true,
      route: (req) => (routes === undefined ? 0 : routes.match(req)?.route.index),
      discard: (r) => edge.discard(r),
      attemptModules: [tracingModule(this.#tracer, edge)],
      transport: (req, ctx) => {
        const endpoint = ctx.endpoint;
        if (endpoint === undefined) return Promise.reject(new Error('trellis: no endpoint chosen'));
        return dialEndpoint({ service: spec.name, endpoint, connect: transportFor(spec), connectTimeoutMs: spec.connection.connectTimeoutMs, signal: ctx.signal })
          .then((socket) => edge.handshake(socket, req, ctx, spec))
          .then((res) => {
            // A switched connection is outstanding work on its endpoint until it closes.
            const socket = edge.socketOf(res);
            const load = ctx.load;
            if (socket !== undefined && load !== undefined) {
              load.outstanding++;
              socket.once('close', () => load.outstanding--);
            }
            return res;
          });
      },
    });
    this.#stacks.set(spec, s);
    return s;
  }

  /**
   * Checks the call (the caller's mistakes throw before any layer), opens the upgrade through
   * the stack and records it in the connection metrics. Resolves with the switched result; an
   * answer other than 101 rejects (refusedUpgradeError).
   * @throws synchronously-made TrellisErrors (as rejections) for unknown services, a service that
   * does not speak HTTP/1.1, a route the upgrade cannot take.
   */
  async open(service: string, req: Req, call: UpgradeCall, api: string, protocol: ConnectionProtocol): Promise<Res> {
    const spec = destinationFor(this.#deps, service, api, ['http']);
    checkUpgradeRoute(spec, req);
    const stack = this.#stack(spec);
    if (stack === undefined) throw new UnknownServiceError(`no destination named ${service}`, { service });
    // Opening is idempotent: nothing the caller writes over the connection has been sent yet.
    const ctx = new CallContext(service, true);
    ctx.signal = call.signal;
    ctx.routeKey = call.routeKey;
    const metrics = this.#deps.metrics();
    let result: Res;
    try {
      result = await stack.service(req, ctx);
    } catch (err) {
      metrics.clientConnect(service, protocol, outcomeOf(err));
      throw err;
    }
    const status = this.#edge.statusOf(result);
    const socket = this.#edge.socketOf(result);
    if (socket === undefined) {
      const err = refusedUpgradeError(status, req.path, service, ctx.route);
      metrics.clientConnect(service, protocol, outcomeOf(err));
      throw err;
    }
    metrics.clientConnect(service, protocol, 'success');
    watchClose(socket, metrics, service, protocol, this.#deps.clock);
    return result;
  }
}

/** Refuses a route the upgrade cannot take (it has one request and no response body to rewrite, mirror or fake). */
function checkUpgradeRoute(spec: ServiceSpec, req: UpgradeRequest): void {
  if (spec.routes.length === 0) return;
  const m = compileRoutes(spec.routes).match(req);
  const r = m === undefined ? undefined : spec.routes[m.route.index];
  const unsupported = r === undefined ? [] : [r.rewrite !== undefined ? 'rewrite' : '', r.mirror !== undefined ? 'mirror' : '', r.fault !== undefined ? 'fault' : ''].filter(Boolean);
  if (unsupported.length > 0) throw new InvalidArgumentError(`route ${r?.name ?? '?'} of ${spec.name} uses ${unsupported.join(', ')}, which an upgrade does not take (call that route with mesh.http)`, { service: spec.name });
}

/**
 * The one-time settlement of a handshake racing the call's abort signal, for every handshake
 * (dispatch-upgrade.ts, websocket.ts): the returned `settle()` is true for its first caller only;
 * an abort runs `onAbort(reason)` if nothing settled first. A signal already aborted runs
 * `onAbort` at once and returns undefined: the handshake must not start.
 */
export function settleOnce(signal: CallSignal | undefined, onAbort: (reason: unknown) => void): (() => boolean) | undefined {
  if (signal?.aborted === true) {
    onAbort(signal.reason);
    return undefined;
  }
  let settled = false;
  const settle = (): boolean => {
    if (settled) return false;
    settled = true;
    signal?.removeEventListener('abort', abort);
    return true;
  };
  const abort = (): void => {
    if (settle()) onAbort(signal?.reason);
  };
  signal?.addEventListener('abort', abort);
  return settle;
}
