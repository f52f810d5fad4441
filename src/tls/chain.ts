/**
 * Offline chain checks for material we are about to use or serve (identity files, issued
 * certificates, a CA directory): does this chain lead to one of these anchors?
 *
 * Peers are verified by OpenSSL during the handshake, never here. This check exists so that a
 * bad file is refused when it is loaded, with a message naming it, rather than as handshake
 * failures on every connection afterwards.
 */
import type { X509Certificate } from 'node:crypto';

function signedBy(child: X509Certificate, parent: X509Certificate): boolean {
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

/**
 * Why `chain` (leaf first, then intermediates) does not lead to one of `anchors`, or undefined
 * when it does. Validity dates are not checked here (callers warn about them by name).
 */
export function chainProblem(chain: readonly X509Certificate[], anchors: readonly X509Certificate[]): string | undefined {
  if (chain.length === 0) return 'no certificate';
  if (anchors.length === 0) return 'no trust anchor';
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i] as X509Certificate;
    const parent = chain[i + 1] as X509Certificate;
    if (!parent.ca) return `certificate ${i + 1} in the chain is not a CA`;
    if (!signedBy(child, parent)) return `certificate ${i} is not signed by certificate ${i + 1} of the chain`;
  }
  const top = chain[chain.length - 1] as X509Certificate;
  const ok = anchors.some((a) => a.fingerprint256 === top.fingerprint256 || (a.ca && signedBy(top, a)));
  return ok ? undefined : 'the chain does not lead to any trust anchor in the bundle';
}
