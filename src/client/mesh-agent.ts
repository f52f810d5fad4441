/**
 * `mesh.agent` / `mesh.httpsAgent`: `http.Agent`s for clients that do not use undici (axios,
 * got, node-fetch, the AWS SDK, plain node:http). A request to `http://<service>/...` goes
 * through the destination's connection stack (src/client/connection-stack.ts): route selection →
 * timeout → rate limit → breaker → split → balancer → endpoint → this Agent's transport, so it is
 * balanced per request, bounded by the route's timeout (response body included), counted by the
 * breaker and outlier detection and the request metrics, and sent over mTLS when the mode says so.
 * Other hosts follow `mesh.dispatcher`'s rules (dispatch-origin.ts): `https://<service>` and
 * `http://<service>:<port>` are refused, an unknown single-label host is refused unless
 * `dispatcher.unknownHosts` is `'pass'`, anything else is an ordinary request.
 *
 * What an Agent sees, and so what it can do: node:http hands the Agent a request it has already
 * built (method, path, headers) whose body the caller writes later, straight to the socket the
 * Agent gives it. So the Agent
 * - can choose the endpoint per request, and retry a *connect* that failed on another endpoint
 *   (before the request has a socket, nothing of it was sent: the connection is opened first,
 *   through the retry layer, and handed to node:http only once open);
 * - cannot re-send a request once it has a socket: a reset, a timeout or a 5xx reaches the caller
 *   as it is (no `reset`/`gateway-error`/`5xx` retries, whatever `retries.on` says), and it
 *   cannot rewrite the path, mirror or inject faults — a request matching a route with
 *   `rewrite`, `mirror` or `fault` is refused with TRELLIS_INVALID_ARGUMENT rather than sent
 *   without them (use `mesh.http()` or `fetch()` with `mesh.dispatcher` for those).
 * Keep-alive sockets are pooled per service and endpoint, never shared with other origins.
 */
import http from 'node:http';
import https from 'node:https';
import type { ClientRequest, IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CallContext } from '../core/context.js';
import type { Clock } from '../core/clock.js';
import { InvalidArgumentError, UnknownServiceError } from '../core/errors.js';
import type { Endpoint } from '../discovery/endpoint.js';
import type { ServiceSpec } from '../config/types.js';
import { compileRoutes } from '../traffic/route-table.js';
import type { RouteTable } from '../traffic/route-table.js';
import type { MeshMetrics } from '../observability/metrics.js';
import { statusLabel } from '../observability/metrics-labels.js';
import { outcomeOf } from '../observability/connection-metrics.js';
import type { MeshTracer } from '../observability/tracer.js';
import { connectionClassifier, connectionStack } from './connection-stack.js';
import type { Classification } from '../core/classify.js';
import type { ConnectionStack } from './connection-stack.js';
import { decideOrigin, originShape } from './dispatch-origin.js';
import type { UnknownHostPolicy } from './dispatch-origin.js';
import { dialEndpoint } from './endpoint-dial.js';
import type { HttpHeaders } from './http-request.js';
import type { ConnectionEdgeDeps } from './tcp-connect.js';
import { mapTransportError } from './undici-errors.js';

export interface MeshAgentDeps {
  edge: ConnectionEdgeDeps;
  metrics: MeshMetrics;
  tracer: MeshTracer;
  unknownHosts: UnknownHostPolicy;
}

/** One request on its way through the stack. */
interface AgentCall {
  readonly req: ClientRequest;
  readonly options: http.RequestOptions;
  readonly method: string;
  readonly path: string;
  readonly headers: HttpHeaders;
  /** Hands the request to http.Agent's own addRequest with these options. */
  readonly pass: (options: http.RequestOptions) => void;
  /** Set once http.Agent has the request. */
  handed: boolean;
}

/** Where createConnection finds a mesh request's endpoint (and a connection opened for it). */
interface MeshTarget {
  readonly service: string;
  readonly endpoint: Endpoint;
  readonly spec: ServiceSpec;
  preDialed: Socket | undefined;
}

const kTarget = Symbol('trellis.agentTarget');
const kSent = Symbol('trellis.agentSent');
const classify = connectionClassifier<IncomingMessage>();
const NOT_RETRYABLE: Classification = Object.freeze({ kind: 'failure', conditions: Object.freeze([]) });

