/**
 * Bootstrap tokens (RELIABILITY B7): a token verifies for its service until it expires; every
 * other case is TRELLIS_TOKEN_INVALID without the token in the message: expired, wrong
 * audience, tampered claims, another key, `alg: none`, revoked, malformed, oversized, issued
 * in the future, or spelled in non-canonical base64url (same bytes, other text).
 */
import assert from 'node:assert/strict';
import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { ConfigInvalidError, isTrellisError } from '../../src/core/errors.js';
import { createToken, generateTokenKey, tokenKeyId, verifyToken } from '../../src/tls/tokens.js';

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

/** Signs arbitrary header and claims with `key`, to forge tokens the CA must refuse. */
function forge(key: KeyObject, claims: Record<string, unknown>, header: Record<string, unknown> = { alg: 'EdDSA', typ: 'JWT', kid: tokenKeyId(key) }): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`;
}

describe('bootstrap tokens', () => {
  let key: KeyObject;
  let otherKey: KeyObject;
  const clock = new ManualClock(0, 1_750_000_000_000);
  before(async () => {
    [key, otherKey] = await Promise.all([generateTokenKey(), generateTokenKey()]);
  });

  const refused = (token: string, re: RegExp, opts: { revoked?: Set<string> } = {}): void => {
    assert.throws(
      () => verifyToken(key, token, clock, opts),
      (err: unknown) => {
        assert.ok(isTrellisError(err, 'TRELLIS_TOKEN_INVALID'), String(err));
        assert.match((err as Error).message, re);
        if (token.length > 20) assert.ok(!(err as Error).message.includes(token.slice(-20)), 'the message must not contain the token');
        return true;
      },
    );
  };

  it('never makes a jti that starts with "-" (an argument parser would take it for an option)', () => {
    // One base64url id in 64 starts with '-': 2,000 without one is chance only once in 10^13.
    for (let i = 0; i < 2000; i++) {
      const { jti } = verifyToken(key, createToken(key, { service: 'checkout', ttlMs: 3_600_000 }, clock), clock);
      assert.match(jti, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    }
  });

  it('verifies a fresh token and returns service, jti and exp', () => {
    const t = createToken(key, { service: 'checkout', ttlMs: 3_600_000 }, clock);
    const v = verifyToken(key, t, clock);
    assert.equal(v.service, 'checkout');
    assert.match(v.jti, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(v.exp, Math.floor(clock.wall() / 1000) * 1000 + 3_600_000);
    const [h, p] = t.split('.');
    assert.deepEqual(JSON.parse(Buffer.from(h as string, 'base64url').toString()), { alg: 'EdDSA', typ: 'JWT', kid: tokenKeyId(key) });
    assert.deepEqual(Object.keys(JSON.parse(Buffer.from(p as string, 'base64url').toString())).sort(), ['aud', 'exp', 'iat', 'jti', 'sub']);
    // The public key alone verifies.
    assert.equal(verifyToken(createPublicKey(key), t, clock).service, 'checkout');
  });

  it('defaults to a one-hour TTL and refuses TTLs over 30 days', () => {
    const v = verifyToken(key, createToken(key, { service: 'a' }, clock), clock);
    assert.equal(v.exp - Math.floor(clock.wall() / 1000) * 1000, 3_600_000);
    assert.throws(() => createToken(key, { service: 'a', ttlMs: 31 * 86_400_000 }, clock), ConfigInvalidError);
    assert.throws(() => createToken(key, { service: 'Not A Service' }, clock), ConfigInvalidError);
  });

  it('refuses an expired token', () => {
    const c = new ManualClock(0, clock.wall());
    const t = createToken(key, { service: 'checkout', ttlMs: 60_000 }, c);
    c.advance(61_000);
    assert.throws(() => verifyToken(key, t, c), (err: unknown) => isTrellisError(err, 'TRELLIS_TOKEN_INVALID') && /expired at/.test((err as Error).message));
  });

  it('refuses a wrong audience, even when properly signed', () => {
    const iat = Math.floor(clock.wall() / 1000);
    refused(forge(key, { aud: 'kubernetes', sub: 'checkout', iat, exp: iat + 60, jti: 'j1' }), /wrong audience/);
    refused(forge(key, { aud: ['trellis-ca'], sub: 'checkout', iat, exp: iat + 60, jti: 'j2' }), /wrong audience/);
  });

  it('refuses tampered claims (another service) and tampered signatures', () => {
    const t = createToken(key, { service: 'checkout' }, clock);
    const [h, p, s] = t.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    refused(`${h}.${b64({ ...claims, sub: 'payments' })}.${s}`, /bad signature/);
    const flipped = Buffer.from(s, 'base64url');
    flipped[10] = (flipped[10] as number) ^ 1;
    refused(`${h}.${p}.${flipped.toString('base64url')}`, /bad signature/);
  });

  it('refuses tokens signed by another key, and alg:none', () => {
    refused(createToken(otherKey, { service: 'checkout' }, clock), /another key or with another algorithm/);
    const iat = Math.floor(clock.wall() / 1000);
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ aud: 'trellis-ca', sub: 'checkout', iat, exp: iat + 60, jti: 'x' })}.AA`;
    refused(none, /another key or with another algorithm/);
  });

  it('refuses revoked tokens', () => {
    const t = createToken(key, { service: 'checkout' }, clock);
    const { jti } = verifyToken(key, t, clock);
    refused(t, /revoked \(jti /, { revoked: new Set([jti]) });
  });

  it('refuses malformed and oversized tokens', () => {
    for (const bad of ['', 'abc', 'a.b', 'a.b.c.d', 'a.b.c', 'has space.b.c', 'x'.repeat(5000)]) {
      assert.throws(() => verifyToken(key, bad, clock), (err: unknown) => isTrellisError(err, 'TRELLIS_TOKEN_INVALID'), bad.slice(0, 20));
    }
    assert.throws(() => verifyToken(key, undefined as unknown as string, clock), (err: unknown) => isTrellisError(err, 'TRELLIS_TOKEN_INVALID'));
    const iat = Math.floor(clock.wall() / 1000);
    refused(forge(key, [1, 2] as unknown as Record<string, unknown>), /malformed claims/);
    refused(forge(key, { aud: 'trellis-ca', sub: 'checkout', iat: String(iat), exp: iat + 60, jti: 'j' }), /malformed claims \(iat\/exp\)/);
    refused(forge(key, { aud: 'trellis-ca', sub: '../admin', iat, exp: iat + 60, jti: 'j' }), /malformed claims \(sub\)/);
  });

  it('refuses non-canonical base64url in every segment, even when it decodes to the same bytes', () => {
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    /** The same bytes with the last character's lowest (spare) bit set: another spelling. */
    const spareBit = (seg: string): string => {
      const last = ALPHABET.indexOf(seg.slice(-1));
      const mutated = seg.slice(0, -1) + (ALPHABET[last ^ 1] ?? '');
      assert.ok(Buffer.from(mutated, 'base64url').equals(Buffer.from(seg, 'base64url')), 'same bytes');
      assert.notEqual(mutated, seg);
      return mutated;
    };
    const t = createToken(key, { service: 'checkout' }, clock);
    assert.equal(verifyToken(key, t, clock).service, 'checkout');
    const [h, p, sig] = t.split('.') as [string, string, string];

    // The signature (64 bytes: 86 characters, 4 spare bits) in another spelling.
    refused(`${h}.${p}.${spareBit(sig)}`, /non-canonical base64url/);
    // Padding and the standard alphabet ('+', '/') are not base64url.
    refused(`${h}.${p}.${sig}==`, /malformed/);
    let urlSafe = t;
    while (!/[-_]/.test(urlSafe.split('.')[2] ?? '')) urlSafe = createToken(key, { service: 'checkout' }, clock);
    const [uh, up, us] = urlSafe.split('.') as [string, string, string];
    const standard = us.replaceAll('-', '+').replaceAll('_', '/');
    assert.ok(Buffer.from(standard, 'base64url').equals(Buffer.from(us, 'base64url')), 'same bytes');
    refused(`${uh}.${up}.${standard}`, /malformed/);
    // A length no encoding produces (4n+1).
    assert.equal(sig.slice(0, -1).length % 4, 1);
    refused(`${h}.${p}.${sig.slice(0, -1)}`, /non-canonical base64url/);

    // Claims whose segment has spare bits, spelled non-canonically and then properly signed:
    // the signature covers the text, so only the strict decoding refuses it.
    const iat = Math.floor(clock.wall() / 1000);
    let claims = { aud: 'trellis-ca', sub: 'checkout', iat, exp: iat + 60, jti: 'j' };
    while (b64(claims).length % 4 === 0) claims = { ...claims, jti: `${claims.jti}j` };
    const header = b64({ alg: 'EdDSA', typ: 'JWT', kid: tokenKeyId(key) });
    const input = `${header}.${spareBit(b64(claims))}`;
    refused(`${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`, /non-canonical base64url/);
    // The header, likewise (it is also compared exactly).
    const hInput = `${header.length % 4 === 0 ? header : spareBit(header)}.${b64(claims)}`;
    if (header.length % 4 !== 0) refused(`${hInput}.${sign(null, Buffer.from(hInput), key).toString('base64url')}`, /non-canonical base64url/);
  });

  it('tolerates 60 s of clock skew on iat, not more', () => {
    const iat = Math.floor(clock.wall() / 1000);
    assert.equal(verifyToken(key, forge(key, { aud: 'trellis-ca', sub: 'a', iat: iat + 50, exp: iat + 600, jti: 'j' }), clock).service, 'a');
    refused(forge(key, { aud: 'trellis-ca', sub: 'a', iat: iat + 90, exp: iat + 600, jti: 'j' }), /issued in the future/);
    refused(forge(key, { aud: 'trellis-ca', sub: 'a', iat, exp: iat + 31 * 86_400, jti: 'j' }), /longer than 30 days/);
  });
});
