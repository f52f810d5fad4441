/**
 * Workload identities for tests through the public API: an authority made in process and
 * identities issued from it by bootstrap token (`issuedIdentity` + `localAuthoritySigner`), as a
 * control plane would hand them out. `close()` stops every identity it issued.
 */
import { performance } from 'node:perf_hooks';
import { createAuthority, createToken, generateTokenKey, issuedIdentity, localAuthoritySigner } from 'trellis';
import type { Clock, IdentityProvider } from 'trellis';

export const TRUST_DOMAIN = 'example.org';
const HOUR = 3_600_000;
const clock: Clock = { now: () => performance.now(), wall: () => Date.now() };

export interface Identities {
  /** A fresh identity for `service`. */
  identityFor(service: string): IdentityProvider;
  close(): void;
}

export async function makeIdentities(trustDomain = TRUST_DOMAIN): Promise<Identities> {
  const [ca, tokenKey] = await Promise.all([createAuthority({ trustDomain }, clock), generateTokenKey()]);
  const issued: IdentityProvider[] = [];
  return {
    identityFor(service) {
      const token = createToken(tokenKey, { service, ttlMs: HOUR }, clock);
      const id = issuedIdentity({ service, trustDomain, ttlMs: HOUR, sign: localAuthoritySigner(ca, tokenKey, token, { clock, ttlMs: HOUR }) }, { clock, onWarn: () => undefined });
      issued.push(id);
      return id;
    },
    close() {
      for (const id of issued) id.close();
    },
  };
}
