/**
 * SPIFFE identities: `spiffe://<trust domain>/svc/<service>`, and the X509-SVID checks every
 * mTLS peer must pass on top of OpenSSL's chain verification.
 *
 * Why our own checks: since the CVE-2021-44531 fix Node's default `checkServerIdentity`
 * ignores URI SANs, and a certificate from our CA is not by itself the right peer. The rules
 * follow spiffe/spiffe `standards/X509-SVID.md` §4-5 and `SPIFFE-ID.md` §2: exactly one URI
 * SAN, scheme `spiffe`, the expected trust domain, a non-root path (ours is `/svc/<name>`),
 * `CA=false`, keyUsage with digitalSignature and without keyCertSign/cRLSign.
 *
 * Invariant: these functions interpret certificates OpenSSL already verified against our
 * trust bundle; they never replace that verification (servers keep `requestCert` +
 * `rejectUnauthorized: true`).
 */
import type { X509Certificate } from 'node:crypto';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { ConfigInvalidError, PeerIdentityError } from '../core/errors.js';
import { certificateFacts, KEY_USAGE } from './x509-inspect.js';

/** Trust domains as the Mesh document allows them (a subset of SPIFFE-ID §2.1). */
const TRUST_DOMAIN = /^[a-z0-9](?:[a-z0-9._-]{0,253}[a-z0-9])?$/;
/** Service names: DNS labels, as Service documents name them. */
const SERVICE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** A SPIFFE path segment (SPIFFE-ID §2.2): no empty, `.` or `..` segments, no percent-encoding. */
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const MAX_ID_LENGTH = 2048;

/** A parsed SPIFFE ID. `service` is set when the path is `/svc/<service>`. */
export interface SpiffeId {
  readonly trustDomain: string;
  readonly path: string;
  readonly service: string | undefined;
}

/** The identity a verified peer presented. */
export interface PeerIdentity {
  readonly service: string;
  readonly spiffeId: string;
}

/** True when `s` is a valid service name (a DNS label). */
export function isServiceName(s: string): boolean {
  return SERVICE.test(s);
}

/** True when `s` is a valid trust domain. */
export function isTrustDomain(s: string): boolean {
  return TRUST_DOMAIN.test(s);
}

/**
 * The SPIFFE ID of a service: `spiffe://<trustDomain>/svc/<service>`.
 *
 * @example spiffeIdFor('example.org', 'checkout') // 'spiffe://example.org/svc/checkout'
 * @throws ConfigInvalidError when the trust domain or the service name is not valid.
 */
export function spiffeIdFor(trustDomain: string, service: string): string {
  if (!isTrustDomain(trustDomain)) {
    throw new ConfigInvalidError([{ file: '<inline>', document: 0, path: 'trustDomain', message: `"${trustDomain.slice(0, 64)}" is not a valid trust domain (lowercase letters, digits, ".", "-", "_")` }]);
  }
  if (!isServiceName(service)) {
    throw new ConfigInvalidError([{ file: '<inline>', document: 0, path: 'service', message: `"${service.slice(0, 64)}" is not a valid service name (a DNS label: lowercase letters, digits and "-")` }]);
  }
  return `spiffe://${trustDomain}/svc/${service}`;
}

/**
 * Parses a SPIFFE ID (SPIFFE-ID §2). Refuses other schemes, upper case in the trust domain,
 * ports, user info, query, fragment, empty or dot segments and a root path.
 *
 * @throws PeerIdentityError naming what is wrong.
 */
export function parseSpiffeId(id: string): SpiffeId {
  const shown = JSON.stringify(id.length > 128 ? `${id.slice(0, 128)}…` : id);
  if (id.length > MAX_ID_LENGTH) throw new PeerIdentityError(`SPIFFE ID longer than ${MAX_ID_LENGTH} characters`);
  if (!id.startsWith('spiffe://')) throw new PeerIdentityError(`URI SAN ${shown} is not a SPIFFE ID (scheme must be "spiffe")`);
  const rest = id.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  if (!TRUST_DOMAIN.test(trustDomain)) throw new PeerIdentityError(`SPIFFE ID ${shown} has an invalid trust domain`);
  if (path === '' || path === '/') throw new PeerIdentityError(`SPIFFE ID ${shown} has no path (a workload ID needs one)`);
  const segments = path.slice(1).split('/');
  for (const seg of segments) {
    if (!SEGMENT.test(seg) || seg === '.' || seg === '..') throw new PeerIdentityError(`SPIFFE ID ${shown} has an invalid path segment`);
  }
  const service = segments.length === 2 && segments[0] === 'svc' && SERVICE.test(segments[1] as string) ? (segments[1] as string) : undefined;
  return { trustDomain, path, service };
}

/** What the SVID check reads from a certificate, whichever object it came from. */
interface CertificateView {
  readonly raw: Uint8Array;
  /** OpenSSL's X509_check_ca verdict (`X509Certificate.ca`); the extension itself is read too. */
  readonly ca: boolean;
  /** For messages: subject and serial. */
  readonly describe: () => string;
}

function describeParts(subject: string, serial: string): string {
  return `certificate ${subject.replace(/\n/g, ', ')} (serial ${serial})`;
}

