/**
 * The workload identity the transports use: an `IdentityProvider` hands out the current TLS
 * material (trust bundle, certificate chain, key) and says when it changes.
 *
 * Two providers exist: `fileIdentity` (operator-managed files, reloaded when they change) and
 * `issuedIdentity` (a key made in-process, certified through a bootstrap token and renewed at
 * two thirds of the certificate's life). Both fail closed: `current()` returns undefined once
 * the certificate has expired, so a transport raises `NoIdentityError` rather than falling back
 * to plaintext (docs/reliability.md rows B2).
 *
 * Wiring note: open TLS connections keep the certificate they were made with. On 'rotated',
 * build a new secure context for new connections (`server.setSecureContext`, undici's
 * `connect`), and bound connection age so old ones drain (docs/reliability.md rows B1).
 */
import type { TlsMaterial } from './material.js';

export type { TlsMaterial } from './material.js';
export { fileIdentity, type FileIdentityPaths, type FileIdentityDeps } from './file-identity.js';
export { issuedIdentity, type IssuedIdentityParams, type IssuedIdentityDeps, type SignFunction } from './issued-identity.js';
export { localAuthoritySigner, type LocalSignerOptions } from './local-signer.js';

/** Where a workload's TLS material comes from. */
export interface IdentityProvider {
  /** The material in force, or undefined before the first one or after it expired. */
  current(): TlsMaterial | undefined;
  /**
   * Resolves with valid material as soon as there is some. Rejects when the provider is closed
   * first, or (file identities) when the files given at start are unusable or expired, with
   * an error naming the file and why.
   */
  ready(): Promise<TlsMaterial>;
  /** 'rotated' fires whenever new material replaces earlier material (not for the first). */
  on(event: 'rotated', listener: (material: TlsMaterial) => void): this;
  off(event: 'rotated', listener: (material: TlsMaterial) => void): this;
  /** Stops watching and renewing; idempotent. */
  close(): void;
}
