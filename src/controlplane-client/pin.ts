/**
 * Trust on first contact: how an instance or the CLI verifies a control plane knowing nothing
 * but a token. Both token kinds carry a CA pin, `sha256:<hex>` of the DER SubjectPublicKeyInfo
 * of a trust anchor (kubeadm's `--discovery-token-ca-cert-hash`): a bootstrap token in its `cah`
 * claim, the admin token as its middle part.
 *
 * `fetchTrustBundle` reads `GET /v1/ca` over a TLS connection that verifies nothing yet, then
 * checks, before believing a byte of it: one anchor of the bundle hashes to the pin (computed
 * here from the certificates, never taken from the answer's `pins`), the certificate the server
 * presented on that same connection chains to that bundle, is in date, and names the control
 * plane (`spiffe://<trust domain>/controlplane`, so an instance's certificate from the same CA
 * cannot pose as the control plane). From then on callers give the bundle to OpenSSL as `ca`
 * and use `checkControlPlaneIdentity`.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { PeerIdentityError, TokenInvalidError, type TrellisError } from '../core/errors.js';
import { chainProblem } from '../tls/chain.js';
import { pemDecodeAll, pemEncode } from '../tls/pem.js';
import { isTrustDomain } from '../tls/spiffe.js';
import { CA_PIN } from '../tls/tokens.js';
import { certificateFacts } from '../tls/x509-inspect.js';

/** The admin token's prefix: `trellis-admin.<pin hex>.<secret>`. */
export const ADMIN_TOKEN_PREFIX = 'trellis-admin.';
/** Largest `/v1/ca` answer read (two anchors are about 1.5 KiB). */
const MAX_CA_ANSWER_BYTES = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 10_000;

/** The SPIFFE ID in every control-plane serving certificate. */
export function controlPlaneSpiffeId(trustDomain: string): string {
  return `spiffe://${trustDomain}/controlplane`;
}

/**
 * The pin of a trust anchor: `sha256:` + hex SHA-256 of its DER SubjectPublicKeyInfo.
 *
 * @example caPin(await readFile('ca.pem')) // 'sha256:5f1c...'
 * @throws PeerIdentityError when `anchor` holds no certificate.
 */
export function caPin(anchor: Buffer | string): string {
  let der: Buffer;
  if (typeof anchor === 'string' || anchor.subarray(0, 11).toString('latin1') === '-----BEGIN ') {
    const first = pemDecodeAll(anchor.toString(), 'CERTIFICATE')[0];
    if (first === undefined) throw new PeerIdentityError('caPin: no PEM CERTIFICATE block in the anchor given');
    der = first.der;
  } else {
    der = anchor;
  }
  const spki = new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}


function refuse(reason: string): TrellisError {
  return new TokenInvalidError(`cannot read a CA pin from the token: ${reason}`);
}

/**
 * The CA pin a token carries: a bootstrap token's `cah` claim (read without verifying the
 * signature: the pin only says which CA to expect; the control plane verifies the token), or an
 * admin token's middle part. The token itself never appears in errors.
 *
 * @throws TokenInvalidError when the token is neither, or carries no well-formed pin.
 */
export function pinOfToken(token: string): string {
  if (typeof token !== 'string' || token.length === 0) throw refuse('no token');
  if (token.length > 4096) throw refuse('longer than 4096 characters');
  if (token.startsWith(ADMIN_TOKEN_PREFIX)) {
    const parts = token.split('.');
    const pin = `sha256:${parts[1] ?? ''}`;
    if (parts.length !== 3 || !CA_PIN.test(pin)) throw refuse('malformed admin token (expected trellis-admin.<pin>.<secret>)');
    return pin;
  }
  const parts = token.split('.');
  if (parts.length !== 3) throw refuse('neither an admin token nor a bootstrap token (compact JWS)');
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    throw refuse('malformed bootstrap token claims');
  }
  const cah = typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>)['cah'] : undefined;
  if (typeof cah !== 'string' || !CA_PIN.test(cah)) throw refuse('the bootstrap token has no cah claim (made without a control plane?)');
  return cah;
}

export interface FetchTrustBundleOptions {
  /** Give up after this long (default 10 s). */
  readonly timeoutMs?: number;
}

/** What `GET /v1/ca` gives, checked. */
export interface TrustBundle {
  readonly bundlePem: string;
  readonly trustDomain: string;
  /** The pins of every anchor in the bundle, computed here. */
  readonly pins: string[];
}