function checkSvid(cert: CertificateView, expect: { trustDomain: string; service?: string | undefined }): PeerIdentity {
  const subject = { service: expect.service };
  let facts;
  try {
    facts = certificateFacts(cert.raw);
  } catch (err) {
    throw new PeerIdentityError(`${cert.describe()} cannot be read: ${(err as Error).message}`, { ...subject, cause: err });
  }
  if (facts.uris.length !== 1) {
    throw new PeerIdentityError(`${cert.describe()} has ${facts.uris.length} URI SANs; an SVID has exactly one`, subject);
  }
  const uri = facts.uris[0] as string;
  const id = parseSpiffeId(uri);
  if (id.trustDomain !== expect.trustDomain) {
    throw new PeerIdentityError(`${cert.describe()} is ${uri}, from trust domain "${id.trustDomain}", not "${expect.trustDomain}"`, subject);
  }
  if (id.service === undefined) throw new PeerIdentityError(`${cert.describe()} is ${uri}, not a service identity (/svc/<name>)`, subject);
  if (expect.service !== undefined && id.service !== expect.service) {
    throw new PeerIdentityError(`wrong SPIFFE identity: peer is ${uri}, expected spiffe://${expect.trustDomain}/svc/${expect.service}`, subject);
  }
  if (facts.ca || cert.ca) throw new PeerIdentityError(`${cert.describe()} (${uri}) is a CA certificate, not a leaf SVID`, subject);
  if (facts.keyUsage === undefined) throw new PeerIdentityError(`${cert.describe()} (${uri}) has no keyUsage extension`, subject);
  if ((facts.keyUsage & KEY_USAGE.digitalSignature) === 0) {
    throw new PeerIdentityError(`${cert.describe()} (${uri}) lacks keyUsage digitalSignature`, subject);
  }
  if ((facts.keyUsage & (KEY_USAGE.keyCertSign | KEY_USAGE.cRLSign)) !== 0) {
    throw new PeerIdentityError(`${cert.describe()} (${uri}) has keyUsage keyCertSign or cRLSign, which a leaf SVID must not`, subject);
  }
  return { service: id.service, spiffeId: uri };
}

/**
 * Checks that `cert` is an X509-SVID leaf for `expect` and returns the identity it carries.
 * Call only after the TLS layer verified the chain.
 *
 * @example
 * const { service } = verifySvid(socket.getPeerX509Certificate()!, { trustDomain: 'example.org' });
 * @throws PeerIdentityError with the reason (several URI SANs, foreign trust domain, other
 *   service, a CA certificate, key usage allowing certificate signing, ...).
 */
export function verifySvid(cert: X509Certificate, expect: { trustDomain: string; service?: string }): PeerIdentity {
  return checkSvid({ raw: cert.raw, ca: cert.ca, describe: () => describeParts(cert.subject, cert.serialNumber) }, expect);
}

/** `verifySvid` for the object `getPeerCertificate()` and `checkServerIdentity` hand out (no X509Certificate to build). */
export function verifyPeerCertificate(cert: PeerCertificate, expect: { trustDomain: string; service?: string }): PeerIdentity {
  if (cert === undefined || cert === null || !(cert.raw instanceof Uint8Array)) {
    throw new PeerIdentityError('the peer presented no certificate', { service: expect.service });
  }
  const subject = cert.subject as unknown;
  return checkSvid(
    { raw: cert.raw, ca: cert.ca === true, describe: () => describeParts(typeof subject === 'object' && subject !== null ? Object.entries(subject).map(([k, v]) => `${k}=${String(v)}`).join(', ') : '?', cert.serialNumber) },
    expect,
  );
}

/**
 * A `checkServerIdentity` for `tls.connect` (and undici's `connect` options) that accepts only
 * the SVID of `service` in `trustDomain`. Node calls it after OpenSSL verified the chain.
 *
 * Note: Node skips `checkServerIdentity` on a resumed TLS session, so a session cache must be
 * keyed by destination service (or disabled) for this check to keep its meaning.
 *
 * @example
 * tls.connect({ host, port, ca, cert, key, minVersion: 'TLSv1.3',
 *   checkServerIdentity: checkServerIdentityFor('example.org', 'products') });
 */
export function checkServerIdentityFor(trustDomain: string, service: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    try {
      verifyPeerCertificate(cert, { trustDomain, service });
      return undefined;
    } catch (err) {
      return err instanceof Error ? err : new PeerIdentityError(String(err), { service });
    }
  };
}

/**
 * The verified caller of an inbound TLS connection, or undefined when there is none (the
 * handshake did not authorize a client certificate, or it is not a service SVID of
 * `trustDomain`). Costs about 6 µs (`getPeerX509Certificate()` reuses OpenSSL's parsed
 * certificate; building an X509Certificate from `raw` would cost ~120 µs).
 */
export function peerIdentity(socket: TLSSocket, trustDomain: string): PeerIdentity | undefined {
  if (!socket.authorized) return undefined;
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined) return undefined;
  try {
    return verifySvid(cert, { trustDomain });
  } catch {
    return undefined;
  }
}
