/**
 * What a failed mTLS handshake with an endpoint means. Two checks can refuse the server: OpenSSL's
 * chain verification against the mesh's trust bundle (a foreign CA, an expired or not yet valid
 * certificate; Node reports the X509 verify error name as `code`) and our SPIFFE check (wrong
 * service, several URI SANs, not a leaf; a PeerIdentityError from checkServerIdentity). Both mean
 * "this endpoint is not the peer we must talk to": they become TRELLIS_PEER_IDENTITY naming the
 * service, the endpoint and which check failed, with the TLS-level error as cause — never a
 * "reset" (which retries would chase) nor an opaque upstream error.
 */
import { PeerIdentityError, isTrellisError } from '../core/errors.js';

/** OpenSSL X509 verification failures, as Node names them in `err.code`. */
const CHAIN_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_CRL', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE', 'CRL_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED', 'CRL_NOT_YET_VALID', 'CRL_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD', 'ERROR_IN_CRL_LAST_UPDATE_FIELD', 'ERROR_IN_CRL_NEXT_UPDATE_FIELD', 'OUT_OF_MEM',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED', 'INVALID_CA', 'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The typed error for a failed handshake with `endpoint` of `service`, or `err` itself when it is no identity failure. */
export function tlsHandshakeFailure(err: Error, service: string, endpoint: string): Error {
  if (isTrellisError(err, 'TRELLIS_PEER_IDENTITY')) {
    return new PeerIdentityError(err.detail, { service, endpoint, cause: err });
  }
  const code = (err as Error & { code?: unknown }).code;
  if (typeof code === 'string' && CHAIN_CODES.has(code)) {
    return new PeerIdentityError(`untrusted certificate chain (${code}): ${err.message}`, { service, endpoint, cause: err });
  }
  return err;
}
