/**
 * `mesh.fastify()`: the inbound stack as a Fastify 5 plugin (`await app.register(mesh.fastify())`).
 * Same steps and order as `mesh.serve` (src/server/inbound-security.ts), run in an `onRequest`
 * hook on `request.raw` / `reply.raw`; `request.trellis` (decorated `null`, then `{ peer }`) is
 * the verified caller or `unknown`. The metrics `route` label is `request.routeOptions.url`
 * (the route template, known in onRequest), or `unknown` for the 404 handler.
 *
 * Plugin conventions (what fastify-plugin sets, written here so the package depends on neither
 * fastify nor fastify-plugin): `skip-override`, so the hooks apply to the whole application
 * and not only to an encapsulated child context; a display name; and `plugin-meta` with
 * `fastify: '5.x'`, which Fastify checks at registration.
 *
 * Ambient context: `done()` of the onRequest hook is called inside it, so the rest of the
 * lifecycle inherits the deadline and trace. Body parsing does not lose it: Fastify runs content
 * type parsers in an AsyncResource bound to the request (lib/content-type-parser.js), so the
 * hooks and the handler that follow the 'end' of the body keep the context (tested with a POST).
 *
 * Paths are authorized the way this instance routes them: with case-insensitive routing
 * (`routerOptions.caseSensitive: false`, or the deprecated top-level option) a path with
 * percent-encoded non-ASCII bytes is refused, because find-my-way's `toLowerCase` folds some of
 * them onto ASCII (the Kelvin sign is `k`): see forCaseInsensitiveRouting in authorization.ts.
 *
 * When the stack answers by itself (403, 429, injected abort) done() is not called, so Fastify
 * runs no later hook and sends nothing; the reply is then marked hijacked (`reply.hijack()`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:net';
import { meshInboundHandler } from './inbound-security.js';
import type { MeshInboundDeps, MeshInboundPolicy, TrellisRequestInfo } from './inbound-security.js';
import { forCaseInsensitiveRouting } from './authorization.js';

/** The parts of a Fastify request the plugin uses. */
export interface FastifyRequestLike {
  readonly raw: IncomingMessage;
  readonly routeOptions: { readonly url?: string | undefined };
}

/** The parts of a Fastify reply the plugin uses. */
export interface FastifyReplyLike {
  readonly raw: ServerResponse;
  hijack(): unknown;
}

export type FastifyHookDone = (err?: Error) => void;
export type FastifyHookLike = (request: FastifyRequestLike, reply: FastifyReplyLike, done: FastifyHookDone) => void;

/** The router settings the plugin reads (Fastify 5 `initialConfig`). */
export interface FastifyInitialConfigLike {
  readonly caseSensitive?: boolean | undefined;
  readonly routerOptions?: { readonly caseSensitive?: boolean | undefined } | undefined;
}

/** The parts of a Fastify instance the plugin uses. */
export interface FastifyInstanceLike {
  decorateRequest(property: 'trellis', value: null): unknown;
  addHook(name: 'onRequest', hook: FastifyHookLike): unknown;
  readonly initialConfig?: FastifyInitialConfigLike | undefined;
  /** The application's server (registered with the control plane while it listens). */
  readonly server?: Server | undefined;
}

/** Fastify's `preClose` hook, registered when the application is served (out of the registry before the drain). */
interface FastifyPreClose {
  addHook(name: 'preClose', hook: (done: () => void) => void): unknown;
}

/**
 * Whether the instance's router matches paths case-sensitively. Fastify 5 takes
 * `routerOptions.caseSensitive` over the deprecated top-level `caseSensitive` (lib/route.js
 * buildRouterOptions); `initialConfig.caseSensitive` alone says `true` (its default) when only
 * `routerOptions` turned it off. Anything not plainly `true` counts as case-insensitive: that
 * only makes authorization stricter.
 */
