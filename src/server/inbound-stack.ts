/**
 * The inbound stack, in one place — `mesh.serve`, the Express middleware and the Fastify plugin
 * all run this one function. It wraps a node:http handler, so the steps are node:http-shaped:
 * each gets the request and response and either answers or passes on. The order:
 *
 *   strip identity headers (and trailers, when they arrive) → metrics start → identity (peer) →
 *   authorization → rate limit → overload → fault → trace + deadline ambient → handler
 *
 * - Identity headers are stripped first, before metrics, the access log or any rule reads them.
 * - Metrics start before identity so a denied request is counted (`outcome="forbidden"`) with
 *   its caller; later steps set `rate_limited` / `fault` on the same labels.
 * - Authorization comes before the rate limit: a caller that may not call us must not spend the
 *   tokens of callers that may.
 * - Overload comes after the rate limit (a refused caller must not take an in-flight slot) and
 *   before the fault and the handler: a shed request costs a few comparisons, its body is never
 *   read, and it is answered 503 with `x-trellis-shed` so Trellis callers retry it elsewhere.
 * - The peer (`req.trellis.peer`) comes only from the connection (src/server/peer.ts).
 *
 * The policy is read per request from `policy()`, so a config change applies to the next
 * request; what is built per policy (limiter, samplers) is built once per config version.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock, Random } from '../core/clock.js';
import { runWithAmbient } from '../core/ambient.js';
import type { AmbientContext, TraceContext } from '../core/ambient.js';
import type { FaultSpec } from '../config/types.js';
import type { RateLimiter } from '../resilience/rate-limiter.js';
import { ERROR_CODES } from '../core/errors.js';
import { inboundAmbient } from './inbound-context.js';
import { writeForbidden } from './authorization.js';
import type { Authorizer, DenyReason } from './authorization.js';
import { guardIdentityTrailers, stripIdentityHeaders } from './identity-headers.js';
import { connectionOf } from './peer.js';
import type { PeerResolver } from './peer.js';
import type { OverloadGuard, ShedReason } from './overload-guard.js';
import { SHED_HEADER } from '../core/shed.js';

export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** What one config version asks of the inbound side. */
export interface InboundPolicy {
  readonly limiter: RateLimiter | undefined;
  readonly fault: FaultSpec | undefined;
  /** Undefined or `enabled: false`: no authorization configured. */
  readonly authorizer?: Authorizer | undefined;
  /** Undefined: no `inbound.overload` configured. */
  readonly overload?: OverloadGuard | undefined;
}

/** Labels the inbound steps decide for a request's metrics (outcome `rate_limited`, `fault`, ...). */
export interface InboundLabels {
  caller?: string | undefined;
  route?: string | undefined;
  outcome?: string | undefined;
}

/** The server span of one request, as the tracing side hands it to the inbound stack. */
export interface InboundSpan {
  readonly ambientTrace: TraceContext;
  run<T>(fn: () => T): T;
}

/** Hooks observability fills, once per request. */
export interface InboundObservability {
  /** Starts the server span; returns the trace context the handler runs in and how to run it in the span. */
  startTrace?(req: IncomingMessage, res: ServerResponse, service: string | undefined): InboundSpan | undefined;
  /** Starts recording the request (metrics, access log) when it finishes; returns labels the steps may set. */
  observe?(req: IncomingMessage, res: ServerResponse, service: string | undefined): InboundLabels;
  inboundRateLimited?(service: string | undefined): void;
  inboundShed?(service: string | undefined, reason: ShedReason): void;
}

export interface InboundDeps {
  clock: Clock;
  random: Random;
  service: string | undefined;
  policy: () => InboundPolicy;
  observability?: InboundObservability | undefined;
  /** Who called: shared with the listener so each connection is checked once. */
  peers: PeerResolver;
  /**
   * The route label of a request, read when its response ends (Express knows the route
   * template only after routing). A bounded template (`/users/:id`), never a raw path.
   */
  routeLabel?: ((req: IncomingMessage) => string | undefined) | undefined;
  onRateLimited?: () => void;
  onFault?: (kind: 'delay' | 'abort') => void;
  onForbidden?: ((reason: DenyReason | undefined) => void) | undefined;
}

const FORBIDDEN_OUTCOME = ERROR_CODES.TRELLIS_FORBIDDEN.outcome;

function hit(percent: number, random: Random): boolean {
  return percent >= 100 || (percent > 0 && random() * 100 < percent);
}

const OVERLOADED_OUTCOME = ERROR_CODES.TRELLIS_OVERLOADED.outcome;

/**
 * Answers a shed request: 503 with `Retry-After`, and `x-trellis-shed` naming the reason, which a
 * Trellis caller reads as "nothing was done, retry on another instance".
 */
