/**
 * PEM text ⇄ DER bytes (RFC 7468), for certificates, bundles, CSRs and keys.
 *
 * Decoding is strict where it matters for untrusted input: only the wanted label is taken,
 * each block's base64 must be well formed, and the caller caps the input size before calling.
 * Text outside the blocks (comments, `openssl x509 -text` dumps) is ignored, as OpenSSL does.
 */

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n\t ]*?)-----END \1-----/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** One decoded PEM block. */
export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

/** Encodes DER bytes as one PEM block with 64-column lines. */
export function pemEncode(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * Every PEM block in `text`, optionally only those labelled `label`. A block whose body is not
 * valid base64 throws (a truncated file must not read as "one certificate fewer").
 */
export function pemDecodeAll(text: string, label?: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const l = m[1] ?? '';
    if (label !== undefined && l !== label) continue;
    const body = (m[2] ?? '').replace(/[\r\n\t ]/g, '');
    if (!BASE64.test(body) || body.length % 4 !== 0) throw new Error(`malformed PEM block "${l}": bad base64`);
    out.push({ label: l, der: Buffer.from(body, 'base64') });
  }
  return out;
}

/** The certificates of a PEM chain or bundle, in file order, each re-encoded as its own PEM. */
export function splitCertificates(text: string): string[] {
  return pemDecodeAll(text, 'CERTIFICATE').map((b) => pemEncode('CERTIFICATE', b.der));
}
