/**
 * `mesh.express()`: the inbound stack as Express 5 middleware, for applications that own their
 * server (`app.use(mesh.express())` first, before routers and body parsers). The same steps and
 * order as `mesh.serve` (src/server/inbound-security.ts): identity headers stripped → metrics →
 * peer → authorization (403) → rate limit (429) → fault → trace + deadline ambient → `next()`.
 *
 * `next()` is called inside the ambient context (AsyncLocalStorage), so every later middleware
 * and handler — and the outbound calls they make, awaited or not — inherit the request's
 * deadline and trace. `req.trellis.peer` is the verified caller, or `unknown`.
 *
 * The peer is verified only when the application's server is TLS with `requestCert` and the
 * client certificate verified against the mesh bundle (`socket.authorized`); any other
 * connection is `unknown`, so authorization rules naming services deny it.
 *
 * Express knows the route template only after routing, so the metrics `route` label is read
 * from `req.route.path` when the response ends (`/users/:id`; the router's mount path is not
 * added, since it may hold parameter values). Errors: this middleware never throws or calls
 * `next(err)` itself; Express 5 forwards async errors of later handlers to error middleware.
 *
 * Typed structurally (node:http request and response), so the package needs no @types/express.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { meshInboundHandler } from './inbound-security.js';
import type { MeshInboundDeps } from './inbound-security.js';

export type ExpressNext = (err?: unknown) => void;
export type ExpressMiddleware = (req: IncomingMessage, res: ServerResponse, next: ExpressNext) => void;

/** What the Express middleware needs; mesh.ts provides it (the route label is Express's own). */
export type ExpressMiddlewareDeps = Omit<MeshInboundDeps, 'routeLabel'>;

function expressRoute(req: IncomingMessage): string | undefined {
  const path = (req as IncomingMessage & { route?: { path?: unknown } }).route?.path;
  return typeof path === 'string' ? path : undefined;
}

/**
 * @example
 * const app = express();
 * app.use(mesh.express());
 * app.get('/list', async (req, res) => {
 *   // req.trellis?.peer.service is the verified caller; outbound calls carry the deadline
 *   const r = await mesh.http('products').request({ path: '/list' });
 *   res.json(await r.body.json());
 * });
 */
export function expressMiddleware(deps: ExpressMiddlewareDeps): ExpressMiddleware {
  const nexts = new WeakMap<IncomingMessage, ExpressNext>();
  const handle = meshInboundHandler(
    (req) => {
      const next = nexts.get(req);
      nexts.delete(req);
      next?.();
    },
    { ...deps, routeLabel: expressRoute },
  );
  return (req, res, next) => {
    nexts.set(req, next);
    handle(req, res);
  };
}