function shedResponse(res: ServerResponse, service: string | undefined, reason: ShedReason): void {
  res.statusCode = 503;
  res.setHeader('retry-after', '1');
  res.setHeader('content-type', 'application/json');
  res.setHeader(SHED_HEADER, reason);
  res.end(JSON.stringify({ error: 'TRELLIS_OVERLOADED', service: service ?? 'unknown', reason }));
}

/** Answers a refused request the way Envoy's local rate limit does, with a JSON body naming the service. */
function tooManyRequests(res: ServerResponse, service: string | undefined, retryAfterMs: number): void {
  res.statusCode = 429;
  res.setHeader('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  res.setHeader('content-type', 'application/json');
  res.setHeader('x-trellis-rate-limited', '1');
  res.end(JSON.stringify({ error: 'TRELLIS_RATE_LIMITED', service: service ?? 'unknown', retryAfterMs: Math.ceil(retryAfterMs) }));
}

export function inboundHandler(handler: NodeHandler, deps: InboundDeps): NodeHandler {
  const { clock, random, service, observability, peers, routeLabel } = deps;
  const run = (req: IncomingMessage, res: ServerResponse, ambient: AmbientContext): void => {
    const span = observability?.startTrace?.(req, res, service);
    if (span === undefined) runWithAmbient(ambient, () => handler(req, res));
    else runWithAmbient({ ...ambient, trace: span.ambientTrace }, () => span.run(() => handler(req, res)));
  };
  return (req, res) => {
    // Already through a Trellis stack (mesh.serve of an app that also uses mesh.express()):
    // running it twice would count the request twice and spend two rate-limit tokens.
    if (req.trellis !== undefined) {
      handler(req, res);
      return;
    }
    stripIdentityHeaders(req);
    guardIdentityTrailers(req);
    const labels = observability?.observe?.(req, res, service);
    const peer = peers.of(connectionOf(req));
    req.trellis = { peer };
    if (labels !== undefined) {
      labels.caller = peer.service;
      if (routeLabel !== undefined) {
        // Prepended: runs before the metrics hook's own 'finish' / 'close' listener reads the labels.
        const fill = (): void => {
          labels.route ??= routeLabel(req);
        };
        res.prependOnceListener('finish', fill);
        res.prependOnceListener('close', fill);
      }
    }
    const policy = deps.policy();
    const authorizer = policy.authorizer;
    if (authorizer !== undefined && authorizer.enabled) {
      const decision = authorizer.authorize({ caller: peer.service, method: req.method ?? '', path: req.url ?? '' });
      if (!decision.allowed) {
        if (labels !== undefined) labels.outcome = FORBIDDEN_OUTCOME;
        deps.onForbidden?.(decision.reason);
        writeForbidden(req, res, service);
        return;
      }
    }
    // Rate limit: must come before any work is done for the request.
    const limiter = policy.limiter;
    if (limiter !== undefined && !limiter.tryAcquire()) {
      deps.onRateLimited?.();
      observability?.inboundRateLimited?.(service);
      if (labels !== undefined) labels.outcome = 'rate_limited';
      req.resume();
      tooManyRequests(res, service, limiter.retryAfterMs());
      return;
    }
    // The caller's deadline, read once at arrival: the overload guard judges it, the handler
    // inherits it, and an injected delay spends it as real latency would.
    const ambient = inboundAmbient(req.headers, clock, service);
    const guard = policy.overload;
    if (guard !== undefined) {
      const verdict = guard.admit(req.url ?? '/', ambient.deadline, clock.now());
      if (typeof verdict === 'string') {
        observability?.inboundShed?.(service, verdict);
        if (labels !== undefined) labels.outcome = OVERLOADED_OUTCOME;
        req.resume();
        shedResponse(res, service, verdict);
        return;
      }
      const release = (): void => verdict.done(clock.now(), res.writableFinished);
      res.once('finish', release);
      res.once('close', release);
    }
    const fault = policy.fault;
    if (fault !== undefined) {
      const delay = fault.delay !== undefined && hit(fault.delay.percent, random) ? fault.delay.durationMs : 0;
      const abort = fault.abort !== undefined && hit(fault.abort.percent, random) ? fault.abort.status : 0;
      const go = (): void => {
        if (abort > 0) {
          deps.onFault?.('abort');
          if (labels !== undefined) labels.outcome = 'fault';
          req.resume();
          res.statusCode = abort;
          res.setHeader('x-trellis-fault', 'abort');
          res.end('fault filter abort');
          return;
        }
        run(req, res, ambient);
      };
      if (delay > 0) {
        deps.onFault?.('delay');
        const t = setTimeout(go, delay);
        res.once('close', () => clearTimeout(t));
        return;
      }
      go();
      return;
    }
    run(req, res, ambient);
  };
}
