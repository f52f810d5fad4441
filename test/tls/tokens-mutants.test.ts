/**
 * Bootstrap token checks at their exact boundaries (STYLE.md: a rule guarding identity has a test
 * that a one-line change to it makes fail; `npm run mutate -- security` measures it).
 * Complements tokens.test.ts: every limit is tried at the edge and one step past it.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { ConfigInvalidError, isTrellisError } from '../../src/core/errors.js';
import { MAX_TOKEN_LENGTH, MAX_TOKEN_TTL_MS, TOKEN_AUDIENCE, createToken, generateTokenKey, tokenKeyId, verifyToken } from '../../src/tls/tokens.js';

const b64 = (o: unknown): string => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');

describe('bootstrap tokens (mutation-level)', () => {
  let key: KeyObject;
  const NOW = 1_750_000_000_000; // a whole second
  const clock = new ManualClock(0, NOW);
  const iat = NOW / 1000;
  before(async () => {
    key = await generateTokenKey();
  });

  const header = (k: KeyObject, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ alg: 'EdDSA', typ: 'JWT', kid: tokenKeyId(k), ...extra });
  const forge = (claims: unknown, h: Record<string, unknown> = header(key), payload?: string): string => {
    const input = `${b64(h)}.${payload ?? b64(claims)}`;
    return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`;
  };
  const claims = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ aud: TOKEN_AUDIENCE, sub: 'checkout', iat, exp: iat + 600, jti: 'j', ...over });
  const accepted = (token: string, at: ManualClock = clock): string => verifyToken(key, token, at).service;
  const refused = (token: string, re: RegExp, at: ManualClock = clock, revoked?: Set<string>): void => {
    assert.throws(
      () => verifyToken(key, token, at, revoked === undefined ? {} : { revoked }),
      (err: unknown) => isTrellisError(err, 'TRELLIS_TOKEN_INVALID') && re.test((err as Error).message),
      `expected refusal matching ${re}`,
    );
  };

  it('constants: audience, 30-day cap, 4096-character limit', () => {
    assert.equal(TOKEN_AUDIENCE, 'trellis-ca');
    assert.equal(MAX_TOKEN_TTL_MS, 30 * 86_400_000);
    assert.equal(MAX_TOKEN_LENGTH, 4096);
  });

  it('createToken: TTL from 1 s to 30 days inclusive, rounded up to whole seconds', () => {
    const life = (ttlMs: number): number => {
      const v = verifyToken(key, createToken(key, { service: 'a', ttlMs }, clock), clock);
      return v.exp - NOW;
    };
    assert.equal(life(1000), 1000);
    assert.equal(life(1500), 2000);
    assert.equal(life(MAX_TOKEN_TTL_MS), MAX_TOKEN_TTL_MS);
    for (const ttlMs of [999, 0, -1, MAX_TOKEN_TTL_MS + 1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => createToken(key, { service: 'a', ttlMs }, clock), ConfigInvalidError, String(ttlMs));
    }
  });

  it('createToken: iat is the wall clock in whole seconds, claims carry the audience and service', () => {
    const c = new ManualClock(0, NOW + 999);
    const t = createToken(key, { service: 'payments', ttlMs: 10_000 }, c);
    const body = JSON.parse(Buffer.from(t.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(body.iat, iat);
    assert.equal(body.exp, iat + 10);
    assert.equal(body.aud, 'trellis-ca');
    assert.equal(body.sub, 'payments');
  });

  it('createToken names the field it refuses, and the value, truncated', () => {
    const issue = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        assert.ok(err instanceof ConfigInvalidError);
        return err.issues;
      }
      assert.fail('expected ConfigInvalidError');
    };
    assert.deepEqual(issue(() => createToken(key, { service: 'a', ttlMs: 500 }, clock)), [
      { file: '<inline>', document: 0, path: 'ttl', message: 'token TTL must be between 1s and 30d, got 500 ms' },
    ]);
    assert.deepEqual(issue(() => createToken(key, { service: `Bad${'x'.repeat(100)}` }, clock)), [
      { file: '<inline>', document: 0, path: 'service', message: `"Bad${'x'.repeat(61)}" is not a valid service name` },
    ]);
  });

  it('createToken needs an Ed25519 private key', () => {
    const message = /^TypeError: createToken needs an Ed25519 private key$/;
    assert.throws(() => createToken(createPublicKey(key), { service: 'a' }, clock), message);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    assert.throws(() => createToken(ec, { service: 'a' }, clock), message);
  });

  it('tokenKeyId: 16 hex characters, the same for the private key and its public half', () => {
    const id = tokenKeyId(key);
    assert.match(id, /^[0-9a-f]{16}$/);
    assert.equal(tokenKeyId(createPublicKey(key)), id);
  });

  it('expiry: valid until the millisecond before exp, refused at exp', () => {
    const t = forge(claims({ exp: iat + 10 }));
    assert.equal(accepted(t, new ManualClock(0, NOW + 9_999)), 'checkout');
    refused(t, new RegExp(`expired at ${new Date(NOW + 10_000).toISOString()} \\(jti j\\)`), new ManualClock(0, NOW + 10_000));
  });

  it('issued in the future: up to 60 s of skew is accepted, not a millisecond more', () => {
    assert.equal(accepted(forge(claims({ iat: iat + 60 }))), 'checkout');
    refused(forge(claims({ iat: iat + 60 })), new RegExp(`issued in the future \\(${new Date(NOW + 60_000).toISOString()}\\)`), new ManualClock(0, NOW - 1));
  });

  it('lifetime: exactly 30 days is accepted, a second more is refused', () => {
    assert.equal(accepted(forge(claims({ exp: iat + 30 * 86_400 }))), 'checkout');
    refused(forge(claims({ exp: iat + 30 * 86_400 + 1 })), /longer than 30 days/);
  });

  it('jti: 1 to 128 characters', () => {
    assert.equal(accepted(forge(claims({ jti: 'x'.repeat(128) }))), 'checkout');
    refused(forge(claims({ jti: 'x'.repeat(129) })), /malformed claims \(jti\)/);
    refused(forge(claims({ jti: '' })), /malformed claims \(jti\)/);
    refused(forge(claims({ jti: 7 })), /malformed claims \(jti\)/);
  });

  it('audience of another length is refused as such (not a crash in the constant-time compare)', () => {
    refused(forge(claims({ aud: 'trellis-ca-x' })), /wrong audience \(jti j\)/);
    refused(forge(claims({ aud: 'trellis' })), /wrong audience/);
    refused(forge(claims({ aud: 42 })), /wrong audience/);
  });

  it('a header of another length, even signed by the right key, is refused', () => {
    refused(forge(claims(), header(key, { x: 1 })), /another key or with another algorithm/);
    refused(forge(claims(), { alg: 'EdDSA', typ: 'JWT' }), /another key or with another algorithm/);
  });

  it('sub and times must be well-typed', () => {
    refused(forge(claims({ sub: 5 })), /malformed claims \(sub\)/);
    refused(forge(claims({ iat: iat + 0.5 })), /malformed claims \(iat\/exp\)/);
    refused(forge(claims({ exp: String(iat + 600) })), /malformed claims \(iat\/exp\)/);
    refused(forge(claims({ exp: 2 ** 60 })), /malformed claims \(iat\/exp\)/);
  });

  it('claims that are not a JSON object are refused', () => {
    refused(forge(undefined, header(key), b64('null')), /bootstrap token refused: malformed claims$/);
    refused(forge(undefined, header(key), b64('"str"')), /bootstrap token refused: malformed claims$/);
    refused(forge(undefined, header(key), b64('{not json')), /bootstrap token refused: malformed claims$/);
  });

  it('revocation refuses only the listed jti', () => {
    const t = forge(claims({ jti: 'keep' }));
    assert.equal(verifyToken(key, t, clock, { revoked: new Set(['other']) }).jti, 'keep');
    refused(t, /revoked \(jti keep\)/, clock, new Set(['keep']));
  });

  it('size: 4096 characters are read, 4097 are refused unread', () => {
    const pad = (n: number): string => `${'a'.repeat(n - 4)}.b.c`;
    // At the limit the token is read (and refused for what it holds), never for its length.
    refused(pad(MAX_TOKEN_LENGTH), /^(?![\s\S]*longer than 4096)[\s\S]*malformed/);
    refused(pad(MAX_TOKEN_LENGTH + 1), /longer than 4096 characters/);
    refused('a.b=.c', /malformed \(not a compact JWS\)/);
    refused('=a.b.c', /malformed \(not a compact JWS\)/);
    refused('a.b', /malformed \(not a compact JWS\)/);
    refused('a.b.c.d', /malformed \(not a compact JWS\)/);
    refused('a.b.c.', /malformed \(not a compact JWS\)/);
    refused('', /missing/);
  });

  it('a signature that is not 64 bytes is a bad signature', () => {
    const [h, p, s] = forge(claims()).split('.') as [string, string, string];
    const short = Buffer.from(s, 'base64url').subarray(0, 63).toString('base64url');
    refused(`${h}.${p}.${short}`, /bad signature/);
  });

  it('a verified token returns service, jti and exp in milliseconds', () => {
    assert.deepEqual(verifyToken(key, forge(claims({ jti: 'id1', exp: iat + 42 })), clock), { service: 'checkout', jti: 'id1', exp: NOW + 42_000 });
  });
});
