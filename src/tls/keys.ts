/**
 * Key pairs and the signature algorithm each key signs with, all through node:crypto (OpenSSL).
 *
 * Trellis generates ECDSA P-256 keys (see docs/identity.md for the measurements behind the
 * choice). RSA keys are accepted from CSRs (≥ 2048 bits, e = 65537) so that workloads with
 * RSA-only tooling can still join; nothing else is.
 */
import { createHash, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

/** A private key and its public half. */
export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** Generates an ECDSA P-256 key pair (off the event loop, in libuv's thread pool). */
export async function generateP256KeyPair(): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKey };
}

export const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
export const OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
export const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
export const OID_ECDSA_SHA384 = '1.2.840.10045.4.3.3';
export const OID_RSA_SHA256 = '1.2.840.113549.1.1.11';
export const OID_RSA_SHA384 = '1.2.840.113549.1.1.12';
export const OID_RSA_SHA512 = '1.2.840.113549.1.1.13';

/** The hash a signature-algorithm OID implies, for the key type it belongs to; undefined if refused. */
export function hashForSignatureOid(oid: string, keyType: string | undefined): string | undefined {
  if (keyType === 'ec') return oid === OID_ECDSA_SHA256 ? 'sha256' : oid === OID_ECDSA_SHA384 ? 'sha384' : undefined;
  if (keyType === 'rsa') {
    if (oid === OID_RSA_SHA256) return 'sha256';
    if (oid === OID_RSA_SHA384) return 'sha384';
    if (oid === OID_RSA_SHA512) return 'sha512';
  }
  return undefined;
}

/** Why a public key may not be certified, or undefined when it may (P-256, or RSA ≥ 2048 with e = 65537). */
export function weakKeyProblem(key: KeyObject): string | undefined {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') {
    return d?.namedCurve === 'prime256v1' ? undefined : `EC curve ${d?.namedCurve ?? 'unknown'} is not accepted (P-256 only)`;
  }
  if (key.asymmetricKeyType === 'rsa') {
    if ((d?.modulusLength ?? 0) < 2048) return `RSA key of ${d?.modulusLength ?? 0} bits is too short (2048 at least)`;
    if (d?.publicExponent !== 65537n) return `RSA public exponent ${String(d?.publicExponent)} is refused (65537 only)`;
    return undefined;
  }
  return `key type ${key.asymmetricKeyType ?? 'unknown'} is not accepted (EC P-256 or RSA)`;
}

/** How a key signs a certificate or CSR: algorithm OID, hash, and whether the OID carries NULL parameters. */
export interface SignatureScheme {
  readonly oid: string;
  readonly hash: string;
  readonly nullParams: boolean;
}

/** The signature scheme Trellis signs with for `key` (ECDSA-SHA256 for P-256, RSA-SHA256 PKCS#1 v1.5 for RSA). */
export function signatureSchemeFor(key: KeyObject): SignatureScheme {
  if (key.asymmetricKeyType === 'ec') return { oid: OID_ECDSA_SHA256, hash: 'sha256', nullParams: false };
  if (key.asymmetricKeyType === 'rsa') return { oid: OID_RSA_SHA256, hash: 'sha256', nullParams: true };
  throw new Error(`cannot sign with a ${key.asymmetricKeyType ?? 'unknown'} key`);
}

/** The SubjectPublicKeyInfo of a key, as DER. */
export function spkiDer(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

/** PKCS#8 PEM of a private key, optionally encrypted (PBES2: PBKDF2 + AES-256-CBC, as OpenSSL writes it). */
export function privateKeyPem(key: KeyObject, passphrase?: string): string {
  if (passphrase === undefined) return key.export({ type: 'pkcs8', format: 'pem' }) as string;
  return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
}

/** A short, stable fingerprint of a public key (SHA-256 of its SPKI, hex), for logs and key ids. */
export function keyFingerprint(key: KeyObject): string {
  return createHash('sha256').update(spkiDer(key)).digest('hex');
}

/** "EC P-256" or "RSA-2048": for messages. */
export function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') return `EC ${d?.namedCurve === 'prime256v1' ? 'P-256' : (d?.namedCurve ?? '?')}`;
  if (key.asymmetricKeyType === 'rsa') return `RSA-${d?.modulusLength ?? '?'}`;
  return key.asymmetricKeyType ?? 'unknown';
}
