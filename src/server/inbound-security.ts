/**
 * The identity and authorization steps of the inbound stack, in front of the rest of it
 * (src/server/inbound-stack.ts: rate limit → fault → trace/deadline ambient → handler), so
 * that `mesh.serve`, the Express middleware and the Fastify plugin run one and the same order:
 *
 *   strip identity headers → metrics start → identity (peer) → authorization → rate limit →
 *   fault → trace + deadline ambient → handler
 *
 * - Identity headers are stripped first, before metrics, the access log or any rule can read
 *   them (src/server/identity-headers.ts).
 * - Metrics start before identity so a denied request is counted (`outcome="forbidden"`) with
 *   its caller; the labels object it returns is handed on to the inner stack, which sets
 *   `rate_limited` / `fault` on the same object.
 * - Authorization must come before the rate limit: a caller that may not call us must not be
 *   able to spend our rate-limit tokens and starve the callers that may.
 * - The peer is set on the request (`req.trellis.peer`) before the handler runs; it comes only
 *   from the connection (src/server/peer.ts).
 *
 * A service without `inbound.authorization` has an authorizer with `enabled: false` and the
 * check is skipped (no path refusals either). A request that already went through a Trellis
 * stack (`req.trellis` set: `mesh.serve(app)` of an app that also uses `mesh.express()`) goes
 * straight to the handler, so it is counted, authorized and rate limited once.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERROR_CODES } from '../core/errors.js';
import { writeForbidden } from './authorization.js';
import type { Authorizer, DenyReason } from './authorization.js';
import { stripIdentityHeaders } from './identity-headers.js';
import { inboundHandler } from './inbound-stack.js';
import type { InboundDeps, InboundLabels, InboundObservability, InboundPolicy, NodeHandler } from './inbound-stack.js';
import type { PeerInfo, PeerResolver } from './peer.js';

/** What Trellis tells the application about a request, as `req.trellis`. */
export interface TrellisRequestInfo {
  /** The verified caller, or `unknown` (plaintext, or not a mesh identity). */
  readonly peer: PeerInfo;
}

declare module 'http' {
  interface IncomingMessage {
    /** Set by Trellis's inbound stack (mesh.serve, mesh.express(), mesh.fastify() on `request.raw`). */
    trellis?: TrellisRequestInfo | undefined;
  }
}

/** The inbound policy of one config version, with its compiled authorization. */
export interface MeshInboundPolicy extends InboundPolicy {
  /** Undefined or `enabled: false`: no authorization configured. */
  readonly authorizer?: Authorizer | undefined;
}

export interface MeshInboundDeps extends InboundDeps {
  policy: () => MeshInboundPolicy;
  /** Who called: shared with the listener so each connection is checked once. */
  peers: PeerResolver;
  /**
   * The route label of a request, read when its response ends (Express knows the route
   * template only after routing). A bounded template (`/users/:id`), never a raw path.
   */
  routeLabel?: ((req: IncomingMessage) => string | undefined) | undefined;
  onForbidden?: ((reason: DenyReason | undefined) => void) | undefined;
}

const FORBIDDEN_OUTCOME = ERROR_CODES.TRELLIS_FORBIDDEN.outcome;

/** The Trellis information of a request the inbound stack handled. */
export function trellisInfo(req: IncomingMessage): TrellisRequestInfo | undefined {
  return req.trellis;
}

/**
 * Wraps `handler` in the whole inbound stack (see the file comment for the order).
 *
 * @example
 * const server = createMeshListener(meshInboundHandler(app, deps), listenerOptions);
 */
export function meshInboundHandler(handler: NodeHandler, deps: MeshInboundDeps): NodeHandler {
  const { service, peers, routeLabel } = deps;
  const obs = deps.observability;
  // The inner stack gets the labels this step started with, instead of starting metrics again.
  const labelsOf = new WeakMap<IncomingMessage, InboundLabels>();
  let innerObs: InboundObservability | undefined;
  if (obs !== undefined) {
    innerObs = {
      observe: (req) => labelsOf.get(req) ?? {},
      ...(obs.startTrace === undefined ? {} : { startTrace: (req: IncomingMessage, res: ServerResponse, svc: string | undefined) => obs.startTrace?.(req, res, svc) }),
      ...(obs.inboundRateLimited === undefined ? {} : { inboundRateLimited: (svc: string | undefined) => obs.inboundRateLimited?.(svc) }),
    };
  }
  const inner = inboundHandler(handler, { ...deps, observability: innerObs });

  return (req, res) => {
    // Already through a Trellis stack (mesh.serve of an app that also uses mesh.express()):
    // running it twice would count the request twice and spend two rate-limit tokens.
    if (req.trellis !== undefined) {
      handler(req, res);
      return;
    }
    stripIdentityHeaders(req);
    const labels = obs?.observe?.(req, res, service);
    const peer = peers.of(req.socket);
    req.trellis = { peer };
    if (labels !== undefined) {
      labels.caller = peer.service;
      labelsOf.set(req, labels);
      if (routeLabel !== undefined) {
        // Prepended: runs before the metrics hook's own 'finish' / 'close' listener reads the labels.
        const fill = (): void => {
          labels.route ??= routeLabel(req);
        };
        res.prependOnceListener('finish', fill);
        res.prependOnceListener('close', fill);
      }
    }
    const authorizer = deps.policy().authorizer;
    if (authorizer !== undefined && authorizer.enabled) {
      const decision = authorizer.authorize({ caller: peer.service, method: req.method ?? '', path: req.url ?? '' });
      if (!decision.allowed) {
        if (labels !== undefined) labels.outcome = FORBIDDEN_OUTCOME;
        deps.onForbidden?.(decision.reason);
        writeForbidden(req, res, service);
        return;
      }
    }
    inner(req, res);
  };
}
