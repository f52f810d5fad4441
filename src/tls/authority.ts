/**
 * The certificate authority: a trust anchor (self-signed root, long-lived, its key kept offline
 * or passphrase-protected) and an intermediate issuer (shorter-lived, its key online) that
 * signs workload leaves. This is Linkerd's anchor/issuer split: losing or rotating the issuer
 * never touches what peers trust, and the anchor key need not be on a serving machine.
 *
 * Invariants (docs/reliability.md rows B3-B5, B8):
 * - a leaf's NotAfter never exceeds its issuer's nor its anchor's; an expired issuer issues
 *   nothing, and says which certificate and when it expired;
 * - leaves are backdated 60 s (`BACKDATE_MS`) so peers whose clocks run behind accept them;
 * - a leaf carries exactly one URI SAN, the identity it is issued for, CA=false, and keyUsage
 *   digitalSignature (+ keyEncipherment for RSA keys); nothing else is taken from a request
 *   but its public key;
 * - the trust bundle holds one or two anchors: two while an anchor is being rotated.
 *
 * Anchors and issuers carry the URI SAN `spiffe://<trust domain>` (as SPIRE's do), which is
 * where a loaded authority reads its trust domain from.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { ConfigInvalidError } from '../core/errors.js';
import { chainProblem } from './chain.js';
import { generateP256KeyPair, weakKeyProblem } from './keys.js';
import { pemDecodeAll, pemEncode } from './pem.js';
import { isTrustDomain, spiffeIdFor } from './spiffe.js';
import { buildCertificate, keyIdentifier, signerFromCertificate, type Signer } from './x509-build.js';
import { certificateFacts } from './x509-inspect.js';

const DAY_MS = 86_400_000;
/** Default trust-anchor life: ten years. */
export const DEFAULT_ANCHOR_TTL_MS = 3650 * DAY_MS;
/** Default issuer life: one year. */
export const DEFAULT_ISSUER_TTL_MS = 365 * DAY_MS;
/** How far back every certificate's NotBefore is set, for peers with slow clocks (docs/reliability.md rows B5). */
export const BACKDATE_MS = 60_000;
/** The most certificates a trust bundle may hold (the current anchor and the next one). */
export const MAX_ANCHORS = 2;

/** A CA certificate with its forms and its NotAfter (epoch ms). */
export interface CaCertificate {
  readonly pem: string;
  readonly der: Buffer;
  readonly cert: X509Certificate;
  readonly notAfter: number;
}

/** A certificate authority, in memory. */
export interface Authority {
  readonly trustDomain: string;
  /** The anchor that signed the issuer; its key is undefined when kept offline or still encrypted. */
  readonly anchor: CaCertificate & { readonly key: KeyObject | undefined };
  /** The issuer; `signer` is its name, key id and key, read once for signing leaves. */
  readonly issuer: CaCertificate & { readonly key: KeyObject; readonly signer: Signer };
  /** Every anchor peers trust (the anchor above first; a second one during rotation). */
  readonly anchors: readonly CaCertificate[];
  /** `anchors` as one PEM bundle: what workloads get as their `ca`. */
  readonly bundlePem: string;
  /** Where the authority was loaded from, for messages; undefined when made in memory. */
  readonly source: string | undefined;
}

export interface AuthorityParams {
  readonly trustDomain: string;
  /** Trust anchor life; default ten years. */
  readonly anchorTtlMs?: number;
  /** Issuer life; default one year, never past the anchor's. */
  readonly issuerTtlMs?: number;
}

/** A workload leaf to issue. The identity comes from the caller (a verified token), never a CSR. */
export interface LeafRequest {
  readonly service: string;
  readonly publicKey: KeyObject;
  readonly ttlMs: number;
}

