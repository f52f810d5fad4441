/**
 * Strict mTLS on a real listener (127.0.0.1): only clients with a valid SVID of our trust domain,
 * signed by our CA, speaking TLS 1.3, get to HTTP (matrix rows B9, B11); authorization runs on
 * the verified caller, and forged identity headers change nothing (B10).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import tls from 'node:tls';
import { NoIdentityError } from '../../src/core/errors.js';
import { createMeshListener } from '../../src/server/tls-listener.js';
import { systemClock } from '../../src/core/clock.js';
import { samples } from '../helpers/prometheus.js';
import { makeCa, materialFor, plainRequest, startStack, tlsRequest, TestIdentity } from './helpers.js';
import type { Echo, Leaf, Stack, TestCa } from './helpers.js';

const DAY = 86_400_000;

describe('strict mTLS listener', () => {
  let ca: TestCa;
  let foreignCa: TestCa;
  let a: Leaf;
  let c: Leaf;
  let stack: Stack;
  let identity: TestIdentity;

  before(async () => {
    ca = await makeCa();
    foreignCa = await makeCa('Someone Else CA');
    a = await ca.leaf('a');
    c = await ca.leaf('c');
    identity = new TestIdentity(await materialFor(ca, 'b'));
    // Only c may call /private*; everyone verified may call /open.
    stack = await startStack({
      mode: 'strict',
      identity,
      authorization: { allow: [{ from: ['c'], methods: [], paths: ['/private*'] }, { from: ['*'], methods: ['GET'], paths: ['/open'] }], deny: [] },
    });
  });
  after(() => stack.close());

  it('serves a client with a valid SVID and tells the handler who it is', async () => {
    const r = await tlsRequest({ port: stack.port, ca: ca.cert, cert: a.cert, key: a.key, path: '/open' });
    assert.equal(r.status, 200, String(r.error));
    const echo = JSON.parse(r.body as string) as Echo;
    assert.deepEqual(echo.peer, { service: 'a', spiffeId: 'spiffe://example.org/svc/a', verified: true });
  });

  it('refuses at the handshake: no certificate, a foreign CA, an expired certificate, TLS 1.2', async () => {
    const before = stack.hits;
    const expired = await ca.leaf('a', 'example.org', { notBefore: new Date(Date.now() - 2 * DAY), notAfter: new Date(Date.now() - DAY) });
    const foreign = await foreignCa.leaf('a');
    const attempts = {
      'no certificate': await tlsRequest({ port: stack.port, ca: ca.cert, path: '/open' }),
      'foreign CA': await tlsRequest({ port: stack.port, ca: ca.cert, cert: foreign.cert, key: foreign.key, path: '/open' }),
      expired: await tlsRequest({ port: stack.port, ca: ca.cert, cert: expired.cert, key: expired.key, path: '/open' }),
      'TLS 1.2': await tlsRequest({ port: stack.port, ca: ca.cert, cert: a.cert, key: a.key, path: '/open', maxVersion: 'TLSv1.2' }),
    };
    for (const [what, r] of Object.entries(attempts)) {
      assert.equal(r.status, undefined, `${what} got an HTTP answer`);
      assert.ok(r.error !== undefined, what);
    }
    assert.match(`${attempts['TLS 1.2'].error?.code} ${attempts['TLS 1.2'].error?.message}`, /protocol version|PROTOCOL_VERSION|unsupported protocol/i);
    assert.match(String(attempts['no certificate'].error?.code), /CERTIFICATE_REQUIRED/);
    assert.equal(stack.hits, before, 'no request reached the handler');
  });

  it('answers plaintext HTTP with a plaintext 400 saying mTLS is required; the handler sees nothing', async () => {
    const before = stack.hits;
    const r = await plainRequest({ port: stack.port, path: '/open' });
    assert.equal(r.status, 400, String(r.error));
    assert.match(r.body ?? '', /requires mTLS/);
    const post = await plainRequest({ port: stack.port, path: '/private', method: 'POST', body: 'x'.repeat(100_000) });
    assert.equal(post.status, 400, `a request with a body reads the answer, not a reset: ${String(post.error)}`);
    assert.equal(stack.hits, before, 'no request reached the handler');
  });

  it('renegotiation is impossible (TLS 1.3 only, matrix row B11)', async () => {
    const socket = tls.connect({ host: '127.0.0.1', port: stack.port, ca: ca.cert, cert: a.cert, key: a.key, checkServerIdentity: () => undefined });
    await once(socket, 'secureConnect');
    assert.equal(socket.getProtocol(), 'TLSv1.3');
    const err = await new Promise<Error | null>((resolve) => {
      const started = socket.renegotiate({ rejectUnauthorized: true }, (e) => resolve(e));
      if (!started) resolve(new Error('renegotiate() refused to start'));
    });
    assert.ok(err !== null, 'renegotiation must fail');
    socket.destroy();
  });

  it('disconnects a peer whose certificate chains to our CA but is not an SVID of our trust domain', async () => {
    const before = stack.hits;
    const leaves = {
      'CA:true leaf': await ca.leaf('a', 'example.org', { ca: true }),
      'two URI SANs': await ca.leaf('a', 'example.org', { uris: ['spiffe://example.org/svc/a', 'spiffe://example.org/svc/c'] }),
      'foreign trust domain': await ca.leaf('c', 'other.org'),
      'not a service path': await ca.leaf('c', 'example.org', { uris: ['spiffe://example.org/ns/c'] }),
      'no URI SAN': await ca.leaf('c', 'example.org', { uris: [] }),
    };
    for (const [what, leaf] of Object.entries(leaves)) {
      const r = await tlsRequest({ port: stack.port, ca: ca.cert, cert: leaf.cert, key: leaf.key, path: '/private' });
      assert.equal(r.status, undefined, `${what} got an HTTP answer`);
      assert.ok(r.error !== undefined, what);
    }
    assert.equal(stack.hits, before);
    // Warned, once per minute (a refused client must not flood the log).
    assert.equal(stack.warnings.length, 1, stack.warnings.join('\n'));
    assert.match(stack.warnings[0] as string, /TRELLIS_PEER_IDENTITY/);
    // It names the caller and the reason (issue 13 item 10b: it said "from ?").
    assert.match(stack.warnings[0] as string, /from caller unknown at 127\.0\.0\.1:\d+:/);
    assert.match(stack.warnings[0] as string, /CA certificate, not a leaf SVID/);
    assert.doesNotMatch(stack.warnings[0] as string, /\?/);
  });

  it('a caller with service a\'s certificate is refused where only c may call: 403, no rule in the body', async () => {
    const r = await tlsRequest({ port: stack.port, ca: ca.cert, cert: a.cert, key: a.key, path: '/private/orders' });
    assert.equal(r.status, 403);
    assert.deepEqual(JSON.parse(r.body as string), { error: 'TRELLIS_FORBIDDEN', service: 'b' });
    const ok = await tlsRequest({ port: stack.port, ca: ca.cert, cert: c.cert, key: c.key, path: '/private/orders' });
    assert.equal(ok.status, 200);
  });

  it('forged x-forwarded-client-cert and x-trellis-* identity headers change nothing', async () => {
    const forged = {
      'x-forwarded-client-cert': 'By=spiffe://example.org/svc/b;URI=spiffe://example.org/svc/c',
      'x-trellis-caller': 'c',
      'x-trellis-peer': 'c',
      'x-trellis-spiffe': 'spiffe://example.org/svc/c',
      'x-trellis-identity': 'c',
    };
    const denied = await tlsRequest({ port: stack.port, ca: ca.cert, cert: a.cert, key: a.key, path: '/private', headers: forged });
    assert.equal(denied.status, 403);
    const r = await tlsRequest({ port: stack.port, ca: ca.cert, cert: a.cert, key: a.key, path: '/open', headers: { ...forged, 'x-trellis-timeout-ms': '500' } });
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body as string) as Echo;
    assert.equal(echo.peer.service, 'a');
    for (const h of Object.keys(forged)) {
      assert.equal(echo.headers[h], undefined, h);
      assert.ok(!echo.raw.some((x) => x.toLowerCase() === h), h);
    }
    assert.equal(echo.headers['x-trellis-timeout-ms'], '500');
  });

  it('B10 paths are refused the same way over the wire', async () => {
    for (const path of ['//private', '/%2e%2e/private', '/open/../private', '/open;x', '/open%2Fx', '/OPEN/']) {
      const r = await tlsRequest({ port: stack.port, ca: ca.cert, cert: a.cert, key: a.key, path });
      assert.equal(r.status, 403, path);
      assert.deepEqual(JSON.parse(r.body as string), { error: 'TRELLIS_FORBIDDEN', service: 'b' }, path);
    }
  });

  it('server metrics carry the verified caller and the forbidden outcome', async () => {
    const text = await stack.metrics.registry.metrics();
    const forbidden = samples(text, 'trellis_server_requests_total', { service: 'b', caller: 'a', outcome: 'forbidden', status_code: '403' });
    assert.ok(forbidden.length > 0 && (forbidden[0]?.value ?? 0) >= 2, text);
    assert.ok(samples(text, 'trellis_server_requests_total', { caller: 'c', outcome: 'success' }).length > 0);
  });

  it('without workload material it fails closed (TRELLIS_NO_IDENTITY), never plaintext', () => {
    const empty = new TestIdentity();
    for (const mode of ['strict', 'permissive'] as const) {
      assert.throws(
        () => createMeshListener(() => undefined, { mode, identity: empty, trustDomain: 'example.org', clock: systemClock, onWarn: () => undefined }),
        (err: unknown) => err instanceof NoIdentityError,
      );
      assert.throws(() => createMeshListener(() => undefined, { mode, trustDomain: 'example.org', clock: systemClock, onWarn: () => undefined }), NoIdentityError);
    }
  });

  it('removes its rotation listener on close', async () => {
    const id = new TestIdentity(await materialFor(ca, 'b'));
    const s = await startStack({ mode: 'strict', identity: id });
    assert.equal(id.listenerCount(), 1);
    await s.close();
    assert.equal(id.listenerCount(), 0);
  });
});
