/**
 * The admin token: `trellis-admin.<pin hex>.<secret>`, the secret 256 random bits in 43
 * base64url characters. The pin part lets the CLI verify the control plane with the token alone
 * (see controlplane-client/pin.ts); the control plane keeps only SHA-256 of the secret, compared
 * in constant time, so neither its store nor its memory holds the token itself.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ADMIN_TOKEN_PREFIX } from '../controlplane-client/pin.js';

const SECRET = /^[A-Za-z0-9_-]{43}$/;

/** A new admin token for the CA whose pin is `pin` (`sha256:<hex>`). */
export function createAdminToken(pin: string): { token: string; hash: Buffer } {
  const secret = randomBytes(32).toString('base64url');
  return { token: `${ADMIN_TOKEN_PREFIX}${pin.slice('sha256:'.length)}.${secret}`, hash: hashSecret(secret) };
}

export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** The SHA-256 of an admin token's secret part, or undefined when the text is not an admin token. */
export function adminTokenHash(token: string): Buffer | undefined {
  const parts = token.trim().split('.');
  if (parts.length !== 3 || `${parts[0]}.` !== ADMIN_TOKEN_PREFIX || !SECRET.test(parts[2] ?? '')) return undefined;
  return hashSecret(parts[2] as string);
}

/** Why `token` is not the admin token whose secret hashes to `hash` (for CA `pin`), or undefined when it is. */
export function adminTokenMatches(token: string, pin: string, hash: Buffer): string | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !SECRET.test(parts[2] ?? '')) return 'malformed (expected trellis-admin.<pin>.<secret>)';
  // Compare the secret before the pin, and always, so timing says nothing about which part was wrong.
  const same = timingSafeEqual(hashSecret(parts[2] as string), hash);
  const pinOk = `sha256:${parts[1] ?? ''}` === pin;
  if (!same) return 'wrong token';
  if (!pinOk) return "it pins another CA than this control plane's";
  return undefined;
}
