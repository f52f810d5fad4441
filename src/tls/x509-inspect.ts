/**
 * Reads the X.509 facts the SPIFFE checks need and node:crypto does not expose: the exact list
 * of URI SANs (Node's `subjectAltName` is an escaped display string), basicConstraints and the
 * keyUsage bits (Node 20's `X509Certificate.keyUsage` is the *extended* key usage).
 *
 * This runs on every handshake (both sides), so it is a small DER walk rather than a schema
 * parse: about 5 µs instead of the ~0.5 ms @peculiar/asn1-schema takes (bench/tls.ts). It
 * reads only certificates OpenSSL has already verified, yet still bounds itself: `der-guard`
 * checks the whole structure first, and every read is bounds-checked.
 */
import { derProblem } from './der-guard.js';

/** What a certificate says about itself, for identity checks. */
export interface CertificateFacts {
  /** basicConstraints cA; false when the extension is absent (RFC 5280 default). */
  readonly ca: boolean;
  /** keyUsage bits, numbered as `KeyUsageFlags` of @peculiar/asn1-x509 (bit n = 1 << n), or undefined when absent. */
  readonly keyUsage: number | undefined;
  /** Every URI SAN, in order. */
  readonly uris: readonly string[];
  /** Number of SAN entries of any kind. */
  readonly sanCount: number;
}

/** keyUsage bits as `KeyUsageFlags` numbers them. */
export const KEY_USAGE = { digitalSignature: 1, keyEncipherment: 4, keyCertSign: 32, cRLSign: 64 } as const;

const MAX_CERT_DEPTH = 32;
// DER of the extension OIDs: 2.5.29.19, 2.5.29.15, 2.5.29.17.
const OID_BASIC_CONSTRAINTS = '551d13';
const OID_KEY_USAGE = '551d0f';
const OID_SAN = '551d11';

interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

/** One TLV at `pos` (low-tag-number form only: X.509 uses nothing else). */
function tlv(b: Uint8Array, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new Error('truncated');
  const tag = b[pos] as number;
  if ((tag & 0x1f) === 0x1f) throw new Error('unexpected high tag number');
  let len = b[pos + 1] as number;
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new Error('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (b[start + i] as number);
    start += n;
  }
  const end = start + len;
  if (end > limit) throw new Error('length overruns');
  return { tag, start, end };
}

function children(b: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.start; p < parent.end; ) {
    const t = tlv(b, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (t === undefined || t.tag !== tag) throw new Error(`expected ${what}`);
  return t;
}

function hex(b: Uint8Array, t: Tlv): string {
  return Buffer.from(b.buffer, b.byteOffset + t.start, t.end - t.start).toString('hex');
}

/** Parses `der` (one certificate) into the facts above; throws on a structure it cannot read. */
export function certificateFacts(der: Uint8Array): CertificateFacts {
  const problem = derProblem(der, MAX_CERT_DEPTH);
  if (problem !== undefined) throw new Error(`certificate is not valid DER: ${problem}`);
  const cert = expect(tlv(der, 0, der.length), 0x30, 'Certificate SEQUENCE');
  const tbs = expect(children(der, cert)[0], 0x30, 'TBSCertificate SEQUENCE');
  const extsWrapper = children(der, tbs).find((t) => t.tag === 0xa3);
  let ca = false;
  let keyUsage: number | undefined;
  const uris: string[] = [];
  let sanCount = 0;
  if (extsWrapper === undefined) return { ca, keyUsage, uris, sanCount };
  const exts = expect(children(der, extsWrapper)[0], 0x30, 'Extensions SEQUENCE');
  const seen = new Set<string>();
  for (const ext of children(der, exts)) {
    const parts = children(der, expect(ext, 0x30, 'Extension SEQUENCE'));
    const oid = hex(der, expect(parts[0], 0x06, 'extension OID'));
    // RFC 5280 §4.2: a certificate must not include an extension more than once.
    if (seen.has(oid)) throw new Error(`extension ${oid} appears twice`);
    seen.add(oid);
    const value = expect(parts[parts.length - 1], 0x04, 'extension value OCTET STRING');
    if (oid === OID_BASIC_CONSTRAINTS) {
      const seq = expect(tlv(der, value.start, value.end), 0x30, 'BasicConstraints SEQUENCE');
      const first = children(der, seq)[0];
      ca = first !== undefined && first.tag === 0x01 && first.end > first.start && der[first.start] !== 0;
    } else if (oid === OID_KEY_USAGE) {
      const bits = expect(tlv(der, value.start, value.end), 0x03, 'KeyUsage BIT STRING');
      let flags = 0;
      for (let i = 0; i < 9; i++) {
        const byte = bits.start + 1 + (i >> 3);
        if (byte < bits.end && ((der[byte] as number) & (0x80 >> (i & 7))) !== 0) flags |= 1 << i;
      }
      keyUsage = flags;
    } else if (oid === OID_SAN) {
      const names = children(der, expect(tlv(der, value.start, value.end), 0x30, 'GeneralNames SEQUENCE'));
      sanCount = names.length;
      for (const n of names) {
        if (n.tag !== 0x86) continue; // [6] uniformResourceIdentifier, IA5String
        const bytes = der.subarray(n.start, n.end);
        if (bytes.some((c) => c > 0x7e || c < 0x20)) throw new Error('URI SAN with non-printable or non-ASCII bytes');
        uris.push(Buffer.from(bytes).toString('latin1'));
      }
    }
  }
  return { ca, keyUsage, uris, sanCount };
}
