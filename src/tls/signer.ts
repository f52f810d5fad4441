/**
 * The CA's front door: a bootstrap token and a CSR in, a workload certificate out.
 *
 * Order is the security property (docs/security.md, B6-B8): the token is verified first, and
 * only an accepted caller gets its CSR parsed at all (size-capped, depth-checked). The identity
 * is the token's service and nothing else: SANs, subject, basic constraints or key usages the
 * CSR asks for are ignored, so a `checkout` token yields a `checkout` leaf with CA=false
 * whatever the request says. Only the CSR's public key (checked for strength and
 * self-signature) reaches the certificate.
 */
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { CsrInvalidError, TokenInvalidError } from '../core/errors.js';
import { issueLeaf, type Authority } from './authority.js';
import { parseCsr } from './csr.js';
import { verifyToken } from './tokens.js';

/** What a workload sends. */
export interface SignRequest {
  readonly token: string;
  readonly csrPem: string;
  /** The service the caller asks to be; when given it must be the token's (a token for another service is refused). */
  readonly service?: string;
}

/** The CA side of signing. `ttlMs` is the leaf life (the Mesh `certificateTTL`). */
export interface SignerParams {
  readonly issuer: Authority;
  readonly tokenKey: KeyObject;
  readonly ttlMs: number;
  readonly clock: Clock;
  readonly revoked?: ReadonlySet<string>;
}

/** What a workload gets back. `notAfter` is epoch ms. */
export interface SignResult {
  readonly certificateChainPem: string;
  readonly caBundlePem: string;
  readonly notAfter: number;
  readonly spiffeId: string;
  readonly service: string;
  /** The token's id, for audit logs (never log the token itself). */
  readonly jti: string;
}

/**
 * Verifies the token, then the CSR, then issues a leaf for the token's service.
 *
 * @example
 * const { certificateChainPem, caBundlePem } = signCsr({ token, csrPem },
 *   { issuer: ca, tokenKey, ttlMs: 24 * 3_600_000, clock: systemClock });
 * @throws TokenInvalidError (401) before the CSR is looked at (also when `request.service`
 *   names another service than the token); CsrInvalidError (400);
 *   ConfigInvalidError when the issuer itself has expired.
 */
export function signCsr(request: SignRequest, ca: SignerParams): SignResult {
  if (typeof request !== 'object' || request === null) throw new TokenInvalidError('bootstrap token refused: missing');
  const token = verifyToken(ca.tokenKey, request.token, ca.clock, ca.revoked !== undefined ? { revoked: ca.revoked } : {});
  if (request.service !== undefined && request.service !== token.service) {
    throw new TokenInvalidError(`bootstrap token refused: it is for service "${token.service}", not "${String(request.service).slice(0, 64)}" (jti ${token.jti})`, { service: token.service });
  }
  if (typeof request.csrPem !== 'string') throw new CsrInvalidError('certificate signing request refused: missing', { service: token.service });
  const { publicKey } = parseCsr(request.csrPem);
  const leaf = issueLeaf(ca.issuer, { service: token.service, publicKey, ttlMs: ca.ttlMs }, ca.clock);
  return {
    certificateChainPem: leaf.certificateChainPem,
    caBundlePem: leaf.caBundlePem,
    notAfter: leaf.notAfter,
    spiffeId: leaf.spiffeId,
    service: token.service,
    jti: token.jti,
  };
}
