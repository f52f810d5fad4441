/**
 * Authorization path bypasses over the wire, through the public API (`mesh.serve`,
 * `mesh.express()`, `mesh.fastify()`), judged by what each server's handlers saw: a refused
 * request gets the 403 and no handler runs. Three families (RELIABILITY.md §3, matrix row B10):
 *
 * - dot segments, including ones that resolve to an ALLOWED path (`/admin/../list`): the unit
 *   tests only used paths that were denied anyway, so authorization that resolved dot segments
 *   and then allowed went unnoticed;
 * - double encodings (`%25` + two hex digits: `%2573ecret` is `%73ecret`, then `secret`, to a
 *   handler that decodes twice), not only the `%252e` / `%252f` / `%255c` ones;
 * - Unicode case folding under Fastify's case-insensitive routing: find-my-way decodes the path
 *   and lower-cases it with `toLowerCase`, so the Kelvin sign (U+212A) reached a denied
 *   `/api/keys`; ſ (U+017F, `s` under Unicode case folding) and İ (U+0130, `i` + U+0307) are the
 *   other characters that fold onto ASCII.
 *
 * Requests go through node:http with the path as written: fetch would resolve the dot segments
 * before sending them.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { quietLogger } from '../helpers/servers.js';
import { plainRequest } from './helpers.js';

// Plaintext (no identity: mtls off), so every caller is `unknown`; the rules name no caller.
const CONFIG = `apiVersion: trellis/v1
kind: Service
metadata: { name: orders }
spec:
  inbound:
    authorization:
      allow:
        - { paths: ['/list*', '/api/*', '/data/*', '/public/*'] }
      deny:
        - { paths: ['/admin*', '/api/keys', '/data/secret', '/api/session'] }
`;

/** One application under test: its port and what its handlers saw (route → count). */
interface App {
  readonly name: string;
  port: number;
  readonly hits: Map<string, number>;
  close(): Promise<void>;
}

function count(app: App, route: string): void {
  app.hits.set(route, (app.hits.get(route) ?? 0) + 1);
}

const ROUTES = ['/list', '/admin', '/api/keys', '/api/session', '/data/secret', '/data/:name', '/public/:name'];

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function fastifyApp(mesh: Mesh, name: string, options: FastifyServerOptions): Promise<App & { fastify: FastifyInstance }> {
  const fastify = Fastify(options);
  const app = { name, port: 0, hits: new Map<string, number>(), fastify, close: () => fastify.close() };
  await fastify.register(mesh.fastify());
  for (const r of ROUTES) {
    fastify.get(r, async () => {
      count(app, r);
      return r;
    });
  }
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  app.port = (fastify.server.address() as AddressInfo).port;
  return app;
}