/** An issued leaf. `certificateChainPem` is the leaf then the issuer; `caBundlePem` the anchors. */
export interface IssuedLeaf {
  readonly certPem: string;
  readonly certificateChainPem: string;
  readonly caBundlePem: string;
  readonly spiffeId: string;
  readonly serialNumber: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

/** Wraps certificate DER as a CaCertificate. */
export function caCertificate(der: Buffer): CaCertificate {
  const cert = new X509Certificate(der);
  return { pem: pemEncode('CERTIFICATE', der), der, cert, notAfter: Date.parse(cert.validTo) };
}

function invalid(file: string, message: string): ConfigInvalidError {
  return new ConfigInvalidError([{ file, document: 0, path: '', message }]);
}

function where(ca: { source: string | undefined }, file: string): string {
  return ca.source !== undefined ? `${ca.source}/${file}` : `<${file}>`;
}

function shortKeyId(key: KeyObject): string {
  return keyIdentifier(key).subarray(0, 4).toString('hex');
}

/** The trust domain a CA certificate names in its `spiffe://<td>` URI SAN, if any. */
export function caTrustDomain(der: Uint8Array): string | undefined {
  const uri = certificateFacts(der).uris[0];
  if (uri === undefined || !uri.startsWith('spiffe://')) return undefined;
  const td = uri.slice('spiffe://'.length);
  return isTrustDomain(td) ? td : undefined;
}

/** Parts an authority is assembled from (created, rotated or read from files). */
export interface AuthorityParts {
  readonly anchorDer: Buffer;
  readonly anchorKey: KeyObject | undefined;
  readonly issuerDer: Buffer;
  readonly issuerKey: KeyObject;
  /** The trust bundle; defaults to the anchor alone. */
  readonly bundleDer?: readonly Buffer[];
  readonly source?: string;
}

/**
 * Checks that the parts fit together (keys match certificates, the issuer is a CA signed by
 * the anchor, the anchor is in the bundle, one trust domain) and returns the authority.
 * Expiry is not an error here: expired material must still load so it can be replaced (B4).
 *
 * @throws ConfigInvalidError naming the file at fault.
 */
export function assembleAuthority(parts: AuthorityParts): Authority {
  const src = { source: parts.source };
  const anchor = caCertificate(parts.anchorDer);
  const issuer = caCertificate(parts.issuerDer);
  const given = (parts.bundleDer ?? [parts.anchorDer]).map(caCertificate);
  // The authority's own anchor first, then the other one (during anchor rotation).
  const bundle = [...given.filter((b) => b.cert.fingerprint256 === anchor.cert.fingerprint256), ...given.filter((b) => b.cert.fingerprint256 !== anchor.cert.fingerprint256)];
  if (!anchor.cert.ca || anchor.cert.checkIssued(anchor.cert) === false || !anchor.cert.verify(anchor.cert.publicKey)) {
    throw invalid(where(src, 'ca.pem'), 'the trust anchor is not a self-signed CA certificate');
  }
  if (parts.anchorKey !== undefined && !anchor.cert.checkPrivateKey(parts.anchorKey)) {
    throw invalid(where(src, 'anchor.key'), 'the anchor key does not match ca.pem');
  }
  if (!issuer.cert.ca) throw invalid(where(src, 'issuer.pem'), 'the issuer certificate is not a CA certificate');
  if (!issuer.cert.checkPrivateKey(parts.issuerKey)) throw invalid(where(src, 'issuer.key'), 'the issuer key does not match issuer.pem');
  if (chainProblem([issuer.cert], [anchor.cert]) !== undefined) throw invalid(where(src, 'issuer.pem'), 'the issuer certificate is not signed by the trust anchor in ca.pem');
  if (new Set(bundle.map((b) => b.cert.fingerprint256)).size !== bundle.length) throw invalid(where(src, 'bundle.pem'), 'the trust bundle holds the same anchor twice');
  if (bundle.length === 0 || bundle.length > MAX_ANCHORS) throw invalid(where(src, 'bundle.pem'), `the trust bundle must hold 1 or ${MAX_ANCHORS} anchors, not ${bundle.length}`);
  if (!bundle.some((b) => b.cert.fingerprint256 === anchor.cert.fingerprint256)) throw invalid(where(src, 'bundle.pem'), 'the trust bundle does not contain the anchor in ca.pem');
  for (const b of bundle) {
    if (!b.cert.ca || !b.cert.verify(b.cert.publicKey)) throw invalid(where(src, 'bundle.pem'), `bundle entry ${b.cert.subject.replace(/\n/g, ', ')} is not a self-signed CA certificate`);
  }
  const weak = weakKeyProblem(parts.issuerKey);
  if (weak !== undefined) throw invalid(where(src, 'issuer.key'), weak);
  const td = caTrustDomain(issuer.der);
  if (td === undefined) throw invalid(where(src, 'issuer.pem'), 'the issuer certificate names no trust domain (URI SAN spiffe://<trust domain>)');
  const anchorTd = caTrustDomain(anchor.der);
  if (anchorTd !== undefined && anchorTd !== td) throw invalid(where(src, 'issuer.pem'), `the issuer is for trust domain "${td}" but the anchor for "${anchorTd}"`);
  return {
    trustDomain: td,
    anchor: { ...anchor, key: parts.anchorKey },
    issuer: { ...issuer, key: parts.issuerKey, signer: signerFromCertificate(issuer.der, parts.issuerKey) },
    anchors: bundle,
    bundlePem: bundle.map((b) => b.pem).join(''),
    source: parts.source,
  };
}

function makeIssuer(trustDomain: string, anchorDer: Buffer, anchorKey: KeyObject, anchorNotAfter: number, issuerTtlMs: number, clock: Clock, issuerKeys: { privateKey: KeyObject; publicKey: KeyObject }): Buffer {
  const now = clock.wall();
  return buildCertificate({
    subject: { organization: trustDomain, commonName: `Trellis issuer ${shortKeyId(issuerKeys.publicKey)}` },
    publicKey: issuerKeys.publicKey,
    notBefore: now - BACKDATE_MS,
    notAfter: Math.min(now + issuerTtlMs, anchorNotAfter),
    role: { kind: 'ca', pathLen: 0 },
    uris: [`spiffe://${trustDomain}`],
    signer: signerFromCertificate(anchorDer, anchorKey),
  }).der;
}

function checkTtl(name: string, ms: number): void {
  if (!Number.isFinite(ms) || ms <= 0) throw new ConfigInvalidError([{ file: '<inline>', document: 0, path: name, message: `must be a positive duration, got ${ms}` }]);
}

/**
 * Creates a new authority: a P-256 trust anchor valid for `anchorTtlMs` (default 10 years) and
 * an issuer under it valid for `issuerTtlMs` (default 1 year).
 *
 * @example
 * const ca = await createAuthority({ trustDomain: 'example.org' }, systemClock);
 * await saveAuthority(ca, './ca', { anchorPassphrase: process.env.ANCHOR_PASS });
 */
export async function createAuthority(params: AuthorityParams, clock: Clock): Promise<Authority> {
  const trustDomain = params.trustDomain;
  spiffeIdFor(trustDomain, 'x'); // validates the trust domain, with a typed error
  const anchorTtl = params.anchorTtlMs ?? DEFAULT_ANCHOR_TTL_MS;
  const issuerTtl = params.issuerTtlMs ?? DEFAULT_ISSUER_TTL_MS;
  checkTtl('anchorTtl', anchorTtl);
  checkTtl('issuerTtl', issuerTtl);
  const [anchorKeys, issuerKeys] = await Promise.all([generateP256KeyPair(), generateP256KeyPair()]);
  const now = clock.wall();
  const anchorNotAfter = now + anchorTtl;
  const anchor = buildCertificate({
    subject: { organization: trustDomain, commonName: `Trellis trust anchor ${shortKeyId(anchorKeys.publicKey)}` },
    publicKey: anchorKeys.publicKey,
    selfKey: anchorKeys.privateKey,
    notBefore: now - BACKDATE_MS,
    notAfter: anchorNotAfter,
    role: { kind: 'ca', pathLen: 1 },
    uris: [`spiffe://${trustDomain}`],
    signer: undefined,
  });
  const issuerDer = makeIssuer(trustDomain, anchor.der, anchorKeys.privateKey, anchorNotAfter, issuerTtl, clock, issuerKeys);
  return assembleAuthority({ anchorDer: anchor.der, anchorKey: anchorKeys.privateKey, issuerDer, issuerKey: issuerKeys.privateKey });
}

/**
 * A new issuer (new key) under the same anchor; needs the anchor key. Peers need no change:
 * they trust the anchor, and leaves carry their issuer in the chain.
 */
export async function rotateIssuer(ca: Authority, params: { issuerTtlMs?: number }, clock: Clock): Promise<Authority> {
  if (ca.anchor.key === undefined) throw invalid(where(ca, 'anchor.key'), 'rotating the issuer needs the anchor key (give its passphrase)');
  const ttl = params.issuerTtlMs ?? DEFAULT_ISSUER_TTL_MS;
  checkTtl('issuerTtl', ttl);
  const keys = await generateP256KeyPair();
  const issuerDer = makeIssuer(ca.trustDomain, ca.anchor.der, ca.anchor.key, ca.anchor.notAfter, ttl, clock, keys);
  return assembleAuthority({ anchorDer: ca.anchor.der, anchorKey: ca.anchor.key, issuerDer, issuerKey: keys.privateKey, bundleDer: ca.anchors.map((a) => a.der), source: ca.source });
}

/**
 * The same authority with another trust bundle (one or two anchors, which must include this
 * authority's anchor). Anchor rotation: give every workload a bundle with old + new anchors,
 * then switch the CA to the new anchor's issuer, then drop the old anchor.
 */
export function withTrustBundle(ca: Authority, bundlePem: string): Authority {
  const bundleDer = pemDecodeAll(bundlePem, 'CERTIFICATE').map((b) => b.der);
  return assembleAuthority({ anchorDer: ca.anchor.der, anchorKey: ca.anchor.key, issuerDer: ca.issuer.der, issuerKey: ca.issuer.key, bundleDer, source: ca.source });
}

/** Joins PEM bundles, dropping duplicate certificates (by SHA-256 fingerprint). */
export function mergeBundles(...bundles: string[]): string {
  const seen = new Set<string>();
  let out = '';
  for (const b of bundles) {
    for (const block of pemDecodeAll(b, 'CERTIFICATE')) {
      const fp = new X509Certificate(block.der).fingerprint256;
      if (seen.has(fp)) continue;
      seen.add(fp);
      out += pemEncode('CERTIFICATE', block.der);
    }
  }
  return out;
}

/** The last instant the authority may certify: the earlier of its issuer's and anchor's NotAfter. */
export function issuingLimit(ca: Authority): number {
  return Math.min(ca.issuer.notAfter, ca.anchor.notAfter);
}

/**
 * Issues a workload leaf for `req.service`: NotBefore backdated 60 s, NotAfter the earlier of
 * now + ttl and the issuer's NotAfter.
 *
 * @throws ConfigInvalidError when the issuer (or anchor) has expired, naming it and its NotAfter.
 */
export function issueLeaf(ca: Authority, req: LeafRequest, clock: Clock): IssuedLeaf {
  checkTtl('ttl', req.ttlMs);
  const spiffeId = spiffeIdFor(ca.trustDomain, req.service);
  const now = clock.wall();
  const limit = issuingLimit(ca);
  if (now >= limit) {
    const which = ca.issuer.notAfter <= ca.anchor.notAfter ? { file: 'issuer.pem', c: ca.issuer } : { file: 'ca.pem', c: ca.anchor };
    throw invalid(where(ca, which.file), `${which.c.cert.subject.replace(/\n/g, ', ')} expired at ${new Date(which.c.notAfter).toISOString()} (NotAfter): the CA issues nothing past it; rotate the issuer`);
  }
  const weak = weakKeyProblem(req.publicKey);
  if (weak !== undefined) throw invalid('<csr>', weak);
  const leaf = buildCertificate({
    subject: { commonName: req.service },
    publicKey: req.publicKey,
    notBefore: now - BACKDATE_MS,
    notAfter: Math.min(now + req.ttlMs, limit),
    role: { kind: 'leaf' },
    uris: [spiffeId],
    signer: ca.issuer.signer,
  });
  return {
    certPem: leaf.pem,
    certificateChainPem: leaf.pem + ca.issuer.pem,
    caBundlePem: ca.bundlePem,
    spiffeId,
    serialNumber: leaf.cert.serialNumber,
    notBefore: Date.parse(leaf.cert.validFrom),
    notAfter: Date.parse(leaf.cert.validTo),
  };
}

/**
 * Warnings about the authority's lifetimes at `clock.wall()`: expired or expiring within
 * `withinMs` (default 30 days), each naming the certificate and its NotAfter. For `trellis
 * check` and start-up logs.
 */
export function authorityWarnings(ca: Authority, clock: Clock, withinMs = 30 * DAY_MS): string[] {
  const now = clock.wall();
  const out: string[] = [];
  const look = (file: string, c: CaCertificate): void => {
    const name = `${where(ca, file)} (${c.cert.subject.replace(/\n/g, ', ')})`;
    const at = new Date(c.notAfter).toISOString();
    if (now >= c.notAfter) out.push(`${name} expired at ${at}`);
    else if (c.notAfter - now <= withinMs) out.push(`${name} expires at ${at}`);
  };
  look('issuer.pem', ca.issuer);
  look('ca.pem', ca.anchor);
  for (const a of ca.anchors.slice(1)) look('bundle.pem', a);
  return out;
}
