/**
 * Trust on first contact (docs/control-plane.md, "Trust on first contact"): the CA pin is
 * `sha256:<hex>` of a trust anchor's DER SubjectPublicKeyInfo (kubeadm's
 * `--discovery-token-ca-cert-hash`); a bootstrap token carries it as its `cah` claim, readable
 * without the token key. `fetchTrustBundle` reads GET /v1/ca over TLS it cannot yet verify,
 * keeps the bundle only when one anchor has the pin, then asks again over TLS verified against
 * that bundle, so the bundle is known to belong to the server that answered.
 *
 * (The control-plane server's helper owns this file; this copy has the same signatures.)
 */
import { createHash, X509Certificate } from 'node:crypto';
import https from 'node:https';
import { TokenInvalidError } from '../core/errors.js';
import { pemDecodeAll } from '../tls/pem.js';
import { controlPlaneServerIdentity } from './server-identity.js';

const PIN = /^sha256:[0-9a-f]{64}$/;
const MAX_BODY_BYTES = 256 * 1024;

/** `sha256:<hex>` of the anchor's DER SubjectPublicKeyInfo; `anchor` is a DER certificate or PEM text. */
export function caPin(anchor: Buffer | string): string {
  const cert = new X509Certificate(anchor);
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}

/**
 * The CA pin a bootstrap token carries (its `cah` claim), read without verifying the token.
 * @throws TokenInvalidError when the token is not a JWS or has no well-formed `cah`.
 */
export function pinOfToken(token: string): string {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) throw new TokenInvalidError('bootstrap token refused: malformed (not a compact JWS)');
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8'));
  } catch {
    throw new TokenInvalidError('bootstrap token refused: malformed claims');
  }
  const cah = typeof claims === 'object' && claims !== null ? (claims as { cah?: unknown }).cah : undefined;
  if (typeof cah !== 'string' || !PIN.test(cah)) throw new TokenInvalidError('bootstrap token refused: it carries no CA pin (claim "cah" = sha256:<64 hex>); make it with `trellis token create`');
  return cah;
}

export interface FetchTrustBundleOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
}

interface CaResponse {
  bundlePem: string;
  trustDomain: string;
  pins: string[];
}

function getCa(url: string, tls: https.RequestOptions, timeoutMs: number): Promise<CaResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL('/v1/ca', url), { method: 'GET', timeout: timeoutMs, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) req.destroy(new Error(`GET ${url}/v1/ca: answer larger than ${MAX_BODY_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET ${url}/v1/ca answered ${res.statusCode}`));
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Partial<CaResponse>;
          if (typeof body.bundlePem !== 'string' || typeof body.trustDomain !== 'string') throw new Error('no bundlePem/trustDomain');
          resolve({ bundlePem: body.bundlePem, trustDomain: body.trustDomain, pins: Array.isArray(body.pins) ? body.pins.filter((p): p is string => typeof p === 'string') : [] });
        } catch (err) {
          reject(new Error(`GET ${url}/v1/ca: unreadable answer (${(err as Error).message})`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}/v1/ca: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Fetches the control plane's trust bundle and checks it against `pin`.
 *
 * @example
 * const { bundlePem, trustDomain } = await fetchTrustBundle('https://127.0.0.1:7400', pinOfToken(token));
 * @throws Error when no anchor of the bundle has the pin (naming both), or the server does not
 *   present a certificate of that bundle.
 */
export async function fetchTrustBundle(url: string, pin: string, opts: FetchTrustBundleOptions = {}): Promise<{ bundlePem: string; trustDomain: string; pins: string[] }> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const first = await getCa(url, { rejectUnauthorized: false }, timeoutMs);
  const pins = pemDecodeAll(first.bundlePem, 'CERTIFICATE').map((b) => caPin(b.der));
  if (!pins.includes(pin)) throw new Error(`the control plane at ${url} is not the one the token names: its CA pins are ${pins.join(', ') || 'none'}, the token's is ${pin}`);
  // Verified now: the answering server must hold a certificate of the pinned bundle.
  const verified = await getCa(url, { ca: first.bundlePem, checkServerIdentity: controlPlaneServerIdentity(first.trustDomain) }, timeoutMs);
  if (verified.bundlePem !== first.bundlePem) throw new Error(`the control plane at ${url} answered two different trust bundles`);
  return { bundlePem: first.bundlePem, trustDomain: first.trustDomain, pins };
}