describe('authorization path bypasses over serve(), Express and Fastify', () => {
  let mesh: Mesh;
  let served: App;
  let expressed: App;
  let fastifyDefault: App;
  let fastifyFolding: App;
  let fastifyFoldingOld: App;
  const apps: App[] = [];

  before(async () => {
    mesh = await meshClient({ service: 'orders', config: CONFIG, logger: quietLogger() });

    // mesh.serve: a handler that decodes the path twice, as careless code does — the reason
    // double encodings are refused.
    const hits = new Map<string, number>();
    const s = await mesh.serve((req, res) => {
      const raw = (req.url ?? '/').split('?')[0] as string;
      let path = raw;
      try {
        path = decodeURIComponent(decodeURIComponent(raw));
      } catch {
        // `/data/100%25` decodes once to `/data/100%`, which does not decode again.
      }
      hits.set(path, (hits.get(path) ?? 0) + 1);
      res.end(path);
    });
    served = { name: 'serve', port: s.port, hits, close: () => s.close() };

    const e = express();
    expressed = { name: 'express', port: 0, hits: new Map(), close: async () => undefined };
    e.use(mesh.express());
    for (const r of ROUTES) e.get(r, (_req, res) => (count(expressed, r), res.send(r)));
    const server = http.createServer(e);
    expressed.port = await listen(server);
    expressed.close = () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve())));

    fastifyDefault = await fastifyApp(mesh, 'fastify', {});
    fastifyFolding = await fastifyApp(mesh, 'fastify routerOptions.caseSensitive=false', { routerOptions: { caseSensitive: false } });
    // The deprecated top-level option still configures the router (FSTDEP022 is printed once).
    fastifyFoldingOld = await fastifyApp(mesh, 'fastify caseSensitive=false', { caseSensitive: false });
    apps.push(served, expressed, fastifyDefault, fastifyFolding, fastifyFoldingOld);
  });

  after(async () => {
    for (const a of apps) await a.close();
    await mesh.close();
  });

  /** Sends `path` to `app` and asserts the 403 and that no handler ran. */
  async function refused(app: App, path: string): Promise<void> {
    const before = [...app.hits.entries()];
    const r = await plainRequest({ port: app.port, path });
    assert.equal(r.status, 403, `${app.name} ${path}: ${r.status} ${r.body ?? String(r.error)}`);
    assert.deepEqual(JSON.parse(r.body as string), { error: 'TRELLIS_FORBIDDEN', service: 'orders' });
    assert.deepEqual([...app.hits.entries()], before, `${app.name} ${path}: a handler ran`);
  }

  it('the allowed routes answer 200 (so a 403 below is authorization, not a missing route)', async () => {
    for (const app of apps) {
      for (const [path, route] of [['/list', '/list'], ['/data/report', '/data/:name']] as const) {
        const r = await plainRequest({ port: app.port, path });
        assert.equal(r.status, 200, `${app.name} ${path}: ${r.status} ${r.body}`);
        if (app !== served) assert.equal(app.hits.get(route), 1, `${app.name} ${route}`);
      }
    }
    // The deny rules deny as written.
    for (const app of apps) await refused(app, '/admin');
  });

  it('a dot segment is refused even when it resolves to an allowed path', async () => {
    // `/admin/../list` is `/list` after RFC 3986 resolution, which the rules allow; it is still
    // refused, as are the escaped forms and those resolving into a denied path.
    for (const app of apps) {
      for (const path of ['/admin/../list', '/data/x/../../list', '/list/./', '/api/%2e%2e/list', '/admin/.%2E/list']) await refused(app, path);
      for (const path of ['/list/../admin', '/list/../api/keys', '/data/%2e%2e/admin', '/list/./../data/secret']) await refused(app, path);
    }
  });

  it('any double encoding is refused, not only %252e / %252f / %255c', async () => {
    // Without authorization in the way, the double-decoding serve() handler would have served
    // /data/secret for `/data/%2573ecret` (the rules read `/data/%2573ecret`, allowed by /data/*).
    for (const app of apps) {
      for (const path of ['/data/%2573ecret', '/data/%2573%2565cret', '/api/%256beys', '/data/x%252e', '/list/%252e%252e/admin', '/data/%2541', '/data/%25c3%25a9']) {
        await refused(app, path);
      }
    }
    // `%25` not followed by two hex digits is a plain percent sign: allowed.
    for (const app of apps) {
      const r = await plainRequest({ port: app.port, path: '/data/100%25' });
      assert.equal(r.status, 200, `${app.name}: ${r.status} ${r.body}`);
    }
  });

  it('case-insensitive Fastify: Unicode characters folding onto ASCII never reach a denied route', async () => {
    // The Kelvin sign is the live bypass (find-my-way lower-cases it to `k`); ſ and İ fold onto
    // `s` / `i` under other folding rules. Upper-case ASCII is covered by deny rules' own folding.
    const tricks = [
      '/api/%E2%84%AAeys', // K (Kelvin sign) + eys → /api/keys
      '/api/%e2%84%aaeys',
      '/api/%C5%BFession', // ſ (long s) → s
      '/data/%C5%BFecret',
      '/adm%C4%B0n', // İ → i + combining dot
      '/api/KEYS',
      '/ADMIN',
    ];
    for (const app of [fastifyFolding, fastifyFoldingOld]) {
      for (const path of tricks) await refused(app, path);
      assert.equal(app.hits.get('/api/keys'), undefined, `${app.name}: the denied /api/keys handler ran`);
      // The cost, documented: with case-insensitive routing no non-ASCII path passes authorization.
      await refused(app, '/public/caf%C3%A9');
    }
  });

  it('case-sensitive routing keeps non-ASCII paths: they reach only their own routes', async () => {
    for (const app of [fastifyDefault, expressed]) {
      const r = await plainRequest({ port: app.port, path: '/public/caf%C3%A9' });
      assert.equal(r.status, 200, `${app.name}: ${r.status} ${r.body}`);
      // The Kelvin sign is not `k` to a case-sensitive router: no route, and never /api/keys.
      const k = await plainRequest({ port: app.port, path: '/api/%E2%84%AAeys' });
      assert.equal(k.status, 404, `${app.name}: ${k.status} ${k.body}`);
      assert.equal(app.hits.get('/api/keys'), undefined, app.name);
    }
  });
});
