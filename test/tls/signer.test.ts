/**
 * The CA front door (RELIABILITY B6, B7, B8). Bad CSRs (garbage, 1 MiB, deeply nested DER, bad
 * self-signature, RSA-1024, e = 3, P-384) are refused with TRELLIS_CSR_INVALID quickly and the
 * CA keeps signing; bad tokens (expired, for another service, wrong audience, tampered,
 * revoked) are refused with TRELLIS_TOKEN_INVALID before the CSR is even parsed; a CSR that
 * asks for another identity, extra SANs, CA:true or keyCertSign gets a certificate with only
 * the token's identity and CA=false.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign as cryptoSign, X509Certificate, type KeyObject } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { ManualClock } from '../../src/core/clock.js';
import { isTrellisError } from '../../src/core/errors.js';
import type { Authority } from '../../src/tls/authority.js';
import { buildCsr, MAX_CSR_BYTES } from '../../src/tls/csr.js';
import { generateP256KeyPair } from '../../src/tls/keys.js';
import { pemEncode, splitCertificates } from '../../src/tls/pem.js';
import { signCsr, type SignerParams } from '../../src/tls/signer.js';
import { createToken, generateTokenKey } from '../../src/tls/tokens.js';
import { certificateFacts } from '../../src/tls/x509-inspect.js';
import { authority, realTimeManualClock } from './fixtures.js';
import { greedyCsr, nestedDer } from './csr-fixtures.js';

const TD = 'example.org';

describe('signCsr', () => {
  let ca: Authority;
  let tokenKey: KeyObject;
  let params: SignerParams;
  let clock: ManualClock;
  let goodCsr: string;
  before(async () => {
    clock = realTimeManualClock();
    [ca, tokenKey] = await Promise.all([authority(TD, clock), generateTokenKey()]);
    params = { issuer: ca, tokenKey, ttlMs: 3_600_000, clock };
    goodCsr = buildCsr(await generateP256KeyPair(), 'checkout');
  });

  const token = (service = 'checkout', ttlMs = 600_000): string => createToken(tokenKey, { service, ttlMs }, clock);
  const csrRefused = (csrPem: string, re: RegExp): void => {
    // CPU time, not wall time: other processes' load does not count.
    const cpu0 = process.cpuUsage();
    assert.throws(() => signCsr({ token: token(), csrPem }, params), (err: unknown) => {
      assert.ok(isTrellisError(err, 'TRELLIS_CSR_INVALID'), String(err));
      assert.match((err as Error).message, re);
      return true;
    });
    const cpu = process.cpuUsage(cpu0);
    assert.ok((cpu.user + cpu.system) / 1000 < 50, 'a refusal is cheap');
  };

  it('signs a good CSR: chain of leaf + issuer, the bundle, NotAfter', () => {
    const r = signCsr({ token: token(), csrPem: goodCsr }, params);
    const [leafPem, issuerPem] = splitCertificates(r.certificateChainPem);
    assert.equal(issuerPem, ca.issuer.pem);
    assert.equal(r.caBundlePem, ca.bundlePem);
    const leaf = new X509Certificate(leafPem as string);
    assert.equal(leaf.subjectAltName, 'URI:spiffe://example.org/svc/checkout');
    assert.equal(r.notAfter, Date.parse(leaf.validTo));
    assert.equal(r.spiffeId, 'spiffe://example.org/svc/checkout');
  });

  it('B6: refuses garbage, 1 MiB, deep DER, bad self-signature, weak and foreign keys', async () => {
    csrRefused('hello', /expected one PEM "CERTIFICATE REQUEST" block, found 0/);
    csrRefused(pemEncode('CERTIFICATE REQUEST', Buffer.alloc(1024 * 1024, 0x41)), new RegExp(`larger than ${MAX_CSR_BYTES} bytes`));
    csrRefused(pemEncode('CERTIFICATE REQUEST', nestedDer(10_000)), /larger than/);
    const deep = pemEncode('CERTIFICATE REQUEST', nestedDer(2500));
    assert.ok(deep.length < MAX_CSR_BYTES);
    csrRefused(deep, /nested deeper than 16 levels/);
    csrRefused(pemEncode('CERTIFICATE REQUEST', Buffer.from([0x30, 0x80, 0x05, 0x00, 0x00, 0x00])), /indefinite length/);
    csrRefused(pemEncode('CERTIFICATE REQUEST', Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])), /malformed PKCS#10/);
    csrRefused('-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n', /found 0|bad base64/);

    const der = Buffer.from(goodCsr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] = (der[der.length - 5] as number) ^ 0x01;
    csrRefused(pemEncode('CERTIFICATE REQUEST', der), /bad self-signature/);

    const other = await generateP256KeyPair();
    const swapped = Buffer.from(buildCsr(other, 'x').replace(/-----[^-]+-----|\s/g, ''), 'base64');
    csrRefused(`${goodCsr}${pemEncode('CERTIFICATE REQUEST', swapped)}`, /found 2/);

    csrRefused(buildCsr(generateKeyPairSync('rsa', { modulusLength: 1024 }), 'x'), /RSA key of 1024 bits is too short/);
    csrRefused(buildCsr(generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }), 'x'), /public exponent 3 is refused/);
    csrRefused(buildCsr(generateKeyPairSync('ec', { namedCurve: 'P-384' }), 'x'), /curve secp384r1 is not accepted/);

    // The CA is still up and signing.
    assert.ok(signCsr({ token: token(), csrPem: goodCsr }, params).certificateChainPem);
  });

  it('accepts RSA-2048 CSRs with e = 65537', () => {
    const r = signCsr({ token: token(), csrPem: buildCsr(generateKeyPairSync('rsa', { modulusLength: 2048 }), 'x') }, params);
    assert.ok(r.certificateChainPem.includes('BEGIN CERTIFICATE'));
  });

  it('B7: refuses bad tokens before looking at the CSR', () => {
    const tokenRefused = (t: string, re: RegExp, extra: { revoked?: Set<string>; service?: string } = {}): void => {
      // A garbage CSR shows the token is checked first: the error is about the token.
      for (const csrPem of ['garbage', goodCsr]) {
        assert.throws(
          () => signCsr({ token: t, csrPem, ...(extra.service !== undefined ? { service: extra.service } : {}) }, { ...params, ...(extra.revoked !== undefined ? { revoked: extra.revoked } : {}) }),
          (err: unknown) => isTrellisError(err, 'TRELLIS_TOKEN_INVALID') && re.test((err as Error).message),
        );
      }
    };
    const expiring = token('checkout', 60_000);
    const later = new ManualClock(0, clock.wall() + 120_000);
    assert.throws(() => signCsr({ token: expiring, csrPem: goodCsr }, { ...params, clock: later }), (err: unknown) => isTrellisError(err, 'TRELLIS_TOKEN_INVALID') && /expired/.test((err as Error).message));

    tokenRefused(token('payments'), /for service "payments", not "checkout"/, { service: 'checkout' });
    const iat = Math.floor(clock.wall() / 1000);
    const [h] = token().split('.') as [string];
    const claims = Buffer.from(JSON.stringify({ aud: 'other', sub: 'checkout', iat, exp: iat + 60, jti: 'j' })).toString('base64url');
    const input = `${h}.${claims}`;
    tokenRefused(`${input}.${cryptoSign(null, Buffer.from(input), tokenKey).toString('base64url')}`, /wrong audience/);
    const [th, , ts] = token().split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ aud: 'trellis-ca', sub: 'admin', iat, exp: iat + 600, jti: 'j' })).toString('base64url');
    tokenRefused(`${th}.${forged}.${ts}`, /bad signature/);
    const revokedToken = token();
    const jti = JSON.parse(Buffer.from(revokedToken.split('.')[1] as string, 'base64url').toString()).jti as string;
    tokenRefused(revokedToken, /revoked/, { revoked: new Set([jti]) });
    tokenRefused('', /missing/);
  });

  it('B8: a CSR asking for another identity, SANs, CA:true or keyCertSign gets only the token identity, CA=false', async () => {
    const r = signCsr({ token: token('checkout'), csrPem: greedyCsr(await generateP256KeyPair()) }, params);
    const leaf = new X509Certificate(splitCertificates(r.certificateChainPem)[0] as string);
    assert.equal(leaf.subjectAltName, 'URI:spiffe://example.org/svc/checkout');
    assert.equal(leaf.ca, false);
    assert.equal(leaf.subject, 'CN=checkout');
    const facts = certificateFacts(leaf.raw);
    assert.deepEqual(facts, { ca: false, keyUsage: KeyUsageFlags.digitalSignature, uris: ['spiffe://example.org/svc/checkout'], sanCount: 1 });
  });
});
