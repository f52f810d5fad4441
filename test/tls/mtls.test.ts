/**
 * Mutual TLS over real sockets on 127.0.0.1 with issued certificates (RELIABILITY B9, B11, B3):
 * a server with requestCert + rejectUnauthorized and TLS 1.3 only; clients check the server's
 * SPIFFE identity with checkServerIdentityFor. The right identity connects; a client expecting
 * another service, certificates from a foreign CA, expired certificates, a server leaf with
 * two URI SANs and a TLS 1.2 client are all refused; a two-anchor bundle accepts leaves from
 * either anchor.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isTrellisError } from '../../src/core/errors.js';
import { mergeBundles, type Authority } from '../../src/tls/authority.js';
import { checkServerIdentityFor } from '../../src/tls/spiffe.js';
import { authority, connect, leaf, meshServer, oddLeaf, type Creds, type MeshServer } from './fixtures.js';

const TD = 'example.org';

describe('mTLS with SPIFFE identities', () => {
  let ca: Authority;
  let foreign: Authority;
  let serverCreds: Creds;
  let server: MeshServer;
  before(async () => {
    [ca, foreign] = await Promise.all([authority(TD), authority(TD)]); // same trust domain name, other keys
    serverCreds = await leaf(ca, 'products');
    server = await meshServer(serverCreds);
  });
  after(async () => {
    await server.close();
  });

  it('a client with the right identity connects and the server sees its identity', async () => {
    const client = await leaf(ca, 'checkout');
    const before = server.callers.length;
    assert.equal(await connect(server.port, { ...client, checkServerIdentity: checkServerIdentityFor(TD, 'products') }), 'hello');
    assert.deepEqual(server.callers.slice(before), [{ service: 'checkout', spiffeId: 'spiffe://example.org/svc/checkout' }]);
  });

  it('a client expecting another service refuses the server', async () => {
    const client = await leaf(ca, 'checkout');
    await assert.rejects(connect(server.port, { ...client, checkServerIdentity: checkServerIdentityFor(TD, 'payments') }), (err: unknown) => {
      assert.ok(isTrellisError(err, 'TRELLIS_PEER_IDENTITY'), String(err));
      assert.match((err as Error).message, /peer is spiffe:\/\/example.org\/svc\/products, expected spiffe:\/\/example.org\/svc\/payments/);
      return true;
    });
  });

  it('the server refuses a client certificate from a foreign CA', async () => {
    const intruder = await leaf(foreign, 'checkout');
    const before = server.callers.length;
    // The intruder trusts our anchor, so only the server's check can stop it.
    await assert.rejects(connect(server.port, { ca: ca.bundlePem, cert: intruder.cert, key: intruder.key, checkServerIdentity: checkServerIdentityFor(TD, 'products') }));
    assert.equal(server.callers.length, before);
  });

  it('a client refuses a server certificate from a foreign CA', async () => {
    const impostor = await meshServer({ ...(await leaf(foreign, 'products')), ca: ca.bundlePem });
    try {
      const client = await leaf(ca, 'checkout');
      await assert.rejects(connect(impostor.port, { ...client, checkServerIdentity: checkServerIdentityFor(TD, 'products') }), (err: NodeJS.ErrnoException) => {
        assert.match(String(err.code), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|CERT_SIGNATURE_FAILURE/);
        return true;
      });
    } finally {
      await impostor.close();
    }
  });

  it('expired certificates are refused on both sides', async () => {
    const now = Date.now();
    const expiredWindow = { notBefore: now - 7_200_000, notAfter: now - 3_600_000 };
    const oldClient = await oddLeaf(ca, { uris: ['spiffe://example.org/svc/checkout'], ...expiredWindow });
    const before = server.callers.length;
    await assert.rejects(connect(server.port, { ...oldClient, checkServerIdentity: checkServerIdentityFor(TD, 'products') }));
    assert.equal(server.callers.length, before);

    const oldServer = await meshServer(await oddLeaf(ca, { uris: ['spiffe://example.org/svc/products'], ...expiredWindow }));
    try {
      const client = await leaf(ca, 'checkout');
      await assert.rejects(connect(oldServer.port, { ...client, checkServerIdentity: checkServerIdentityFor(TD, 'products') }), (err: NodeJS.ErrnoException) => err.code === 'CERT_HAS_EXPIRED');
    } finally {
      await oldServer.close();
    }
  });

  it('a server leaf with two URI SANs is refused by the client', async () => {
    const twoSans = await meshServer(await oddLeaf(ca, { uris: ['spiffe://example.org/svc/products', 'spiffe://example.org/svc/payments'] }));
    try {
      const client = await leaf(ca, 'checkout');
      await assert.rejects(connect(twoSans.port, { ...client, checkServerIdentity: checkServerIdentityFor(TD, 'products') }), (err: unknown) => isTrellisError(err, 'TRELLIS_PEER_IDENTITY'));
    } finally {
      await twoSans.close();
    }
  });

  it('a TLS 1.2 client is refused', async () => {
    const client = await leaf(ca, 'checkout');
    await assert.rejects(connect(server.port, { ...client, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', checkServerIdentity: checkServerIdentityFor(TD, 'products') }));
  });

  it('a two-anchor bundle accepts leaves from either anchor (anchor rotation)', async () => {
    const next = await authority(TD);
    const bundle = mergeBundles(ca.bundlePem, next.bundlePem);
    const s = await meshServer({ ...(await leaf(ca, 'products')), ca: bundle });
    try {
      for (const issuer of [ca, next]) {
        const c = await leaf(issuer, 'checkout');
        assert.equal(await connect(s.port, { ...c, ca: bundle, checkServerIdentity: checkServerIdentityFor(TD, 'products') }), 'hello');
      }
      const stranger = await leaf(foreign, 'checkout');
      await assert.rejects(connect(s.port, { ...stranger, ca: bundle, checkServerIdentity: checkServerIdentityFor(TD, 'products') }));
      assert.equal(s.callers.length, 2);
    } finally {
      await s.close();
    }
  });
});
