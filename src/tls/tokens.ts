/**
 * Bootstrap tokens: what an instance shows the CA to get a certificate for one service.
 *
 * Format: a compact JWS (RFC 7515) with EdDSA/Ed25519 (RFC 8037), so standard JWT tools can
 * read it: `base64url(header).base64url(claims).base64url(signature)`, with header
 * `{"alg":"EdDSA","typ":"JWT","kid":<key id>}` and claims `aud` = `trellis-ca`, `sub` = the
 * service, `iat`, `exp` (NumericDate seconds) and `jti` (128 random bits, for revocation and
 * rate limits), plus `cah` when the token pins its CA: `sha256:<hex>` of the trust anchor's
 * SubjectPublicKeyInfo, which an instance reads (without the key) to verify the control plane
 * on first contact, as kubeadm's join tokens do.
 *
 * Why Ed25519 rather than HMAC-SHA256: a verifier needs only the public key, so a replica
 * that checks tokens cannot mint them and the signing key can stay where tokens are made; there
 * is no shared secret to compare, so no MAC comparison to get wrong; and verifying costs about
 * 50 µs, nothing next to signing a certificate. (HMAC would be ~1 µs and simpler, and would let
 * anyone holding the verification secret mint tokens for any service.)
 *
 * Every segment must be canonical base64url (RFC 7515 §2, RFC 4648 §5 without padding): only
 * the URL-safe alphabet, no '=', and the text must be exactly what encoding its bytes gives
 * (no stray bits in the last character, no length that cannot be base64). Node's decoder is
 * lenient, so without this one signed token had several accepted spellings (its signature's
 * last character alone has four spare bits): tokens and their `jti`s must have one.
 *
 * Verification order: size and shape (canonical segments) → exact header (constant-time, so no `alg: none` or
 * algorithm confusion is possible) → signature → only then the claims JSON is parsed →
 * audience (constant-time) → subject → times (iat at most 60 s ahead for clock skew; exp
 * strictly in the future) → revocation. Tokens are short-lived (default 1 h, at most 30 days:
 * Kuma's 10-year default is the counter-example) and never logged: errors name the reason and,
 * once the signature is verified, the token's `jti`, never the token.
 */
import { createHash, createPublicKey, generateKeyPair, randomBytes, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { Clock } from '../core/clock.js';
import { ConfigInvalidError, TokenInvalidError, type TrellisError } from '../core/errors.js';
import { isServiceName } from './spiffe.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** The audience every Trellis bootstrap token is bound to. */
export const TOKEN_AUDIENCE = 'trellis-ca';
/** Default token life: one hour. */
export const DEFAULT_TOKEN_TTL_MS = 3_600_000;
/** Longest token life `createToken` makes and `verifyToken` accepts: 30 days. */
export const MAX_TOKEN_TTL_MS = 30 * 86_400_000;
/** Tokens longer than this are refused unread. */
export const MAX_TOKEN_LENGTH = 4096;
/** How far in the future `iat` may be (another machine's clock). */
const ISSUED_AT_SKEW_MS = 60_000;
const SEGMENT = /^[A-Za-z0-9_-]+$/;

/** What a verified token grants. `exp` is in epoch milliseconds. */
export interface VerifiedToken {
  readonly service: string;
  readonly jti: string;
  readonly exp: number;
  /** The CA pin (`sha256:<hex>`) the token carries, when it has one. */
  readonly cah?: string | undefined;
}

/** A CA pin: `sha256:` and 64 lowercase hex digits. */
export const CA_PIN = /^sha256:[0-9a-f]{64}$/;

export interface TokenParams {
  readonly service: string;
  /** Token life; default `DEFAULT_TOKEN_TTL_MS` (1 h), between 1 s and 30 days. */
  readonly ttlMs?: number;
  /** The CA pin (`sha256:<hex>`) to put in the `cah` claim; none when absent. */
  readonly caHash?: string;
}

export interface VerifyTokenOptions {
  /** `jti`s that are no longer accepted. */
  readonly revoked?: ReadonlySet<string>;
}

/** Generates an Ed25519 token-signing key (the private key; its public half verifies). */
export async function generateTokenKey(): Promise<KeyObject> {
  return (await generateKeyPairAsync('ed25519')).privateKey;
}

function publicOf(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key;
}

/** The token key id: the first 8 bytes of the SHA-256 of the public key, hex. */
export function tokenKeyId(key: KeyObject): string {
  const spki = publicOf(key).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex').slice(0, 16);
}

function headerSegment(key: KeyObject): string {
  return Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'JWT', kid: tokenKeyId(key) })).toString('base64url');
}

function equalConstantTime(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  // Compare equal-length buffers even on a length mismatch, so timing says nothing about content.
  return timingSafeEqual(ab.length === bb.length ? ab : bb, bb) && ab.length === bb.length;
}

/**
 * A token id: 16 random bytes, base64url. Never with a leading '-': operators paste it as the
 * argument of `trellis token revoke JTI`, and an argument parser takes `-lXyz…` for options
 * (one id in 64 did; CI met one).
 */
function newTokenId(): string {
  const id = randomBytes(16).toString('base64url');
  return id.charCodeAt(0) === 45 /* '-' */ ? `_${id.slice(1)}` : id;
}

