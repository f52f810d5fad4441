/**
 * The Fastify 5 plugin on an HTTPS Fastify server with client certificates: registered once at
 * the root it applies to encapsulated child plugins too (skip-override); `request.trellis.peer`,
 * 403 / 429 answered without Fastify sending a second reply, forged identity headers stripped,
 * the ambient deadline reaching outbound calls after body parsing, `routeOptions.url` as the
 * route label.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { meshClient } from '../../src/mesh-client.js';
import type { Mesh } from '../../src/mesh.js';
import { currentAmbient, DEADLINE_HEADER } from '../../src/core/ambient.js';
import { systemClock, systemRandom } from '../../src/core/clock.js';
import { MeshMetrics } from '../../src/observability/metrics.js';
import { MeshObservability } from '../../src/observability/mesh-observability.js';
import { localRateLimiter } from '../../src/resilience/rate-limiter.js';
import { compileAuthorization } from '../../src/server/authorization.js';
import { fastifyPlugin } from '../../src/server/fastify.js';
import type { MeshInboundPolicy, TrellisRequestInfo } from '../../src/server/inbound-security.js';
import { peerResolver } from '../../src/server/peer.js';
import { peerIdentity } from '../../src/tls/spiffe.js';
import { samples } from '../helpers/prometheus.js';
import { serviceYaml, startServer } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { makeCa, tlsRequest } from './helpers.js';
import type { Leaf, TestCa } from './helpers.js';

declare module 'fastify' {
  interface FastifyRequest {
    trellis: TrellisRequestInfo | null;
  }
}

describe('fastifyPlugin', () => {
  let ca: TestCa;
  let a: Leaf;
  let c: Leaf;
  let app: FastifyInstance;
  let port = 0;
  let backend: TestServer;
  let mesh: Mesh;
  const logs: string[] = [];
  const metrics = new MeshMetrics();
  const authorizer = compileAuthorization({
    allow: [
      { from: ['c'], methods: [], paths: ['/private*'] },
      { from: ['*'], methods: [], paths: ['/whoami', '/users/*', '/call', '/child/*', '/missing'] },
    ],
    deny: [],
  });
  let policy: MeshInboundPolicy = { limiter: undefined, fault: undefined, authorizer };

  before(async () => {
    ca = await makeCa();
    a = await ca.leaf('a');
    c = await ca.leaf('c');
    const b = await ca.leaf('b');
    backend = await startServer('backend');
    mesh = await meshClient({ service: 'b', config: serviceYaml('backend', [{ address: backend.address }], 'timeout: 10s') });
    app = Fastify({
      https: { ca: ca.cert, cert: b.cert, key: b.key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
      logger: { level: 'warn', stream: { write: (l: string) => logs.push(l) } },
    });
    await app.register(
      fastifyPlugin({
        clock: systemClock,
        random: systemRandom,
        service: 'b',
        policy: () => policy,
        peers: peerResolver({ trustDomain: 'example.org', identify: peerIdentity }),
        observability: new MeshObservability(metrics, systemClock),
      }),
    );
    app.get('/whoami', async (request) => ({ peer: request.trellis?.peer, caller: request.headers['x-trellis-caller'] ?? null }));
    app.get('/private/data', async () => ({ ok: true }));
    app.get('/users/:id', async (request) => ({ id: (request.params as { id: string }).id }));
    app.post('/call', async (request) => {
      await sleep(5);
      const ambient = currentAmbient();
      const r = await mesh.http('backend').request({ path: '/x' });
      await r.body.dump();
      return { body: request.body, sent: Number(backend.lastHeaders[DEADLINE_HEADER]), service: ambient?.service };
    });
    // An encapsulated child plugin: the root registration must still apply to it.
    await app.register(
      async (child) => {
        child.get('/peer', async (request) => ({ peer: request.trellis?.peer.service }));
      },
      { prefix: '/child' },
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
  });

  after(async () => {
    await app.close();
    await mesh.close();
    await backend.close();
  });

  const call = (leaf: Leaf, path: string, extra: { method?: string; headers?: Record<string, string>; body?: string } = {}) =>
    tlsRequest({ port, ca: ca.cert, cert: leaf.cert, key: leaf.key, path, ...extra });

  it('decorates request.trellis with the verified peer; forged headers are gone', async () => {
    const r = await call(a, '/whoami', { headers: { 'x-trellis-caller': 'c' } });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(JSON.parse(r.body as string), { peer: { service: 'a', spiffeId: 'spiffe://example.org/svc/a', verified: true }, caller: null });
  });

  it('applies to encapsulated child plugins (skip-override)', async () => {
    const r = await call(a, '/child/peer');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(JSON.parse(r.body as string), { peer: 'a' });
  });

  it('403 before the route, once, without Fastify complaining', async () => {
    const r = await call(a, '/private/data');
    assert.equal(r.status, 403);
    assert.deepEqual(JSON.parse(r.body as string), { error: 'TRELLIS_FORBIDDEN', service: 'b' });
    assert.equal((await call(c, '/private/data')).status, 200);
    for (const p of ['//private/data', '/x/../private/data', '/private/data;x']) assert.equal((await call(a, p)).status, 403, p);
    await sleep(20);
    assert.deepEqual(logs, []);
  });

  it('the deadline reaches outbound calls made after the body was parsed', async () => {
    const r = await call(a, '/call', { method: 'POST', headers: { 'content-type': 'application/json', [DEADLINE_HEADER]: '900' }, body: '{"n":1}' });
    assert.equal(r.status, 200, r.body);
    const out = JSON.parse(r.body as string) as { body: unknown; sent: number; service: string };
    assert.deepEqual(out.body, { n: 1 });
    assert.equal(out.service, 'b');
    assert.ok(out.sent > 0 && out.sent <= 900, `backend saw ${out.sent} ms left`);
  });

  it('429 from the inbound rate limit', async () => {
    policy = { ...policy, limiter: localRateLimiter({ requestsPerSecond: 0.001, burst: 1 }, systemClock) };
    try {
      assert.equal((await call(a, '/whoami')).status, 200);
      const limited = await call(a, '/whoami');
      assert.equal(limited.status, 429);
      assert.match(limited.body as string, /TRELLIS_RATE_LIMITED/);
      assert.equal(limited.headers?.['retry-after'] !== undefined, true);
    } finally {
      policy = { limiter: undefined, fault: undefined, authorizer };
    }
    await sleep(20);
    assert.deepEqual(logs, []);
  });

  it('metrics: routeOptions.url as the route label, unknown for the 404 handler', async () => {
    assert.equal((await call(a, '/users/7')).status, 200);
    assert.equal((await call(a, '/missing')).status, 404);
    const text = await metrics.registry.metrics();
    assert.equal(samples(text, 'trellis_server_requests_total', { caller: 'a', route: '/users/:id', status_code: '200' })[0]?.value, 1, text);
    assert.equal(samples(text, 'trellis_server_requests_total', { caller: 'a', route: 'unknown', status_code: '404' })[0]?.value, 1, text);
    assert.ok(samples(text, 'trellis_server_requests_total', { caller: 'a', outcome: 'forbidden' }).length > 0);
  });
});
