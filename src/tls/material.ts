/**
 * TLS material (trust bundle, certificate chain, private key) checked as a whole before anyone
 * uses it: the leaf is an SVID (one URI SAN `spiffe://<td>/svc/<service>`, CA=false, ...), the
 * key matches it, the chain leads to an anchor in the bundle. A file set that fails any of
 * these is refused when loaded, with the part at fault named, instead of failing every
 * handshake later.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chainProblem } from './chain.js';
import { pemDecodeAll } from './pem.js';
import { parseSpiffeId, verifySvid } from './spiffe.js';
import { certificateFacts } from './x509-inspect.js';

/** A workload's identity material, as the transports use it. Times are epoch ms. */
export interface TlsMaterial {
  /** PEM bundle of trust anchors (1-2). */
  readonly ca: string;
  /** Leaf then issuer chain, PEM. */
  readonly cert: string;
  /** PEM private key of the leaf. */
  readonly key: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly spiffeId: string;
  readonly service: string;
  readonly trustDomain: string;
}

/** Which input a material problem is about. */
export type MaterialPart = 'ca' | 'cert' | 'key';

/** Why material was refused, and which part. */
export class MaterialError extends Error {
  readonly part: MaterialPart;
  constructor(part: MaterialPart, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MaterialError';
    this.part = part;
  }
}

const MAX_CERTS = 8;

function certs(part: MaterialPart, text: string, what: string): X509Certificate[] {
  let blocks;
  try {
    blocks = pemDecodeAll(text, 'CERTIFICATE');
  } catch (err) {
    throw new MaterialError(part, (err as Error).message, { cause: err });
  }
  if (blocks.length === 0) throw new MaterialError(part, `no PEM certificate in the ${what}`);
  if (blocks.length > MAX_CERTS) throw new MaterialError(part, `more than ${MAX_CERTS} certificates in the ${what}`);
  try {
    return blocks.map((b) => new X509Certificate(b.der));
  } catch (err) {
    throw new MaterialError(part, `unreadable certificate in the ${what}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Checks PEM material and describes it. `expect` pins the trust domain and/or service; without
 * a trust domain, the leaf's own is taken (file-based identities).
 *
 * @throws MaterialError naming the part at fault.
 */
export function materialFromPem(input: { ca: string; cert: string; key: string }, expect: { trustDomain?: string; service?: string } = {}): TlsMaterial {
  const anchors = certs('ca', input.ca, 'trust bundle');
  for (const a of anchors) if (!a.ca) throw new MaterialError('ca', `trust bundle entry ${a.subject.replace(/\n/g, ', ')} is not a CA certificate`);
  const chain = certs('cert', input.cert, 'certificate chain');
  const leaf = chain[0] as X509Certificate;
  let trustDomain = expect.trustDomain;
  if (trustDomain === undefined) {
    try {
      const uri = certificateFacts(leaf.raw).uris[0];
      trustDomain = uri !== undefined ? parseSpiffeId(uri).trustDomain : '';
    } catch (err) {
      throw new MaterialError('cert', `the certificate is not an SVID: ${(err as Error).message}`, { cause: err });
    }
  }
  let id;
  try {
    id = verifySvid(leaf, { trustDomain, ...(expect.service !== undefined ? { service: expect.service } : {}) });
  } catch (err) {
    throw new MaterialError('cert', `the certificate is not a valid SVID: ${(err as Error).message}`, { cause: err });
  }
  let key;
  try {
    key = createPrivateKey(input.key);
  } catch (err) {
    throw new MaterialError('key', `not a usable private key: ${(err as Error).message}`, { cause: err });
  }
  if (!leaf.checkPrivateKey(key)) throw new MaterialError('key', `the private key does not match the certificate (${id.spiffeId})`);
  const problem = chainProblem(chain, anchors);
  if (problem !== undefined) throw new MaterialError('cert', `the certificate chain does not verify against the trust bundle: ${problem}`);
  return {
    ca: input.ca,
    cert: input.cert,
    key: input.key,
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
    spiffeId: id.spiffeId,
    service: id.service,
    trustDomain,
  };
}
