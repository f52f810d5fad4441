/**
 * How an instance checks the control plane's serving certificate (after OpenSSL verified its
 * chain against the pinned bundle): the certificate names the control plane by its SPIFFE ID
 * `spiffe://<trust domain>/controlplane`, or else by the host the URL names (DNS or IP SAN, as
 * Node checks by default). A workload certificate of the same CA (`…/svc/<name>`) is neither,
 * so one instance cannot pose as the control plane to another.
 */
import { checkServerIdentity, type PeerCertificate } from 'node:tls';

export function controlPlaneServerIdentity(trustDomain: string): (host: string, cert: PeerCertificate) => Error | undefined {
  const want = `URI:spiffe://${trustDomain}/controlplane`;
  return (host, cert) => {
    const sans = (cert.subjectaltname ?? '').split(',').map((s) => s.trim());
    if (sans.includes(want)) return undefined;
    if (sans.some((s) => s.startsWith('URI:spiffe://'))) return new Error(`the server at ${host} is not the control plane: its certificate names ${sans.filter((s) => s.startsWith('URI:')).join(', ')}, not ${want.slice(4)}`);
    return checkServerIdentity(host, cert);
  };
}
