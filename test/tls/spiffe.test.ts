/**
 * SPIFFE IDs and the X509-SVID leaf rules (RELIABILITY B9): a good leaf passes, and each
 * broken rule is refused with TRELLIS_PEER_IDENTITY: other service, foreign trust domain, two
 * URI SANs, no URI SAN, CA:true, keyCertSign, a non-service path, a non-spiffe URI.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { ConfigInvalidError, PeerIdentityError, isTrellisError } from '../../src/core/errors.js';
import type { Authority } from '../../src/tls/authority.js';
import { checkServerIdentityFor, parseSpiffeId, spiffeIdFor, verifySvid } from '../../src/tls/spiffe.js';
import { certificateFacts } from '../../src/tls/x509-inspect.js';
import { authority, leaf, oddLeaf } from './fixtures.js';

const TD = 'example.org';
const x509 = (pem: string): X509Certificate => new X509Certificate(pem);
const refusedWith = (re: RegExp) => (err: unknown) => isTrellisError(err, 'TRELLIS_PEER_IDENTITY') && re.test((err as Error).message);

describe('SPIFFE IDs', () => {
  it('spiffeIdFor builds spiffe://<td>/svc/<service> and refuses bad names', () => {
    assert.equal(spiffeIdFor('example.org', 'checkout'), 'spiffe://example.org/svc/checkout');
    assert.throws(() => spiffeIdFor('Example.org', 'checkout'), ConfigInvalidError);
    assert.throws(() => spiffeIdFor('example.org', 'Check Out'), ConfigInvalidError);
    assert.throws(() => spiffeIdFor('example.org', 'a/b'), ConfigInvalidError);
  });

  it('parseSpiffeId reads trust domain, path and service', () => {
    assert.deepEqual(parseSpiffeId('spiffe://example.org/svc/products'), { trustDomain: 'example.org', path: '/svc/products', service: 'products' });
    assert.deepEqual(parseSpiffeId('spiffe://example.org/ns/x/sa/y'), { trustDomain: 'example.org', path: '/ns/x/sa/y', service: undefined });
  });

  it('parseSpiffeId refuses what SPIFFE-ID §2 forbids', () => {
    for (const bad of [
      'https://example.org/svc/a',
      'SPIFFE://example.org/svc/a',
      'spiffe://example.org',
      'spiffe://example.org/',
      'spiffe://Example.org/svc/a',
      'spiffe://example.org:8443/svc/a',
      'spiffe://user@example.org/svc/a',
      'spiffe://example.org/svc/a/',
      'spiffe://example.org/svc//a',
      'spiffe://example.org/svc/../a',
      'spiffe://example.org/svc/a?x=1',
      'spiffe://example.org/svc/a#f',
      'spiffe://example.org/svc/%61',
      `spiffe://example.org/${'a'.repeat(2100)}`,
    ]) {
      assert.throws(() => parseSpiffeId(bad), PeerIdentityError, bad);
    }
  });
});

describe('verifySvid', () => {
  let ca: Authority;
  let foreign: Authority;
  before(async () => {
    [ca, foreign] = await Promise.all([authority(TD), authority('other.org')]);
  });

  it('accepts a good leaf and returns its identity', async () => {
    const c = await leaf(ca, 'products');
    assert.deepEqual(verifySvid(x509(c.cert), { trustDomain: TD, service: 'products' }), { service: 'products', spiffeId: 'spiffe://example.org/svc/products' });
    assert.deepEqual(verifySvid(x509(c.cert), { trustDomain: TD }), { service: 'products', spiffeId: 'spiffe://example.org/svc/products' });
  });

  it('refuses the leaf of another service', async () => {
    const c = await leaf(ca, 'payments');
    assert.throws(() => verifySvid(x509(c.cert), { trustDomain: TD, service: 'products' }), refusedWith(/expected spiffe:\/\/example.org\/svc\/products/));
  });

  it('refuses a foreign trust domain', async () => {
    const c = await leaf(foreign, 'products');
    assert.throws(() => verifySvid(x509(c.cert), { trustDomain: TD, service: 'products' }), refusedWith(/trust domain "other.org"/));
  });

  it('refuses two URI SANs', async () => {
    const c = await oddLeaf(ca, { uris: ['spiffe://example.org/svc/products', 'spiffe://example.org/svc/admin'] });
    assert.throws(() => verifySvid(x509(c.cert), { trustDomain: TD }), refusedWith(/2 URI SANs/));
  });

  it('refuses a leaf with no URI SAN', async () => {
    const c = await oddLeaf(ca, { uris: [] });
    assert.throws(() => verifySvid(x509(c.cert), { trustDomain: TD }), refusedWith(/0 URI SANs/));
  });

  it('refuses a CA:true certificate carrying a service identity', async () => {
    // Node's X509Certificate.ca is OpenSSL's X509_check_ca, false here (no keyCertSign): the
    // check must read basicConstraints itself.
    const c = await oddLeaf(ca, { uris: ['spiffe://example.org/svc/products'], role: { kind: 'ca' }, keyUsage: 1 });
    assert.equal(x509(c.cert).ca, false);
    assert.equal(certificateFacts(x509(c.cert).raw).ca, true);
    assert.throws(() => verifySvid(x509(c.cert), { trustDomain: TD }), refusedWith(/is a CA certificate/));
    const full = await oddLeaf(ca, { uris: ['spiffe://example.org/svc/products'], role: { kind: 'ca' } });
    assert.equal(x509(full.cert).ca, true);
    assert.throws(() => verifySvid(x509(full.cert), { trustDomain: TD }), refusedWith(/is a CA certificate/));
  });

  it('refuses a CA=false leaf with keyCertSign, or without digitalSignature', async () => {
    const signing = await oddLeaf(ca, { uris: ['spiffe://example.org/svc/products'], keyUsage: 1 | 32 });
    assert.throws(() => verifySvid(x509(signing.cert), { trustDomain: TD }), refusedWith(/keyCertSign or cRLSign/));
    const encOnly = await oddLeaf(ca, { uris: ['spiffe://example.org/svc/products'], keyUsage: 4 });
    assert.throws(() => verifySvid(x509(encOnly.cert), { trustDomain: TD }), refusedWith(/lacks keyUsage digitalSignature/));
  });

  it('refuses non-service paths and non-spiffe URIs', async () => {
    const ns = await oddLeaf(ca, { uris: ['spiffe://example.org/ns/default/sa/products'] });
    assert.throws(() => verifySvid(x509(ns.cert), { trustDomain: TD }), refusedWith(/not a service identity/));
    const https = await oddLeaf(ca, { uris: ['https://example.org/svc/products'] });
    assert.throws(() => verifySvid(x509(https.cert), { trustDomain: TD }), refusedWith(/scheme must be "spiffe"/));
  });

  it('checkServerIdentityFor returns an error instead of throwing', async () => {
    const c = await leaf(ca, 'products');
    const raw = x509(c.cert).raw;
    const peer = { raw, ca: false, subject: { CN: 'products' }, serialNumber: '01' } as never;
    assert.equal(checkServerIdentityFor(TD, 'products')('products', peer), undefined);
    const err = checkServerIdentityFor(TD, 'orders')('orders', peer);
    assert.ok(err instanceof PeerIdentityError);
    assert.ok(checkServerIdentityFor(TD, 'orders')('orders', {} as never) instanceof PeerIdentityError);
  });

  it('reads certificate facts exactly (SAN list, CA flag, key usage bits)', async () => {
    const c = await oddLeaf(ca, { uris: ['spiffe://example.org/svc/a', 'spiffe://example.org/svc/b'] });
    const f = certificateFacts(x509(c.cert).raw);
    assert.deepEqual(f, { ca: false, keyUsage: 1, uris: ['spiffe://example.org/svc/a', 'spiffe://example.org/svc/b'], sanCount: 2 });
    const anchorFacts = certificateFacts(ca.anchor.der);
    assert.equal(anchorFacts.ca, true);
    assert.equal(anchorFacts.keyUsage, 32 | 64);
  });
});
