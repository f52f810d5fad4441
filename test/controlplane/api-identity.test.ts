/**
 * Identity over the control-plane API, real TLS on 127.0.0.1: the trust bundle and its pin,
 * bootstrap tokens carrying the pin, certificates for exactly the token's service, renewal
 * authenticated by the current certificate (its own service only), the instance stream's
 * mTLS gate, and trust on first contact (`fetchTrustBundle`): right pin accepted, wrong pin
 * refused naming both, and a certificate from the same CA that is not the control plane's
 * refused.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { caPin, fetchTrustBundle, pinOfToken } from '../../src/controlplane-client/pin.js';
import { ManualClock } from '../../src/core/clock.js';
import { KEYS } from '../../src/controlplane/store/store.js';
import { certificateFacts } from '../../src/tls/x509-inspect.js';
import { createToken, generateTokenKey, verifyToken } from '../../src/tls/tokens.js';
import { bootstrapToken, call, callHttp2, instanceIdentity, keyAndCsr, MESH_YAML, startTestPlane, type TestPlane } from './api-fixtures.js';

describe('control-plane API: identity', () => {
  let plane: TestPlane;
  before(async () => {
    plane = await startTestPlane();
  });
  after(async () => {
    await plane.close();
  });

  it('GET /v1/ca answers the bundle, its pins and the trust domain, to anyone', async () => {
    const r = await call(plane, 'GET', '/v1/ca');
    assert.equal(r.status, 200);
    assert.equal(r.json.trustDomain, 'example.org');
    assert.equal(r.json.bundlePem, plane.bundlePem);
    assert.deepEqual(r.json.pins, [caPin(plane.bundlePem)]);
    assert.equal(plane.cp.caPin, r.json.pins[0]);
    assert.equal(pinOfToken(plane.adminToken), plane.cp.caPin, 'the admin token pins the CA');
  });

  it('bootstrap tokens carry the CA pin and yield a certificate for their service only', async () => {
    const token = await bootstrapToken(plane, 'checkout');
    assert.equal(pinOfToken(token), plane.cp.caPin);
    const { keyPem, csrPem } = await keyAndCsr();
    void keyPem;
    const other = await call(plane, 'POST', '/v1/certificates', { token, contentType: 'application/json', body: JSON.stringify({ service: 'payments', csrPem }) });
    assert.equal(other.status, 401, other.text);
    assert.equal(other.json.error.code, 'TRELLIS_TOKEN_INVALID');
    assert.match(other.json.error.message, /checkout/);
    const own = await call(plane, 'POST', '/v1/certificates', { token, contentType: 'application/json', body: JSON.stringify({ service: 'checkout', csrPem }) });
    assert.equal(own.status, 200, own.text);
    assert.equal(own.json.spiffeId, 'spiffe://example.org/svc/checkout');
    const leaf = new X509Certificate(own.json.certificateChainPem);
    assert.deepEqual(certificateFacts(leaf.raw).uris, ['spiffe://example.org/svc/checkout']);
    assert.equal(own.json.caBundlePem, plane.bundlePem);
  });

  it('refuses a certificate without credentials, with the admin token, or with a tampered token, before reading the CSR', async () => {
    const body = JSON.stringify({ service: 'checkout', csrPem: 'not a csr' });
    const none = await call(plane, 'POST', '/v1/certificates', { contentType: 'application/json', body });
    assert.equal(none.status, 401);
    const admin = await call(plane, 'POST', '/v1/certificates', { token: plane.adminToken, contentType: 'application/json', body });
    assert.equal(admin.status, 401);
    const token = await bootstrapToken(plane, 'checkout');
    const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BA' : 'AA'}`;
    const bad = await call(plane, 'POST', '/v1/certificates', { token: tampered, contentType: 'application/json', body });
    assert.equal(bad.status, 401);
    const garbage = await call(plane, 'POST', '/v1/certificates', { token, contentType: 'application/json', body });
    assert.equal(garbage.status, 400, 'a good token gets its CSR read, and a bad CSR is 400');
    assert.equal(garbage.json.error.code, 'TRELLIS_CSR_INVALID');
  });

  it('renews with the current certificate, for its own service only, for the Mesh certificateTTL', async () => {
    assert.equal((await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: 'application/yaml', body: MESH_YAML })).status, 200);
    const id = await instanceIdentity(plane, 'products');
    const { csrPem } = await keyAndCsr();
    const renewed = await call(plane, 'POST', '/v1/certificates', { cert: id.cert, key: id.key, contentType: 'application/json', body: JSON.stringify({ service: 'products', csrPem }) });
    assert.equal(renewed.status, 200, renewed.text);
    assert.equal(renewed.json.spiffeId, 'spiffe://example.org/svc/products');
    const life = renewed.json.notAfter - Date.now();
    assert.ok(life > 1.5 * 3_600_000 && life <= 2 * 3_600_000 + 60_000, `certificateTTL 2h honoured (${life} ms)`);
    const other = await call(plane, 'POST', '/v1/certificates', { cert: id.cert, key: id.key, contentType: 'application/json', body: JSON.stringify({ service: 'payments', csrPem }) });
    assert.equal(other.status, 403, other.text);
    assert.equal(other.json.error.code, 'TRELLIS_FORBIDDEN');
  });

  it('a certificate from another CA is no identity', async () => {
    const stranger = await startTestPlane();
    try {
      const id = await instanceIdentity(stranger, 'products');
      const { csrPem } = await keyAndCsr();
      const r = await call(plane, 'POST', '/v1/certificates', { cert: id.cert, key: id.key, contentType: 'application/json', body: JSON.stringify({ service: 'products', csrPem }) });
      assert.equal(r.status, 401, r.text);
      const s = await callHttp2(plane, '/v1/stream', { cert: id.cert, key: id.key });
      assert.equal(s.status, 401);
    } finally {
      await stranger.close();
    }
  });

  it('the instance stream needs HTTP/2 and an instance certificate', async () => {
    const none = await callHttp2(plane, '/v1/stream');
    assert.equal(none.status, 401);
    assert.equal(JSON.parse(none.text).error.code, 'TRELLIS_PEER_IDENTITY');
    const id = await instanceIdentity(plane, 'products');
    const admitted = await callHttp2(plane, '/v1/stream', { cert: id.cert, key: id.key });
    assert.notEqual(admitted.status, 401);
    assert.notEqual(admitted.status, 403);
    const http1 = await call(plane, 'POST', '/v1/stream', { cert: id.cert, key: id.key });
    assert.equal(http1.status, 505);
  });

  it('a revoked token gets no more certificates', async () => {
    const token = await bootstrapToken(plane, 'checkout');
    const jti = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()).jti as string;
    const { csrPem } = await keyAndCsr();
    const body = JSON.stringify({ service: 'checkout', csrPem });
    assert.equal((await call(plane, 'POST', '/v1/certificates', { token, contentType: 'application/json', body })).status, 200);
    const id = await instanceIdentity(plane, 'checkout');
    assert.equal((await call(plane, 'DELETE', `/v1/tokens/${jti}`, { cert: id.cert, key: id.key })).status, 403, 'instances cannot revoke');
    const revoke = await call(plane, 'DELETE', `/v1/tokens/${jti}`, { token: plane.adminToken });
    assert.equal(revoke.status, 200, revoke.text);
    assert.equal(revoke.json.revoked, true);
    const after = await call(plane, 'POST', '/v1/certificates', { token, contentType: 'application/json', body });
    assert.equal(after.status, 401);
    assert.match(after.json.error.message, /revoked/);
    assert.equal((await call(plane, 'DELETE', '/v1/tokens/nosuchjti', { token: plane.adminToken })).status, 404);
  });

  it('tokens: unknown fields and bad TTLs are refused; the jti is recorded, never the token', async () => {
    const extra = await call(plane, 'POST', '/v1/tokens', { token: plane.adminToken, contentType: 'application/json', body: JSON.stringify({ service: 'checkout', ttl: '1h', admin: true }) });
    assert.equal(extra.status, 400, extra.text);
    assert.match(extra.json.error.message, /admin/);
    const long = await call(plane, 'POST', '/v1/tokens', { token: plane.adminToken, contentType: 'application/json', body: JSON.stringify({ service: 'checkout', ttl: '800h' }) });
    assert.equal(long.status, 400);
    const ok = await call(plane, 'POST', '/v1/tokens', { token: plane.adminToken, contentType: 'application/json', body: JSON.stringify({ service: 'checkout', ttl: '2h' }) });
    assert.equal(ok.status, 201);
    const stored = await plane.cp.store.get(`/trellis/tokens/${ok.json.jti}`);
    assert.deepEqual(stored?.value, { jti: ok.json.jti, service: 'checkout', exp: ok.json.expiresAt });
    assert.ok(!JSON.stringify(stored?.value).includes(ok.json.token));
  });
});

describe('trust on first contact (pin.ts)', () => {
  let plane: TestPlane;
  before(async () => {
    plane = await startTestPlane();
  });
  after(async () => {
    await plane.close();
  });

  it('caPin reads PEM and DER alike; pinOfToken reads both token kinds and refuses a token without a pin', async () => {
    const pem = await readFile(join(plane.dir, 'ca', 'ca.pem'), 'utf8');
    const der = new X509Certificate(pem).raw;
    assert.equal(caPin(pem), caPin(der));
    assert.equal(caPin(Buffer.from(pem)), caPin(der));
    assert.match(caPin(der), /^sha256:[0-9a-f]{64}$/);
    const key = await generateTokenKey();
    const clock = new ManualClock(0, Date.now());
    const pinned = createToken(key, { service: 'a', caHash: caPin(der) }, clock);
    assert.equal(pinOfToken(pinned), caPin(der));
    assert.equal(verifyToken(key, pinned, clock).cah, caPin(der));
    assert.throws(() => pinOfToken(createToken(key, { service: 'a' }, clock)), { code: 'TRELLIS_TOKEN_INVALID' });
    assert.throws(() => pinOfToken('trellis-admin.xyz.abc'), { code: 'TRELLIS_TOKEN_INVALID' });
    assert.throws(() => pinOfToken('nonsense'), { code: 'TRELLIS_TOKEN_INVALID' });
  });

  it('fetchTrustBundle accepts the pinned control plane and refuses another, naming both pins', async () => {
    const trust = await fetchTrustBundle(plane.cp.url, plane.cp.caPin);
    assert.equal(trust.trustDomain, 'example.org');
    assert.equal(trust.bundlePem, plane.bundlePem);
    const stranger = await startTestPlane();
    try {
      await assert.rejects(fetchTrustBundle(stranger.cp.url, plane.cp.caPin), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'TRELLIS_PEER_IDENTITY');
        assert.ok(err.message.includes(plane.cp.caPin) && err.message.includes(stranger.cp.caPin), err.message);
        return true;
      });
    } finally {
      await stranger.close();
    }
  });

  it("refuses a server that holds a certificate of the pinned CA but is not the control plane", async () => {
    const id = await instanceIdentity(plane, 'products');
    const impostor = createServer({ cert: id.cert, key: id.key }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ bundlePem: plane.bundlePem, pins: [plane.cp.caPin], trustDomain: 'example.org' }));
    });
    await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', r));
    try {
      const port = (impostor.address() as AddressInfo).port;
      await assert.rejects(fetchTrustBundle(`https://127.0.0.1:${port}`, plane.cp.caPin), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'TRELLIS_PEER_IDENTITY');
        assert.match(err.message, /spiffe:\/\/example\.org\/controlplane/);
        return true;
      });
    } finally {
      impostor.closeAllConnections();
      await new Promise<void>((r) => impostor.close(() => r()));
    }
  });
});

describe('control-plane API: expired token records are swept', () => {
  it('a replica starting drops the records of expired tokens and keeps the live ones; an expired token is refused either way', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trellis-cp-sweep-'));
    try {
      let plane = await startTestPlane({}, dir);
      const short = await bootstrapToken(plane, 'checkout', '1s');
      const long = await bootstrapToken(plane, 'checkout', '1h');
      const jtiOf = (t: string): string => (JSON.parse(Buffer.from(t.split('.')[1] ?? '', 'base64url').toString()) as { jti: string }).jti;
      const keys = async (): Promise<string[]> => (await plane.cp.store.list(KEYS.tokens)).entries.map((e) => e.key).sort();
      assert.deepEqual(await keys(), [KEYS.token(jtiOf(short)), KEYS.token(jtiOf(long))].sort());
      // Past the short token's exp (epoch ms in the record, second resolution in the token).
      const exp = ((await plane.cp.store.get<{ exp: number }>(KEYS.token(jtiOf(short))))?.value.exp ?? 0) + 1;
      while (Date.now() <= exp) await new Promise((r) => setTimeout(r, Math.max(10, exp - Date.now())));
      await plane.close();
      plane = await startTestPlane({}, dir);
      try {
        // The sweep runs at start; wait for it by what the store holds.
        for (let i = 0; i < 200 && (await keys()).length !== 1; i++) await new Promise((r) => setTimeout(r, 25));
        assert.deepEqual(await keys(), [KEYS.token(jtiOf(long))]);
        const { csrPem } = await keyAndCsr();
        const refused = await call(plane, 'POST', '/v1/certificates', { token: short, contentType: 'application/json', body: JSON.stringify({ service: 'checkout', csrPem }) });
        assert.equal(refused.status, 401, refused.text);
        const ok = await call(plane, 'POST', '/v1/certificates', { token: long, contentType: 'application/json', body: JSON.stringify({ service: 'checkout', csrPem }) });
        assert.equal(ok.status, 200, ok.text);
      } finally {
        await plane.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
