/**
 * Hostile certificate signing requests for the CA tests (RELIABILITY B6, B8): a properly
 * self-signed CSR asking for another identity, extra SANs, CA:true and keyCertSign, and deeply
 * nested DER. Shared by test/tls/signer.test.ts and the fault matrix (test/faults/).
 */
import { sign as cryptoSign } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import {
  AlgorithmIdentifier,
  Attribute,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Extension,
  Extensions,
  GeneralName,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
} from '@peculiar/asn1-x509';
import { OID_ECDSA_SHA256, spkiDer, type KeyPair } from '../../src/tls/keys.js';
import { pemEncode } from '../../src/tls/pem.js';
import { toArrayBuffer } from '../../src/tls/x509-build.js';

/** A P-256 CSR that asks for everything it should not get, signed properly by its key. */
export function greedyCsr(keys: KeyPair): string {
  const ext = (id: string, critical: boolean, v: unknown): Extension => new Extension({ extnID: id, critical, extnValue: new OctetString(AsnConvert.serialize(v)) });
  const wanted = new Extensions([
    ext('2.5.29.17', false, new SubjectAlternativeName([new GeneralName({ uniformResourceIdentifier: 'spiffe://example.org/svc/payments' }), new GeneralName({ dNSName: 'payments.internal' })])),
    ext('2.5.29.19', true, new BasicConstraints({ cA: true })),
    ext('2.5.29.15', true, new KeyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign | KeyUsageFlags.digitalSignature)),
  ]);
  const info = new CertificationRequestInfo({
    version: 0,
    subject: new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: '2.5.4.3', value: new AttributeValue({ utf8String: 'payments' }) })])]),
    subjectPKInfo: AsnConvert.parse(spkiDer(keys.publicKey), SubjectPublicKeyInfo),
    attributes: new Attributes([new Attribute({ type: '1.2.840.113549.1.9.14', values: [AsnConvert.serialize(wanted)] })]),
  });
  const infoDer = Buffer.from(AsnConvert.serialize(info));
  const sig = cryptoSign('sha256', infoDer, { key: keys.privateKey, dsaEncoding: 'der' });
  const csr = new CertificationRequest({ certificationRequestInfo: info, signatureAlgorithm: new AlgorithmIdentifier({ algorithm: OID_ECDSA_SHA256 }), signature: toArrayBuffer(sig) });
  return pemEncode('CERTIFICATE REQUEST', new Uint8Array(AsnConvert.serialize(csr)));
}

/** `depth` nested SEQUENCEs around a NULL, as DER. */
export function nestedDer(depth: number): Buffer {
  let inner = Buffer.from([0x05, 0x00]);
  for (let i = 0; i < depth; i++) {
    const n = inner.length;
    const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
    inner = Buffer.concat([Buffer.from([0x30]), len, inner]);
  }
  return inner;
}