/** Marks an error that ended a request node:http already had: it must not be sent again. */
function markSent<E extends Error>(err: E): E {
  if (!isSent(err)) Object.defineProperty(err, kSent, { value: true });
  return err;
}

function isSent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[kSent] === true;
}
type TargetOptions = http.RequestOptions & { [kTarget]?: MeshTarget };

/** The route spec fields the Agent cannot apply to a request already built by node:http. */
function unsupportedRoute(spec: ServiceSpec, index: number): string | undefined {
  const r = spec.routes[index];
  if (r === undefined) return undefined;
  const fields = [r.rewrite !== undefined ? 'rewrite' : '', r.mirror !== undefined ? 'mirror' : '', r.fault !== undefined ? 'fault' : ''].filter(Boolean);
  return fields.length === 0 ? undefined : `route ${r.name} of ${spec.name} uses ${fields.join(', ')}, which an http.Agent cannot apply to a request node:http already built; call it with mesh.http() or fetch() with mesh.dispatcher`;
}

/**
 * Fails a request http.Agent never had: `destroy()` alone emits nothing until a socket is
 * assigned, so the request is also given "no socket, this error", as http.Agent does when it
 * cannot create one; node:http then emits 'error' and 'close'.
 */
function refuse(req: ClientRequest, err: Error): void {
  req.destroy(err);
  (req as unknown as { onSocket(socket: Socket | null, err: Error): void }).onSocket(null, err);
}

function headersOf(req: ClientRequest): HttpHeaders {
  const out: HttpHeaders = {};
  const h = req.getHeaders();
  for (const k in h) {
    const v = h[k];
    if (v !== undefined) out[k] = typeof v === 'number' ? String(v) : v;
  }
  return out;
}

/** Shared by `MeshAgent` and `MeshHttpsAgent`: the mesh side of an Agent. */
class AgentCore {
  readonly #deps: MeshAgentDeps;
  readonly #stacks = new WeakMap<ServiceSpec, ConnectionStack<AgentCall, IncomingMessage>>();
  readonly #routes = new WeakMap<ServiceSpec, RouteTable>();
  readonly #agent: http.Agent;
  readonly #scheme: 'http:' | 'https:';

  constructor(agent: http.Agent, scheme: 'http:' | 'https:', deps: MeshAgentDeps) {
    this.#agent = agent;
    this.#scheme = scheme;
    this.#deps = deps;
  }

  get clock(): Clock {
    return this.#deps.edge.clock;
  }

  /**
   * Decides a request's way: `undefined` for an ordinary request (the caller then hands it to
   * http.Agent unchanged), or true once the mesh took it.
   */
  take(req: ClientRequest, options: http.RequestOptions, pass: (options: http.RequestOptions) => void): boolean {
    const host = options.hostname ?? options.host ?? 'localhost';
    const defaultPort = this.#scheme === 'https:' ? 443 : 80;
    const port = options.port === undefined || options.port === null || Number(options.port) === defaultPort ? '' : String(options.port);
    const shape = originShape(`${this.#scheme}//${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}${port === '' ? '' : `:${port}`}`);
    if (shape === null) return false;
    const config = this.#deps.edge.config();
    const decision = decideOrigin(shape, (n) => config?.services.has(n) === true, () => [...(config?.services.keys() ?? [])], this.#deps.unknownHosts);
    if (decision.kind === 'pass') return false;
    if (decision.kind === 'refuse') {
      refuse(req, decision.error);
      return true;
    }
    const service = decision.service;
    const spec = config?.services.get(service);
    if (spec === undefined) {
      refuse(req, new UnknownServiceError(`no Service document named ${service}`, { service }));
      return true;
    }
    if (spec.protocol !== 'http') {
      refuse(req, new InvalidArgumentError(`mesh.agent speaks HTTP/1.1, and ${service} is protocol ${spec.protocol}${spec.protocol === 'tcp' ? ' (open connections to it with mesh.connect)' : ''}`, { service }));
      return true;
    }
    this.#send(req, options, spec, pass);
    return true;
  }

  #routeTable(spec: ServiceSpec): RouteTable {
    let t = this.#routes.get(spec);
    if (t === undefined) {
      t = compileRoutes(spec.routes);
      this.#routes.set(spec, t);
    }
    return t;
  }

