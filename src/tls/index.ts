/**
 * Workload identity and mTLS building blocks: SPIFFE IDs and SVID checks, the CA (anchor +
 * issuer), bootstrap tokens, CSR signing, and identity providers. The public entry
 * (`src/index.ts`) re-exports what users need; transports import from here.
 */
export { spiffeIdFor, parseSpiffeId, verifySvid, verifyPeerCertificate, checkServerIdentityFor, peerIdentity, isServiceName, isTrustDomain, type SpiffeId, type PeerIdentity } from './spiffe.js';
export {
  createAuthority,
  rotateIssuer,
  withTrustBundle,
  mergeBundles,
  issueLeaf,
  issuingLimit,
  authorityWarnings,
  assembleAuthority,
  DEFAULT_ANCHOR_TTL_MS,
  DEFAULT_ISSUER_TTL_MS,
  BACKDATE_MS,
  MAX_ANCHORS,
  type Authority,
  type AuthorityParams,
  type CaCertificate,
  type LeafRequest,
  type IssuedLeaf,
} from './authority.js';
export { saveAuthority, loadAuthority, saveTokenKey, loadTokenKey, CA_FILES, type SaveAuthorityOptions, type LoadAuthorityOptions } from './authority-files.js';
export { createToken, verifyToken, generateTokenKey, tokenKeyId, TOKEN_AUDIENCE, DEFAULT_TOKEN_TTL_MS, MAX_TOKEN_TTL_MS, type VerifiedToken, type TokenParams, type VerifyTokenOptions } from './tokens.js';
export { signCsr, type SignRequest, type SignerParams, type SignResult } from './signer.js';
export { buildCsr, parseCsr, MAX_CSR_BYTES } from './csr.js';
export { generateP256KeyPair, privateKeyPem, type KeyPair } from './keys.js';
export { materialFromPem, MaterialError, type TlsMaterial } from './material.js';
export { fileIdentity, issuedIdentity, localAuthoritySigner, type IdentityProvider, type FileIdentityPaths, type FileIdentityDeps, type IssuedIdentityParams, type IssuedIdentityDeps, type SignFunction, type LocalSignerOptions } from './identity.js';
export { DEFAULT_CERTIFICATE_TTL_MS } from './local-signer.js';
