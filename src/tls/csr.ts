/**
 * Certificate signing requests (PKCS#10, RFC 2986): building one for our own key, and reading
 * one from a caller the CA has already authenticated by token.
 *
 * Reading is the hostile-input path (docs/reliability.md rows B6), so it is bounded before any parser runs:
 * at most 16 KiB of PEM, one CERTIFICATE REQUEST block, DER shape and depth checked by
 * `der-guard` (iterative) before @peculiar/asn1-schema sees it. Then the public key is parsed
 * by OpenSSL, must be P-256 or RSA ≥ 2048 with e = 65537, and the self-signature must verify
 * with an algorithm matching the key. Nothing else in the request (subject, SANs, extensions)
 * is returned: the CA takes the identity from the token.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, Name, RelativeDistinguishedName, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { CsrInvalidError, type TrellisError } from '../core/errors.js';
import { derProblem } from './der-guard.js';
import { hashForSignatureOid, signatureSchemeFor, spkiDer, weakKeyProblem, type KeyPair } from './keys.js';
import { pemDecodeAll, pemEncode } from './pem.js';
import { signDer, toArrayBuffer } from './x509-build.js';

/** Largest CSR accepted, as PEM text (a P-256 CSR is about 400 bytes, RSA-4096 about 1.7 KiB). */
export const MAX_CSR_BYTES = 16 * 1024;
/** Deepest ASN.1 nesting accepted in a CSR (a normal one is about 8 levels). */
export const MAX_CSR_DEPTH = 16;

const OID_CN = '2.5.4.3';

/** Builds a PEM CSR for `keys`, subject CN = `commonName`. The CA ignores everything but the key. */
export function buildCsr(keys: KeyPair, commonName: string): string {
  const scheme = signatureSchemeFor(keys.privateKey);
  const info = new CertificationRequestInfo({
    version: 0,
    subject: new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: OID_CN, value: new AttributeValue({ utf8String: commonName }) })])]),
    subjectPKInfo: AsnConvert.parse(spkiDer(keys.publicKey), SubjectPublicKeyInfo),
    attributes: new Attributes(),
  });
  const infoDer = Buffer.from(AsnConvert.serialize(info));
  const sig = signDer(keys.privateKey, infoDer);
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: new AlgorithmIdentifier(scheme.nullParams ? { algorithm: scheme.oid, parameters: null } : { algorithm: scheme.oid }),
    signature: toArrayBuffer(sig),
  });
  return pemEncode('CERTIFICATE REQUEST', new Uint8Array(AsnConvert.serialize(csr)));
}

/** What the CA takes from a CSR: only its public key. */
export interface ParsedCsr {
  readonly publicKey: KeyObject;
}

function refuse(reason: string, cause?: unknown): TrellisError {
  return new CsrInvalidError(`certificate signing request refused: ${reason}`, cause !== undefined ? { cause } : {});
}

/**
 * Reads and checks an untrusted PEM CSR. Call only after the caller's token was accepted.
 *
 * @throws CsrInvalidError: too large, not PEM, malformed or too deep DER, bad self-signature,
 *   unsupported signature algorithm, weak or unsupported key.
 */
export function parseCsr(pem: string): ParsedCsr {
  if (typeof pem !== 'string' || pem.length === 0) throw refuse('missing');
  if (pem.length > MAX_CSR_BYTES || Buffer.byteLength(pem) > MAX_CSR_BYTES) throw refuse(`larger than ${MAX_CSR_BYTES} bytes`);
  let blocks;
  try {
    blocks = pemDecodeAll(pem).filter((b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST');
  } catch (err) {
    throw refuse((err as Error).message, err);
  }
  if (blocks.length !== 1) throw refuse(`expected one PEM "CERTIFICATE REQUEST" block, found ${blocks.length}`);
  const der = (blocks[0] as { der: Buffer }).der;
  const shape = derProblem(der, MAX_CSR_DEPTH);
  if (shape !== undefined) throw refuse(`malformed DER: ${shape}`);

  let csr: CertificationRequest;
  try {
    csr = AsnConvert.parse(der, CertificationRequest);
  } catch (err) {
    throw refuse(`malformed PKCS#10 structure: ${(err as Error).message}`, err);
  }
  const infoRaw = csr.certificationRequestInfoRaw;
  if (infoRaw === undefined) throw refuse('malformed PKCS#10 structure (no request info)');
  if (csr.certificationRequestInfo.version !== 0) throw refuse(`unsupported version ${csr.certificationRequestInfo.version}`);

  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo.subjectPKInfo)), format: 'der', type: 'spki' });
  } catch (err) {
    throw refuse(`unreadable public key: ${(err as Error).message}`, err);
  }
  const weak = weakKeyProblem(publicKey);
  if (weak !== undefined) throw refuse(weak);

  const hash = hashForSignatureOid(csr.signatureAlgorithm.algorithm, publicKey.asymmetricKeyType);
  if (hash === undefined) throw refuse(`signature algorithm ${csr.signatureAlgorithm.algorithm} is not accepted for a ${publicKey.asymmetricKeyType ?? 'unknown'} key`);
  let ok = false;
  try {
    const sig = Buffer.from(csr.signature);
    ok = verify(hash, Buffer.from(infoRaw), publicKey.asymmetricKeyType === 'ec' ? { key: publicKey, dsaEncoding: 'der' } : publicKey, sig);
  } catch {
    ok = false;
  }
  if (!ok) throw refuse('bad self-signature (the request was not signed by the key it carries)');
  return { publicKey };
}