/**
 * Makes a token for `params.service`, valid for `params.ttlMs` (default 1 h).
 *
 * @example
 * const token = createToken(tokenKey, { service: 'checkout', ttlMs: 3_600_000 }, systemClock);
 * @throws ConfigInvalidError for a bad service name or a TTL outside 1 s..30 days.
 */
export function createToken(key: KeyObject, params: TokenParams, clock: Clock): string {
  if (key.asymmetricKeyType !== 'ed25519' || key.type !== 'private') throw new TypeError('createToken needs an Ed25519 private key');
  const ttl = params.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
  if (!isServiceName(params.service)) {
    throw new ConfigInvalidError([{ file: '<inline>', document: 0, path: 'service', message: `"${params.service.slice(0, 64)}" is not a valid service name` }]);
  }
  if (!Number.isFinite(ttl) || ttl < 1000 || ttl > MAX_TOKEN_TTL_MS) {
    throw new ConfigInvalidError([{ file: '<inline>', document: 0, path: 'ttl', message: `token TTL must be between 1s and 30d, got ${ttl} ms` }]);
  }
  if (params.caHash !== undefined && !CA_PIN.test(params.caHash)) {
    throw new ConfigInvalidError([{ file: '<inline>', document: 0, path: 'caHash', message: 'a CA pin is "sha256:" and 64 lowercase hex digits' }]);
  }
  const iat = Math.floor(clock.wall() / 1000);
  const claims = { aud: TOKEN_AUDIENCE, sub: params.service, iat, exp: iat + Math.ceil(ttl / 1000), jti: newTokenId(), ...(params.caHash !== undefined ? { cah: params.caHash } : {}) };
  const signingInput = `${headerSegment(key)}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${signingInput}.${sign(null, Buffer.from(signingInput), key).toString('base64url')}`;
}

/**
 * The bytes of a base64url segment (already checked against the alphabet, unpadded), or
 * undefined when the text is not the canonical encoding of its bytes: re-encoding and comparing
 * catches both stray bits in the last character and impossible lengths (4n+1).
 */
function decodeCanonical(segment: string): Buffer | undefined {
  const bytes = Buffer.from(segment, 'base64url');
  return bytes.toString('base64url') === segment ? bytes : undefined;
}

function refuse(reason: string): TrellisError {
  return new TokenInvalidError(`bootstrap token refused: ${reason}`);
}

/**
 * Verifies `token` against `key` (the Ed25519 key, private or public) at `clock.wall()`.
 *
 * @example
 * const { service, jti } = verifyToken(tokenKey, request.token, clock, { revoked });
 * @throws TokenInvalidError: malformed, signed by another key, bad signature, wrong audience,
 *   issued in the future, expired, or revoked. The message never contains the token.
 */
export function verifyToken(key: KeyObject, token: string, clock: Clock, options: VerifyTokenOptions = {}): VerifiedToken {
  if (typeof token !== 'string' || token.length === 0) throw refuse('missing');
  if (token.length > MAX_TOKEN_LENGTH) throw refuse(`longer than ${MAX_TOKEN_LENGTH} characters`);
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => SEGMENT.test(p))) throw refuse('malformed (not a compact JWS)');
  const [header, payload, signature] = parts as [string, string, string];
  const claimsBytes = decodeCanonical(payload);
  const sig = decodeCanonical(signature);
  if (decodeCanonical(header) === undefined || claimsBytes === undefined || sig === undefined) throw refuse('malformed (non-canonical base64url)');
  const pub = publicOf(key);
  if (!equalConstantTime(header, headerSegment(pub))) throw refuse('signed by another key or with another algorithm');
  if (sig.length !== 64 || !verify(null, Buffer.from(`${header}.${payload}`), pub, sig)) throw refuse('bad signature');

  let claims: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(claimsBytes.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    claims = parsed as Record<string, unknown>;
  } catch {
    throw refuse('malformed claims');
  }
  const { aud, sub, iat, exp, jti, cah } = claims;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 128) throw refuse('malformed claims (jti)');
  const id = ` (jti ${jti})`;
  if (typeof aud !== 'string' || !equalConstantTime(aud, TOKEN_AUDIENCE)) throw refuse(`wrong audience${id}`);
  if (typeof sub !== 'string' || !isServiceName(sub)) throw refuse(`malformed claims (sub)${id}`);
  if (typeof iat !== 'number' || typeof exp !== 'number' || !Number.isSafeInteger(iat) || !Number.isSafeInteger(exp)) throw refuse(`malformed claims (iat/exp)${id}`);
  const now = clock.wall();
  if (iat * 1000 > now + ISSUED_AT_SKEW_MS) throw refuse(`issued in the future (${new Date(iat * 1000).toISOString()})${id}`);
  if (exp * 1000 <= now) throw refuse(`expired at ${new Date(exp * 1000).toISOString()}${id}`);
  if ((exp - iat) * 1000 > MAX_TOKEN_TTL_MS) throw refuse(`lifetime longer than 30 days${id}`);
  if (cah !== undefined && (typeof cah !== 'string' || !CA_PIN.test(cah))) throw refuse(`malformed claims (cah)${id}`);
  if (options.revoked?.has(jti) === true) throw refuse(`revoked${id}`);
  return { service: sub, jti, exp: exp * 1000, ...(cah !== undefined ? { cah } : {}) };
}
