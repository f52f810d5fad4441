/**
 * The control plane's guards, over real TLS: an oversize body is refused from its declared
 * length before it is read (413), and also when it arrives chunked with no length; a client
 * over its rate gets 429 with Retry-After while the store sees nothing; unknown query
 * parameters, paths and methods are refused with stable error bodies; `/metrics` counts
 * requests by route template; the first start writes the admin token 0600 and a restart on
 * the same data directory keeps the CA, the pin and the admin token.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { connect } from 'node:http2';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkControlPlaneIdentity } from '../../src/controlplane-client/pin.js';
import { call, instanceIdentity, SERVICE_YAML, startTestPlane, type TestPlane } from './api-fixtures.js';

describe('control-plane API: limits', () => {
  let plane: TestPlane;
  before(async () => {
    plane = await startTestPlane();
  });
  after(async () => {
    await plane.close();
  });

  it('refuses a body declared over the limit with 413 before reading it', async () => {
    const revision = await plane.cp.store.revision();
    // Declares 64 MiB and sends only a few bytes: the answer comes from the header alone.
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(new URL('/v1/apply', plane.cp.url), {
        method: 'POST',
        agent: false,
        ca: plane.bundlePem,
        checkServerIdentity: checkControlPlaneIdentity('example.org'),
        headers: { authorization: `Bearer ${plane.adminToken}`, 'content-type': 'application/yaml', 'content-length': String(64 * 1024 * 1024) },
      }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() });
          req.destroy();
        });
      });
      req.on('error', reject);
      req.write('apiVersion: trellis/v1\n');
    });
    assert.equal(r.status, 413, r.body);
    assert.equal(JSON.parse(r.body).error.code, 'TRELLIS_INVALID_ARGUMENT');
    assert.equal(await plane.cp.store.revision(), revision);
  });

  it('refuses a chunked body that grows over the limit (413), and small JSON endpoints have small limits', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 'a');
    const r = await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: 'application/yaml', body: big, headers: { 'transfer-encoding': 'chunked' } });
    assert.equal(r.status, 413);
    const tokens = await call(plane, 'POST', '/v1/tokens', { token: plane.adminToken, contentType: 'application/json', body: JSON.stringify({ service: 'a', pad: 'x'.repeat(100_000) }) });
    assert.equal(tokens.status, 413);
  });

  it('refuses deeply nested JSON before parsing it', async () => {
    const deep = `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`;
    const r = await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: 'application/json', body: deep });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /nested deeper than 32 levels/);
    const fine = await call(plane, 'POST', '/v1/apply?dryRun=true', { token: plane.adminToken, contentType: 'application/json', body: JSON.stringify({ apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'x' }, spec: { protocol: 'http', endpoints: [{ address: '127.0.0.1:1', labels: { a: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' } }] } }) });
    assert.equal(fine.status, 400, fine.text);
    assert.doesNotMatch(fine.json.error.message, /nested/, 'brackets inside strings do not count');
    assert.equal(fine.json.error.issues[0].path, 'spec.endpoints[0].labels.a');
  });

  it('refuses oversize headers over HTTP/1.1 and HTTP/2 (431)', async () => {
    const big = 'x'.repeat(40_000);
    assert.equal((await call(plane, 'GET', '/v1/ca', { headers: { 'x-big': big } })).status, 431);
    const session = connect(plane.cp.url, { ca: plane.bundlePem, checkServerIdentity: checkControlPlaneIdentity('example.org') });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const s = session.request({ ':path': '/v1/ca', 'x-big': big });
        s.on('response', (h) => resolve(Number(h[':status'])));
        s.on('error', reject);
        s.resume();
        s.end();
      });
      assert.equal(status, 431);
    } finally {
      session.close();
    }
  });

  it('refuses unknown query parameters, paths and methods with stable error bodies', async () => {
    const q = await call(plane, 'POST', '/v1/apply?dryrun=true', { token: plane.adminToken, contentType: 'application/yaml', body: SERVICE_YAML });
    assert.equal(q.status, 400);
    assert.match(q.json.error.message, /did you mean "dryRun"/);
    const p = await call(plane, 'GET', '/v1/service', { token: plane.adminToken });
    assert.equal(p.status, 404);
    assert.equal(p.json.error.code, 'TRELLIS_NOT_FOUND');
    const m = await call(plane, 'PUT', '/v1/services/products', { token: plane.adminToken });
    assert.equal(m.status, 405);
    assert.match(String(m.headers['allow']), /GET/);
    const ct = await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: 'text/html', body: SERVICE_YAML });
    assert.equal(ct.status, 415);
  });

  it('routes added with route() get the same auth rules and error shape', async () => {
    plane.cp.route('GET', '/v1/example', async (req) => ({ body: { window: req.query.get('window'), caller: req.caller.kind } }), { auth: 'admin' });
    const anon = await call(plane, 'GET', '/v1/example?window=1m');
    assert.equal(anon.status, 401);
    assert.equal(anon.json.error.code, 'TRELLIS_TOKEN_INVALID');
    const ok = await call(plane, 'GET', '/v1/example?window=1m', { token: plane.adminToken });
    assert.deepEqual(ok.json, { window: '1m', caller: 'admin' });
    plane.cp.route('GET', '/v1/strict', async () => ({ body: {} }), { auth: 'none', query: ['a'] });
    assert.equal((await call(plane, 'GET', '/v1/strict?b=1')).status, 400);
    assert.throws(() => plane.cp.route('GET', '/v1/example', async () => ({ body: {} }), { auth: 'none' }), /already registered/);
  });

  it('counts requests by route template in /metrics', async () => {
    await call(plane, 'GET', '/v1/services/whatever', { token: plane.adminToken });
    const r = await call(plane, 'GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.text, /trellis_controlplane_requests_total\{route="\/v1\/services\/:name",method="GET",code="404"\} 1/);
    assert.match(r.text, /trellis_controlplane_store_duration_seconds_count\{op="get",outcome="ok"\}/);
    assert.doesNotMatch(r.text, /whatever/, 'no raw paths in labels');
  });
});

describe('control-plane API: rate limit', () => {
  it('answers 429 with Retry-After once a client is over its rate, before touching the store; an instance has its own bucket', async () => {
    const plane = await startTestPlane({ rateLimit: { requestsPerSecond: 0.01, burst: 5 } });
    try {
      const id = await instanceIdentity(plane, 'products'); // two requests from this address
      const statuses: number[] = [];
      let last;
      for (let i = 0; i < 5; i++) {
        last = await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: 'application/yaml', body: SERVICE_YAML.replace('products', `s${i}`) });
        statuses.push(last.status);
      }
      assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
      assert.equal(last?.json.error.code, 'TRELLIS_RATE_LIMITED');
      assert.ok(Number(last?.headers['retry-after']) >= 1);
      const { entries } = await plane.cp.store.list('/trellis/resources/');
      assert.equal(entries.length, 3);
      const own = await call(plane, 'GET', '/v1/ca', { cert: id.cert, key: id.key });
      assert.equal(own.status, 200, 'an instance certificate draws from its own bucket, not its address\'s');
    } finally {
      await plane.close();
    }
  });
});

describe('control-plane: data directory', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-cp-restart-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('first start writes the admin token 0600 and the CA; a restart keeps both', async () => {
    const first = await startTestPlane({}, dir);
    const pin = first.cp.caPin;
    const token = first.adminToken;
    assert.equal(first.cp.created, true);
    await first.close();
    assert.equal((await stat(join(dir, 'admin-token'))).mode & 0o777, 0o600);
    for (const f of ['issuer.key', 'anchor.key', 'token.key']) assert.equal((await stat(join(dir, 'ca', f))).mode & 0o777, 0o600, f);

    const warnings: string[] = [];
    const second = await startTestPlane({ onWarn: (m) => warnings.push(m) }, dir);
    try {
      assert.deepEqual(warnings, [], 'a fresh CA is nowhere near expiry');
      assert.equal(second.cp.caPin, pin);
      assert.equal(second.adminToken, token);
      const r = await call(second, 'POST', '/v1/apply', { token, contentType: 'application/yaml', body: SERVICE_YAML });
      assert.equal(r.status, 200, 'the old admin token still works');
    } finally {
      await second.close();
    }
  });

  it('a busy listen address fails the start with the reason, and leaves nothing running', async () => {
    const blocker = await startTestPlane({}, dir);
    try {
      // A data directory of its own: the blocker's is locked by its store (a different refusal).
      await assert.rejects(startTestPlane({ listen: `127.0.0.1:${blocker.cp.port}` }), { code: 'EADDRINUSE' });
    } finally {
      await blocker.close();
    }
  });

  it('warns at start when the CA issuer is near expiry, naming it and when', async () => {
    const warnings: string[] = [];
    const yearLater = { now: () => performance.now(), wall: () => Date.now() + 350 * 86_400_000 };
    const late = await startTestPlane({ onWarn: (m) => warnings.push(m), clock: yearLater }, dir);
    await late.close();
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0] as string, /issuer\.pem .*expires at \d{4}-\d\d-\d\dT/);
  });
});
