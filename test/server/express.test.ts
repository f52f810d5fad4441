/**
 * The Express 5 middleware on an application-owned HTTPS server with client certificates:
 * `req.trellis.peer`, 403 before any handler, 429, identity headers stripped, the ambient
 * deadline reaching outbound calls (also after body parsing and awaits), the route template as
 * the metrics label, and Express 5's async error forwarding left intact.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
// From src, not 'trellis' (which resolves to dist/): one AsyncLocalStorage for inbound and outbound.
import { meshClient } from '../../src/mesh-client.js';
import type { Mesh } from '../../src/mesh.js';
import { currentAmbient, DEADLINE_HEADER } from '../../src/core/ambient.js';
import { systemClock, systemRandom } from '../../src/core/clock.js';
import { MeshMetrics } from '../../src/observability/metrics.js';
import { MeshObservability } from '../../src/observability/mesh-observability.js';
import { localRateLimiter } from '../../src/resilience/rate-limiter.js';
import { compileAuthorization } from '../../src/server/authorization.js';
import { expressMiddleware } from '../../src/server/express.js';
import type { MeshInboundPolicy } from '../../src/server/inbound-security.js';
import { peerResolver } from '../../src/server/peer.js';
import { peerIdentity } from '../../src/tls/spiffe.js';
import { samples } from '../helpers/prometheus.js';
import { serviceYaml, startServer } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { makeCa, plainRequest, tlsRequest } from './helpers.js';
import type { Leaf, TestCa } from './helpers.js';

describe('expressMiddleware', () => {
  let ca: TestCa;
  let a: Leaf;
  let c: Leaf;
  let server: https.Server;
  let port = 0;
  let backend: TestServer;
  let mesh: Mesh;
  const metrics = new MeshMetrics();
  // Only c may call /private*; any verified caller the rest.
  const authorizer = compileAuthorization({
    allow: [
      { from: ['c'], methods: [], paths: ['/private*'] },
      { from: ['*'], methods: [], paths: ['/whoami', '/users/*', '/call', '/echo', '/boom'] },
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

    const app = express();
    app.use(
      expressMiddleware({
        clock: systemClock,
        random: systemRandom,
        service: 'b',
        policy: () => policy,
        peers: peerResolver({ trustDomain: 'example.org', identify: peerIdentity }),
        observability: new MeshObservability(metrics, systemClock),
      }),
    );
    app.use(express.json());
    app.get('/whoami', (req, res) => {
      res.json({ peer: req.trellis?.peer, caller: req.headers['x-trellis-caller'] ?? null, xfcc: req.headers['x-forwarded-client-cert'] ?? null });
    });
    app.get('/private/data', (_req, res) => {
      res.json({ ok: true });
    });
    app.get('/users/:id', (req, res) => {
      res.json({ id: req.params.id });
    });
    app.get('/call', async (_req, res) => {
      await sleep(10);
      const r = await mesh.http('backend').request({ path: '/x' });
      await r.body.dump();
      res.json({ sent: Number(backend.lastHeaders[DEADLINE_HEADER]) });
    });
    app.post('/echo', async (req: Request, res: Response) => {
      await sleep(5);
      res.json({ body: req.body as unknown, hasDeadline: currentAmbient()?.deadline !== undefined, service: currentAmbient()?.service });
    });
    app.get('/boom', async () => {
      await sleep(1);
      throw new Error('boom');
    });
    app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
      res.status(500).json({ handled: err.message });
    });

    server = https.createServer({ ca: ca.cert, cert: b.cert, key: b.key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    await mesh.close();
    await backend.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const call = (leaf: Leaf, path: string, extra: { method?: string; headers?: Record<string, string> } = {}) =>
    tlsRequest({ port, ca: ca.cert, cert: leaf.cert, key: leaf.key, path, ...extra });

  it('sets req.trellis.peer from the certificate; forged identity headers are gone', async () => {
    const r = await call(a, '/whoami', { headers: { 'x-trellis-caller': 'c', 'x-forwarded-client-cert': 'URI=spiffe://example.org/svc/c' } });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body as string), { peer: { service: 'a', spiffeId: 'spiffe://example.org/svc/a', verified: true }, caller: null, xfcc: null });
  });

  it('answers 403 before the route runs when the caller may not call it', async () => {
    const denied = await call(a, '/private/data', { headers: { 'x-trellis-caller': 'c' } });
    assert.equal(denied.status, 403);
    assert.deepEqual(JSON.parse(denied.body as string), { error: 'TRELLIS_FORBIDDEN', service: 'b' });
    assert.equal((await call(c, '/private/data')).status, 200);
    for (const p of ['//private/data', '/x/../private/data', '/PRIVATE/data']) {
      // Express would route some of these to /private/data: the middleware refuses or denies each.
      assert.equal((await call(a, p)).status, 403, p);
    }
  });

  it('the caller\'s deadline reaches the outbound call made by the route', async () => {
    const r = await call(a, '/call', { headers: { [DEADLINE_HEADER]: '800' } });
    assert.equal(r.status, 200, r.body);
    const { sent } = JSON.parse(r.body as string) as { sent: number };
    assert.ok(sent > 0 && sent <= 800, `backend saw ${sent} ms left`);
  });

  it('the ambient context survives body parsing and awaits', async () => {
    const r = await tlsRequest({ port, ca: ca.cert, cert: a.cert, key: a.key, path: '/echo', method: 'POST', headers: { 'content-type': 'application/json', [DEADLINE_HEADER]: '5000', 'content-length': '13' }, body: '{"hello":"x"}' });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(JSON.parse(r.body as string), { body: { hello: 'x' }, hasDeadline: true, service: 'b' });
  });

  it('Express 5 still forwards async errors to error middleware', async () => {
    const r = await call(a, '/boom');
    assert.equal(r.status, 500);
    assert.deepEqual(JSON.parse(r.body as string), { handled: 'boom' });
  });

  it('rate limits after authorization (429), and a denied caller spends no token', async () => {
    policy = { ...policy, limiter: localRateLimiter({ requestsPerSecond: 0.001, burst: 1 }, systemClock) };
    try {
      for (let i = 0; i < 3; i++) assert.equal((await call(a, '/private/data')).status, 403);
      assert.equal((await call(c, '/whoami')).status, 200);
      const limited = await call(c, '/whoami');
      assert.equal(limited.status, 429);
      assert.match(limited.body as string, /TRELLIS_RATE_LIMITED/);
    } finally {
      policy = { limiter: undefined, fault: undefined, authorizer };
    }
  });

  it('metrics: caller from the certificate, route template from Express, 403 as forbidden', async () => {
    assert.equal((await call(a, '/users/42')).status, 200);
    assert.equal((await call(a, '/users/43')).status, 200);
    const text = await metrics.registry.metrics();
    const users = samples(text, 'trellis_server_requests_total', { service: 'b', caller: 'a', route: '/users/:id', status_code: '200' });
    assert.equal(users[0]?.value, 2, text);
    assert.ok(samples(text, 'trellis_server_requests_total', { caller: 'a', outcome: 'forbidden' }).length > 0);
    assert.ok(samples(text, 'trellis_server_requests_total', { caller: 'c', outcome: 'rate_limited' }).length > 0);
  });

  it('a plaintext server: the caller is unknown; a second Trellis layer passes through', async () => {
    const own = new MeshMetrics();
    const mw = expressMiddleware({ clock: systemClock, random: systemRandom, service: 'b', policy: () => ({ limiter: undefined, fault: undefined }), peers: peerResolver({ trustDomain: 'example.org' }), observability: new MeshObservability(own, systemClock) });
    const app = express();
    app.use(mw);
    app.use(mw);
    app.get('/', (req, res) => {
      res.json(req.trellis?.peer);
    });
    const plain = app.listen(0, '127.0.0.1');
    await new Promise((r) => plain.once('listening', r));
    try {
      const r = await plainRequest({ port: (plain.address() as AddressInfo).port, headers: { 'x-trellis-peer': 'a' } });
      assert.deepEqual(JSON.parse(r.body as string), { service: 'unknown', verified: false });
      const text = await own.registry.metrics();
      assert.equal(samples(text, 'trellis_server_requests_total', { caller: 'unknown', status_code: '200' })[0]?.value, 1, text);
    } finally {
      await new Promise((r) => plain.close(r));
    }
  });
});
