/**
 * An in-process stand-in for the control plane's CA endpoint: a `sign` function for
 * `issuedIdentity` that performs the same token-then-CSR exchange (`signCsr`) locally. For
 * tests, the demo, and single-process setups; the key still never leaves the identity.
 */
import type { KeyObject } from 'node:crypto';
import { systemClock, type Clock } from '../core/clock.js';
import type { Authority } from './authority.js';
import type { SignFunction } from './issued-identity.js';
import { signCsr } from './signer.js';

/** Default workload certificate life, as the Mesh `certificateTTL` defaults: 24 h. */
export const DEFAULT_CERTIFICATE_TTL_MS = 24 * 3_600_000;

export interface LocalSignerOptions {
  readonly clock?: Clock;
  /** Leaf life; default 24 h. */
  readonly ttlMs?: number;
  readonly revoked?: ReadonlySet<string>;
}

/**
 * A `sign` function that exchanges `token` + CSR with `ca` in this process.
 *
 * @example
 * const sign = localAuthoritySigner(ca, tokenKey, createToken(tokenKey, { service: 'checkout' }, clock));
 * const id = issuedIdentity({ service: 'checkout', trustDomain: ca.trustDomain, sign }, { clock, onWarn });
 */
export function localAuthoritySigner(ca: Authority, tokenKey: KeyObject, token: string | (() => string), options: LocalSignerOptions = {}): SignFunction {
  const params = {
    issuer: ca,
    tokenKey,
    ttlMs: options.ttlMs ?? DEFAULT_CERTIFICATE_TTL_MS,
    clock: options.clock ?? systemClock,
    ...(options.revoked !== undefined ? { revoked: options.revoked } : {}),
  };
  return async (csrPem) => {
    // A function mints a fresh token per exchange, so renewals outlive any one token's TTL.
    const res = signCsr({ token: typeof token === 'function' ? token() : token, csrPem }, params);
    return { certificateChainPem: res.certificateChainPem, caBundlePem: res.caBundlePem };
  };
}