/** The certificate chain a TLS peer presented, leaf first. */
function presentedChain(socket: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let cert: PeerCertificate | undefined = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (cert !== undefined && cert !== null && cert.raw instanceof Uint8Array && out.length < 8) {
    const x = new X509Certificate(cert.raw);
    if (seen.has(x.fingerprint256)) break;
    seen.add(x.fingerprint256);
    out.push(x);
    const next: PeerCertificate | undefined = (cert as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
    cert = next === cert ? undefined : next;
  }
  return out;
}

/** Why `cert` is not a control plane's serving certificate for `trustDomain` right now, or undefined. */
function servingProblem(cert: X509Certificate, trustDomain: string, now: number): string | undefined {
  const want = controlPlaneSpiffeId(trustDomain);
  const uris = certificateFacts(cert.raw).uris;
  if (!uris.includes(want)) return `its certificate names ${uris.length > 0 ? uris.join(', ') : 'no SPIFFE ID'}, not ${want}`;
  if (Date.parse(cert.validFrom) > now) return `its certificate is not valid before ${new Date(cert.validFrom).toISOString()}`;
  if (Date.parse(cert.validTo) <= now) return `its certificate expired at ${new Date(cert.validTo).toISOString()}`;
  return undefined;
}

/**
 * A `checkServerIdentity` for connections verified against the trust bundle: the server must
 * present the control plane's SPIFFE ID (host names are not checked: the pin, not DNS, is what
 * the client trusts).
 */
export function checkControlPlaneIdentity(trustDomain: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    try {
      const problem = servingProblem(new X509Certificate(cert.raw), trustDomain, Date.now());
      return problem === undefined ? undefined : new PeerIdentityError(`the server is not the control plane of ${trustDomain}: ${problem}`);
    } catch (err) {
      return new PeerIdentityError(`the server's certificate cannot be read: ${(err as Error).message}`);
    }
  };
}

/**
 * Fetches and checks the control plane's trust bundle (see the file comment).
 *
 * @example
 * const { bundlePem, trustDomain } = await fetchTrustBundle('https://127.0.0.1:7400', pinOfToken(token));
 * @throws PeerIdentityError naming the pin expected and the pins found, or what else was wrong
 *   with the server's certificate; ConnectFailedError-like Node errors when nothing answers.
 */
export async function fetchTrustBundle(url: string, pin: string, opts: FetchTrustBundleOptions = {}): Promise<TrustBundle> {
  if (!CA_PIN.test(pin)) throw new PeerIdentityError(`"${pin.slice(0, 80)}" is not a CA pin (sha256:<64 hex digits>)`);
  const base = new URL(url);
  if (base.protocol !== 'https:') throw new PeerIdentityError(`control plane URL ${base.origin} is not https`);
  const target = new URL('/v1/ca', base);
  const { body, chain } = await new Promise<{ body: string; chain: X509Certificate[] }>((resolve, reject) => {
    const req = request(target, { method: 'GET', rejectUnauthorized: false, timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, headers: { accept: 'application/json' } }, (res) => {
      const socket = res.socket as TLSSocket;
      let chain: X509Certificate[];
      try {
        chain = presentedChain(socket);
      } catch (err) {
        res.destroy();
        reject(new PeerIdentityError(`control plane at ${base.origin} presented an unreadable certificate: ${(err as Error).message}`));
        return;
      }
      const parts: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_CA_ANSWER_BYTES) {
          res.destroy();
          reject(new PeerIdentityError(`control plane at ${base.origin}: /v1/ca answer is over ${MAX_CA_ANSWER_BYTES} bytes`));
          return;
        }
        parts.push(chunk);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new PeerIdentityError(`control plane at ${base.origin}: GET /v1/ca answered ${res.statusCode}`));
        else resolve({ body: Buffer.concat(parts).toString('utf8'), chain });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${base.origin} within ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
  let answer: unknown;
  try {
    answer = JSON.parse(body);
  } catch {
    throw new PeerIdentityError(`control plane at ${base.origin}: /v1/ca is not JSON`);
  }
  const a = (typeof answer === 'object' && answer !== null ? answer : {}) as Record<string, unknown>;
  const trustDomain = a['trustDomain'];
  const bundleText = a['bundlePem'];
  if (typeof trustDomain !== 'string' || !isTrustDomain(trustDomain) || typeof bundleText !== 'string') {
    throw new PeerIdentityError(`control plane at ${base.origin}: /v1/ca lacks a valid trustDomain or bundlePem`);
  }
  let anchors: X509Certificate[];
  try {
    anchors = pemDecodeAll(bundleText, 'CERTIFICATE').map((b) => new X509Certificate(b.der));
  } catch (err) {
    throw new PeerIdentityError(`control plane at ${base.origin}: its trust bundle cannot be read: ${(err as Error).message}`);
  }
  const pins = anchors.map((c) => caPin(c.raw));
  if (!pins.includes(pin)) {
    throw new PeerIdentityError(`control plane at ${base.origin} is not the one the token pins: its CA pin is ${pins.join(', ') || 'none'}, the token pins ${pin}`);
  }
  const problem = chainProblem(chain, anchors);
  if (problem !== undefined) throw new PeerIdentityError(`control plane at ${base.origin}: its certificate does not chain to the pinned CA: ${problem}`);
  const leaf = chain[0] as X509Certificate;
  const serving = servingProblem(leaf, trustDomain, Date.now());
  if (serving !== undefined) throw new PeerIdentityError(`control plane at ${base.origin}: ${serving}`);
  return { bundlePem: anchors.map((c) => pemEncode('CERTIFICATE', c.raw)).join(''), trustDomain, pins };
}
