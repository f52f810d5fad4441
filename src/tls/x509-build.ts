/**
 * Builds and signs X.509 certificates: the ASN.1 structures come from @peculiar/asn1-x509
 * (schemas only, no crypto, no globals), the signature from node:crypto (OpenSSL).
 *
 * This is the only place certificates are made. Callers say what a certificate is for (trust
 * anchor, issuer, workload leaf); this file turns that into extensions:
 * - every certificate gets a random positive 128-bit serial and a SubjectKeyIdentifier;
 * - issued certificates get an AuthorityKeyIdentifier equal to the issuer's SKI, so OpenSSL
 *   picks the right anchor when a bundle holds two with similar names (anchor rotation);
 * - CA certificates: basicConstraints CA (critical) and keyUsage keyCertSign + cRLSign (critical);
 * - leaves: CA=false (critical), keyUsage digitalSignature (+ keyEncipherment for RSA keys,
 *   critical), extKeyUsage serverAuth + clientAuth, and the URI SANs given (one, for SVIDs).
 */
import { createHash, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_clientAuth,
  id_kp_serverAuth,
} from '@peculiar/asn1-x509';
import { signatureSchemeFor, spkiDer } from './keys.js';
import { pemEncode } from './pem.js';

const OID_CN = '2.5.4.3';
const OID_O = '2.5.4.10';

/** A distinguished name as Trellis writes them: an organization and a common name. */
export interface SimpleName {
  readonly organization?: string;
  readonly commonName?: string;
}

/** Who signs: the issuer's subject name and key identifier (taken from its certificate), and its key. */
export interface Signer {
  readonly name: Name;
  readonly keyId: Buffer;
  readonly key: KeyObject;
}

/** What a certificate is for. */
export type CertificateRole =
  | { readonly kind: 'ca'; readonly pathLen?: number }
  | { readonly kind: 'leaf' };

export interface CertificateTemplate {
  readonly subject: SimpleName;
  readonly publicKey: KeyObject;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly role: CertificateRole;
  /** URI SANs (a SPIFFE ID); none when empty. */
  readonly uris: readonly string[];
  /** DNS-name and IP-address SANs, for serving certificates (the control plane's); workload SVIDs carry none. */
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** The signer; undefined for a self-signed certificate (signed with `selfKey`). */
  readonly signer: Signer | undefined;
  /** The private key of `publicKey`, needed only when self-signing. */
  readonly selfKey?: KeyObject;
  /** keyUsage bits (`KeyUsageFlags`) instead of the role's default; for checks that refuse odd certificates. */
  readonly keyUsage?: number;
}

/** A built certificate in the three forms callers want. */
export interface BuiltCertificate {
  readonly der: Buffer;
  readonly pem: string;
  readonly cert: X509Certificate;
}

function buildName(n: SimpleName): Name {
  const rdns: RelativeDistinguishedName[] = [];
  const add = (oid: string, value: string | undefined): void => {
    if (value === undefined) return;
    rdns.push(new RelativeDistinguishedName([new AttributeTypeAndValue({ type: oid, value: new AttributeValue({ utf8String: value }) })]));
  };
  add(OID_O, n.organization);
  add(OID_CN, n.commonName);
  return new Name(rdns);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = AsnConvert.parse(spkiDer(publicKey), SubjectPublicKeyInfo);
  return createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest();
}

/** The signer description of an issuer certificate and its key (name and SKI read from the certificate). */
export function signerFromCertificate(certDer: Uint8Array, key: KeyObject): Signer {
  const cert = AsnConvert.parse(certDer, Certificate);
  const ski = cert.tbsCertificate.extensions?.find((e) => e.extnID === id_ce_subjectKeyIdentifier);
  const keyId = ski !== undefined ? Buffer.from(AsnConvert.parse(ski.extnValue, SubjectKeyIdentifier).buffer) : keyIdentifier(new X509Certificate(Buffer.from(certDer)).publicKey);
  return { name: cert.tbsCertificate.subject, keyId, key };
}

function extension(oid: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID: oid, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

function randomSerial(): ArrayBuffer {
  const s = randomBytes(16);
  s[0] = ((s[0] as number) & 0x7f) | 0x40; // positive, and no leading zero byte to strip
  return toArrayBuffer(s);
}

function algorithm(key: KeyObject): AlgorithmIdentifier {
  const scheme = signatureSchemeFor(key);
  // RSA signature algorithms carry explicit NULL parameters (RFC 4055); ECDSA ones carry none (RFC 5758).
  return new AlgorithmIdentifier(scheme.nullParams ? { algorithm: scheme.oid, parameters: null } : { algorithm: scheme.oid });
}

/** A standalone ArrayBuffer copy of `bytes` (what the ASN.1 schema classes hold). */
export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const ab = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(ab).set(bytes);
  return ab;
}

/** Signs `tbs` with `key` the way X.509 wants (DER-encoded ECDSA signatures). */
export function signDer(key: KeyObject, tbs: Uint8Array): Buffer {
  const scheme = signatureSchemeFor(key);
  return sign(scheme.hash, tbs, key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'der' } : key);
}

/** Builds, signs and re-parses (as a self-check) one certificate. */
export function buildCertificate(t: CertificateTemplate): BuiltCertificate {
  const signingKey = t.signer?.key ?? t.selfKey;
  if (signingKey === undefined) throw new Error('a self-signed certificate needs its private key');
  const subject = buildName(t.subject);
  const spki = AsnConvert.parse(spkiDer(t.publicKey), SubjectPublicKeyInfo);
  const ownKeyId = createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest();
  const exts: Extension[] = [];
  if (t.role.kind === 'ca') {
    exts.push(extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: true, ...(t.role.pathLen !== undefined ? { pathLenConstraint: t.role.pathLen } : {}) })));
    exts.push(extension(id_ce_keyUsage, true, new KeyUsage(t.keyUsage ?? KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)));
  } else {
    exts.push(extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: false })));
    const usage = KeyUsageFlags.digitalSignature | (t.publicKey.asymmetricKeyType === 'rsa' ? KeyUsageFlags.keyEncipherment : 0);
    exts.push(extension(id_ce_keyUsage, true, new KeyUsage(t.keyUsage ?? usage)));
    exts.push(extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_serverAuth, id_kp_clientAuth])));
  }
  exts.push(extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(ownKeyId)));
  if (t.signer !== undefined) {
    exts.push(extension(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(t.signer.keyId) })));
  }
  const names = [
    ...t.uris.map((u) => new GeneralName({ uniformResourceIdentifier: u })),
    ...(t.dnsNames ?? []).map((d) => new GeneralName({ dNSName: d })),
    ...(t.ipAddresses ?? []).map((ip) => new GeneralName({ iPAddress: ip })),
  ];
  if (names.length > 0) {
    // SPIFFE X509-SVID §4.1: with a non-empty subject the SAN need not be critical.
    exts.push(extension(id_ce_subjectAltName, false, new SubjectAlternativeName(names)));
  }
  const sigAlg = algorithm(signingKey);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: randomSerial(),
    signature: sigAlg,
    issuer: t.signer?.name ?? subject,
    validity: new Validity({ notBefore: new Date(t.notBefore), notAfter: new Date(t.notAfter) }),
    subject,
    subjectPublicKeyInfo: spki,
    extensions: new Extensions(exts),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = signDer(signingKey, tbsDer);
  const certAsn = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: sigAlg, signatureValue: toArrayBuffer(signature) });
  const der = Buffer.from(AsnConvert.serialize(certAsn));
  const cert = new X509Certificate(der);
  return { der, pem: pemEncode('CERTIFICATE', der), cert };
}
