/**
 * Trust on first contact with the control plane (docs/control-plane.md, "pins"): the CA pin a
 * token carries, and the trust bundle fetched over an unverified connection and accepted only
 * when one of its anchors hashes to that pin.
 *
 * NOTE (fleet branch): a same-signature stand-in for the file the control-plane API branch
 * writes; theirs replaces this one at merge.
 */
import { createHash, X509Certificate } from 'node:crypto';
import https from 'node:https';
import { TokenInvalidError, UpstreamError } from '../core/errors.js';

export interface TrustBundle {
  readonly bundlePem: string;
  readonly pins: readonly string[];
  readonly trustDomain: string;
}

/** `sha256:<hex>` of a certificate's DER SubjectPublicKeyInfo. */
export function pinOfCertificate(cert: X509Certificate): string {
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}

function certificatesOf(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

/**
 * The CA pin in an admin token (`trellis-admin.<hex>.<secret>`) or a bootstrap token (its
 * `cah` claim, read without verifying: the control plane verifies it).
 */
export function pinOfToken(token: string): string {
  const admin = /^trellis-admin\.([0-9a-f]{64})\.[A-Za-z0-9_-]{43}$/.exec(token);
  if (admin !== null) return `sha256:${admin[1] ?? ''}`;
  const parts = token.split('.');
  if (parts.length === 3) {
    try {
      const claims = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8')) as { cah?: unknown };
      if (typeof claims.cah === 'string' && /^sha256:[0-9a-f]{64}$/.test(claims.cah)) return claims.cah;
    } catch {
      // not a JWS: refused below
    }
  }
  throw new TokenInvalidError('the token carries no control-plane CA pin (expected an admin token trellis-admin.<pin>.<secret> or a bootstrap token with a cah claim)');
}

/** GET /v1/ca over an unverified connection; the bundle only if one anchor matches `pin`. */
export async function fetchTrustBundle(url: string, pin: string, timeoutMs = 10_000): Promise<TrustBundle> {
  const target = new URL('/v1/ca', url);
  const text = await new Promise<string>((resolve, reject) => {
    const req = https.get(target, { rejectUnauthorized: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 1 << 20) req.destroy(new Error('trust bundle larger than 1 MiB'));
        else chunks.push(c);
      });
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`GET /v1/ca answered ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  }).catch((err: unknown) => {
    throw new UpstreamError(`control plane ${url}: ${(err as Error).message}`, { cause: err });
  });
  let body: { bundlePem?: unknown; pins?: unknown; trustDomain?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
  } catch (err) {
    throw new UpstreamError(`control plane ${url}: /v1/ca is not JSON`, { cause: err });
  }
  if (typeof body.bundlePem !== 'string') throw new UpstreamError(`control plane ${url}: /v1/ca has no bundlePem`);
  const anchors = certificatesOf(body.bundlePem);
  if (!anchors.some((c) => pinOfCertificate(c) === pin)) {
    throw new UpstreamError(`control plane ${url}: no certificate of its CA bundle matches the pin ${pin} (wrong control plane, or someone in between)`);
  }
  return { bundlePem: body.bundlePem, pins: anchors.map(pinOfCertificate), trustDomain: typeof body.trustDomain === 'string' ? body.trustDomain : '' };
}