export function routesCaseSensitively(instance: FastifyInstanceLike): boolean {
  const config = instance.initialConfig;
  const router = config?.routerOptions?.caseSensitive;
  if (router !== undefined) return router === true;
  return config?.caseSensitive === true;
}

/** A Fastify plugin callback, as `fastify.register` takes it. */
export type TrellisFastifyPlugin = (instance: FastifyInstanceLike, options: Record<string, unknown>, done: (err?: Error) => void) => void;

/** What the Fastify plugin needs; mesh.ts provides it (the route label is Fastify's own). */
export type FastifyPluginDeps = Omit<MeshInboundDeps, 'routeLabel'> & {
  /** Registers the application's server with the control plane; returns the deregistration. */
  readonly advertise?: ((server: Server) => () => void) | undefined;
};

interface Pending {
  readonly done: () => void;
  resolved: boolean;
}

const strict = new WeakMap<MeshInboundPolicy, MeshInboundPolicy>();

/** The policy with its authorizer for a case-insensitive router; one object per config version. */
function strictPaths(p: MeshInboundPolicy): MeshInboundPolicy {
  if (p.authorizer === undefined || !p.authorizer.enabled) return p;
  let s = strict.get(p);
  if (s === undefined) {
    s = { ...p, authorizer: forCaseInsensitiveRouting(p.authorizer) };
    strict.set(p, s);
  }
  return s;
}

/**
 * @example
 * const app = Fastify();
 * await app.register(mesh.fastify());
 * app.get('/list', async (request) => ({ caller: request.trellis?.peer.service }));
 */
export function fastifyPlugin(deps: FastifyPluginDeps): TrellisFastifyPlugin {
  const pending = new WeakMap<IncomingMessage, Pending>();
  const routes = new WeakMap<IncomingMessage, string>();
  const next = (req: IncomingMessage): void => {
    const p = pending.get(req);
    if (p === undefined) return;
    p.resolved = true;
    pending.delete(req);
    p.done();
  };
  const routeLabel = (req: IncomingMessage): string | undefined => routes.get(req);

  const plugin: TrellisFastifyPlugin = (fastify, _options, pluginDone) => {
    // Authorization must match paths the way this instance's router will (docs/security.md):
    // a case-insensitive router folds non-ASCII characters onto ASCII ones (the Kelvin sign
    // reaches `/api/keys`), so such paths are refused there (forCaseInsensitiveRouting).
    const policy = routesCaseSensitively(fastify) ? deps.policy : () => strictPaths(deps.policy());
    const handle = meshInboundHandler(next, { ...deps, policy, routeLabel });
    fastify.decorateRequest('trellis', null);
    if (deps.advertise !== undefined && fastify.server !== undefined) {
      const withdraw = deps.advertise(fastify.server);
      (fastify as FastifyInstanceLike & FastifyPreClose).addHook('preClose', (done) => {
        withdraw();
        done();
      });
    }
    fastify.addHook('onRequest', (request, reply, done) => {
      const raw = request.raw;
      const url = request.routeOptions.url;
      if (url !== undefined) routes.set(raw, url);
      const p: Pending = {
        resolved: false,
        done: () => {
          (request as FastifyRequestLike & { trellis: TrellisRequestInfo | null }).trellis = raw.trellis ?? null;
          done();
        },
      };
      pending.set(raw, p);
      // When the stack answered instead of passing on, the reply is marked hijacked so Fastify
      // releases what it holds for it (handler timeout, socket metadata).
      reply.raw.once('finish', () => {
        if (!p.resolved) reply.hijack();
      });
      handle(raw, reply.raw);
    });
    pluginDone();
  };
  const meta = plugin as unknown as Record<symbol, unknown>;
  meta[Symbol.for('skip-override')] = true;
  meta[Symbol.for('fastify.display-name')] = 'trellis';
  meta[Symbol.for('plugin-meta')] = { name: 'trellis', fastify: '5.x' };
  return plugin;
}
