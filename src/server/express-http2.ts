/**
 * Express apps served over HTTP/2 by `mesh.serve`. Express gives every request its own
 * prototypes (`Object.setPrototypeOf(req, app.request)`), and those extend node:http's
 * `IncomingMessage` and `ServerResponse`: an HTTP/2 compatibility request given them loses its
 * own accessors (its headers, its stream) and fails on the first read. This adapter keeps
 * Express's methods and swaps the base: for an HTTP/2 request it runs the app's `handle` with
 * request and response prototypes built once per app from the app's own (`app.request`,
 * `app.response` and what they inherit from Express), on top of node:http2's
 * `Http2ServerRequest` and `Http2ServerResponse`. HTTP/1.1 requests go to the app untouched.
 *
 * Limits: a sub-app mounted with `app.use(subApp)` sets its own node:http prototypes again, so
 * mount routers (`express.Router()`), not apps, in an app served over HTTP/2. Express's
 * `req.hostname` reads `Host`, which HTTP/2 clients send as `:authority` (`req.authority`).
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { NodeHandler } from './inbound-stack.js';

/** What `mesh.serve` may be given that is an Express app (checked structurally). */
interface ExpressLike {
  (req: http.IncomingMessage, res: http.ServerResponse): void;
  handle(req: unknown, res: unknown, next?: unknown): void;
  request: object;
  response: object;
}

function inherits(proto: unknown, base: object): boolean {
  for (let p = proto; p !== null && typeof p === 'object'; p = Object.getPrototypeOf(p)) if (p === base) return true;
  return false;
}

function isExpressApp(handler: unknown): handler is ExpressLike {
  const h = handler as Partial<ExpressLike>;
  return typeof handler === 'function' && typeof h.handle === 'function' && inherits(h.request, http.IncomingMessage.prototype) && inherits(h.response, http.ServerResponse.prototype);
}

/** `proto`'s own chain up to `stop` (exclusive), re-based on `base`: the same members, another parent. */
function rebase(proto: object, stop: object, base: object): object {
  const chain: object[] = [];
  for (let p: object | null = proto; p !== null && p !== stop; p = Object.getPrototypeOf(p) as object | null) chain.push(p);
  const out = Object.create(base) as object;
  for (const p of chain.reverse()) Object.defineProperties(out, Object.getOwnPropertyDescriptors(p));
  return out;
}

/**
 * The handler `mesh.serve` runs: an Express app made safe for HTTP/2 requests, anything else as
 * it is.
 *
 * @example
 * http2Ready(expressApp)(req, res); // req may be an Http2ServerRequest
 */
export function http2Ready(handler: NodeHandler): NodeHandler {
  if (!isExpressApp(handler)) return handler;
  const app = handler;
  let view: ExpressLike | undefined;
  return (req, res) => {
    if (!(req instanceof http2.Http2ServerRequest)) {
      app(req, res);
      return;
    }
    // Built on first use, after the application configured the app.
    view ??= Object.create(app, {
      request: { value: rebase(app.request, http.IncomingMessage.prototype, http2.Http2ServerRequest.prototype) },
      response: { value: rebase(app.response, http.ServerResponse.prototype, http2.Http2ServerResponse.prototype) },
    }) as ExpressLike;
    view.handle(req, res);
  };
}