  #stack(spec: ServiceSpec): ConnectionStack<AgentCall, IncomingMessage> | undefined {
    let s = this.#stacks.get(spec);
    if (s !== undefined) return s;
    const { edge } = this.#deps;
    const state = edge.destinations.get(spec.name)?.state;
    if (state === undefined) return undefined;
    const agent = this.#agent;
    const routes = spec.routes.length > 0 ? this.#routeTable(spec) : undefined;
    s = connectionStack<AgentCall, IncomingMessage>(spec, state, { clock: edge.clock, random: edge.random, ...edge.stack }, {
      kind: 'http-agent',
      retries: true,
      // Only a connect that failed before the request had a socket can be tried again.
      retryOnly: ['connect-failure'],
      classify: (res, err) => {
        const c = classify(res, err);
        // Failed after node:http had the request: a failure, but not one a retry may act on.
        return c.kind === 'failure' && isSent(err) ? NOT_RETRYABLE : c;
      },
      route: (call) => (routes === undefined ? 0 : routes.match(call)?.route.index),
      discard: (res) => res.resume(),
      whenDone: (res, done) => {
        if (res.complete || res.destroyed) done();
        else res.once('close', done);
      },
      transport: (call, ctx) => {
        const endpoint = ctx.endpoint;
        if (endpoint === undefined) return Promise.reject(new Error('trellis: no endpoint chosen'));
        const target: MeshTarget = { service: spec.name, endpoint, spec, preDialed: undefined };
        const name = nameOf(target);
        const pooled = (agent.freeSockets[name]?.length ?? 0) + (agent.sockets[name]?.length ?? 0);
        const hasFree = (agent.freeSockets[name] ?? []).some((sock) => !sock.destroyed);
        const hand = (): Promise<IncomingMessage> => new Promise<IncomingMessage>((resolve, reject) => {
          const { req } = call;
          const onAbort = (): void => {
            req.destroy(ctx.signal?.reason as Error);
          };
          ctx.signal?.addEventListener('abort', onAbort);
          req.once('response', (res: IncomingMessage) => {
            resolve(res);
            // Until the body ends, a timeout still cuts it.
            res.once('close', () => ctx.signal?.removeEventListener('abort', onAbort));
          });
          req.once('error', (err) => {
            ctx.signal?.removeEventListener('abort', onAbort);
            reject(markSent(mapTransportError(err, { service: spec.name, endpoint: endpoint.id })));
          });
          call.handed = true;
          call.pass({ ...call.options, host: endpoint.host, hostname: endpoint.host, port: endpoint.port, [kTarget]: target } as TargetOptions);
          // A free socket was taken instead of the one opened for this request: nobody needs it.
          if (target.preDialed !== undefined) {
            target.preDialed.destroy();
            target.preDialed = undefined;
          }
        });
        if (hasFree || pooled >= agent.maxSockets) return hand();
        // Open the connection first, through the retry layer above: a refused connect is tried on
        // another endpoint while nothing of the request has been sent.
        return dialEndpoint({ service: spec.name, endpoint, connect: edge.transportFor(spec), connectTimeoutMs: spec.connection.connectTimeoutMs, signal: ctx.signal }).then((socket) => {
          target.preDialed = socket;
          return hand();
        });
      },
    });
    this.#stacks.set(spec, s);
    return s;
  }

  #send(req: ClientRequest, options: http.RequestOptions, spec: ServiceSpec, pass: (options: http.RequestOptions) => void): void {
    const service = spec.name;
    const stack = this.#stack(spec);
    if (stack === undefined) {
      refuse(req, new UnknownServiceError(`no destination named ${service}`, { service }));
      return;
    }
    const call: AgentCall = { req, options, method: req.method, path: req.path, headers: headersOf(req), pass, handed: false };
    if (spec.routes.length > 0) {
      const m = this.#routeTable(spec).match(call);
      const refused = m === undefined ? undefined : unsupportedRoute(spec, m.route.index);
      if (refused !== undefined) {
        refuse(req, new InvalidArgumentError(refused, { service, route: m?.name }));
        return;
      }
    }
    // Trace context, written now: node:http renders the headers as soon as the caller ends the request.
    const parent = this.#deps.tracer.currentParent();
    if (parent !== undefined && !req.headersSent) {
      for (const [k, v] of Object.entries(this.#deps.tracer.headersFor(parent))) req.setHeader(k, v);
    }
    // Each request is its own call: idempotent (the methods' meaning) only matters for connect retries, which are always safe.
    const ctx = new CallContext(service, true);
    const start = this.#deps.edge.clock.now();
    const metrics = this.#deps.metrics;
    stack.service(call, ctx).then(
      (res) => {
        const status = res.statusCode ?? 0;
        const outcome = status >= 500 ? 'failure' : 'success';
        const record = (): void => metrics.recordClientRequest(service, ctx.route ?? 'unknown', req.method, statusLabel(status), res.errored ? 'reset' : outcome, (this.#deps.edge.clock.now() - start) / 1000);
        if (res.complete || res.destroyed) record();
        else res.once('close', record);
      },
      (err: unknown) => {
        metrics.recordClientRequest(service, ctx.route ?? 'unknown', req.method, '', outcomeOf(err), (this.#deps.edge.clock.now() - start) / 1000);
        if (call.handed) req.destroy(err as Error);
        else refuse(req, err as Error);
      },
    );
  }

  /** The connection for a mesh request: the one opened before, or a new one (when a queued request gets a socket). */
  createConnection(options: TargetOptions, callback: ConnectionCallback | undefined): Socket | undefined {
    const target = options[kTarget];
    if (target === undefined) return undefined;
    const pre = target.preDialed;
    if (pre !== undefined) {
      target.preDialed = undefined;
      return pre;
    }
    const edge = this.#deps.edge;
    dialEndpoint({ service: target.service, endpoint: target.endpoint, connect: edge.transportFor(target.spec), connectTimeoutMs: target.spec.connection.connectTimeoutMs, signal: undefined }).then(
      (s) => callback?.(null, s),
      (err: Error) => (callback as ((err: Error) => void) | undefined)?.(err),
    );
    return undefined;
  }
}

/** The Agent's pool key of a mesh request: its service and endpoint, never another origin's. */
function nameOf(target: MeshTarget): string {
  return `trellis:${target.service}:${target.endpoint.id}`;
}

type AddRequest = (req: ClientRequest, options: http.RequestOptions) => void;
type ConnectionCallback = (err: Error | null, stream: Duplex) => void;
type CreateConnection = (options: http.ClientRequestArgs, callback?: ConnectionCallback) => Duplex | null | undefined;

/** The Agent for `http://` URLs: `axios.get('http://products/list', { httpAgent: mesh.agent })`. */
export class MeshAgent extends http.Agent {
  readonly #core: AgentCore;

  constructor(deps: MeshAgentDeps, options: http.AgentOptions = {}) {
    super({ keepAlive: true, ...options });
    this.#core = new AgentCore(this, 'http:', deps);
  }

  addRequest(req: ClientRequest, options: http.RequestOptions): void {
    const base = (http.Agent.prototype as unknown as { addRequest: AddRequest }).addRequest;
    if (!this.#core.take(req, options, (o) => base.call(this, req, o))) base.call(this, req, options);
  }

  override createConnection(options: http.ClientRequestArgs, callback?: ConnectionCallback): Duplex | null | undefined {
    return this.#core.createConnection(options, callback) ?? net.createConnection(options as net.NetConnectOpts);
  }

  override getName(options: http.RequestOptions = {}): string {
    const target = (options as TargetOptions)[kTarget];
    if (target !== undefined) return nameOf(target);
    return (http.Agent.prototype as unknown as { getName: (o: http.RequestOptions) => string }).getName.call(this, options);
  }
}

/**
 * The Agent for `https://` URLs (axios's `httpsAgent`, got's `agent.https`): ordinary HTTPS for
 * other hosts; `https://<service>` is refused with the reason (the mesh encrypts calls to
 * services itself: write `http://<service>` and the request goes over mTLS).
 */
export class MeshHttpsAgent extends https.Agent {
  readonly #core: AgentCore;

  constructor(deps: MeshAgentDeps, options: https.AgentOptions = {}) {
    super({ keepAlive: true, ...options });
    this.#core = new AgentCore(this, 'https:', deps);
  }

  addRequest(req: ClientRequest, options: http.RequestOptions): void {
    const base = (https.Agent.prototype as unknown as { addRequest: AddRequest }).addRequest;
    if (!this.#core.take(req, options, (o) => base.call(this, req, o))) base.call(this, req, options);
  }

  override createConnection(options: http.ClientRequestArgs, callback?: ConnectionCallback): Duplex | null | undefined {
    const base = (https.Agent.prototype as unknown as { createConnection: CreateConnection }).createConnection;
    return this.#core.createConnection(options, callback) ?? base.call(this, options, callback);
  }
}
