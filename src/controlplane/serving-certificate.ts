/**
 * The control plane's own serving certificate, issued by its CA: URI SAN
 * `spiffe://<trust domain>/controlplane` (what clients check, after the pin), DNS `localhost`,
 * IP 127.0.0.1 and ::1, and the listen host (as an IP or DNS SAN), so `curl --cacert` works too.
 * Short-lived (7 days, never past the issuer) and reissued by the control plane at two thirds of
 * its life.
 */
import { isIP } from 'node:net';
import type { Clock } from '../core/clock.js';
import { controlPlaneSpiffeId } from '../controlplane-client/pin.js';
import { BACKDATE_MS, issuingLimit, type Authority } from '../tls/authority.js';
import { generateP256KeyPair, privateKeyPem } from '../tls/keys.js';
import { buildCertificate } from '../tls/x509-build.js';

export const SERVING_TTL_MS = 7 * 86_400_000;

export interface ServingCertificate {
  readonly keyPem: string;
  readonly chainPem: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

export async function issueServingCertificate(ca: Authority, host: string, clock: Clock, ttlMs = SERVING_TTL_MS): Promise<ServingCertificate> {
  const keys = await generateP256KeyPair();
  const now = clock.wall();
  const ips = new Set(['127.0.0.1', '::1']);
  const dns = new Set(['localhost']);
  if (isIP(host) !== 0) {
    if (host !== '0.0.0.0' && host !== '::') ips.add(host);
  } else if (host !== '') dns.add(host);
  const notBefore = now - BACKDATE_MS;
  const notAfter = Math.min(now + ttlMs, issuingLimit(ca));
  const leaf = buildCertificate({
    subject: { organization: ca.trustDomain, commonName: 'Trellis control plane' },
    publicKey: keys.publicKey,
    notBefore,
    notAfter,
    role: { kind: 'leaf' },
    uris: [controlPlaneSpiffeId(ca.trustDomain)],
    dnsNames: [...dns],
    ipAddresses: [...ips],
    signer: ca.issuer.signer,
  });
  return { keyPem: privateKeyPem(keys.privateKey), chainPem: leaf.pem + ca.issuer.pem, notBefore, notAfter: Date.parse(leaf.cert.validTo) };
}
