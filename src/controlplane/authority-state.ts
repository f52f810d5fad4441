/**
 * The control plane's CA, token-signing key and admin-token hash: made once, shared by every
 * replica through the store (`KEYS.authority`), and mirrored into the data directory.
 *
 * First start: the record is created with `ifModRevision: 0`, so when several replicas start
 * on one etcd at once exactly one wins and the others read the winner's (no lock). The winner
 * writes `DIR/ca/` (the CA directory layout of `trellis ca init`, keys 0600; `anchor.key` can be
 * moved offline, the control plane needs only the issuer) and `DIR/admin-token` (0600).
 * A start that finds no record but finds `DIR/ca/` seeds the store from it, so the CA and the
 * admin token survive a store that lost its state.
 *
 * The anchor key never goes into the store: only the issuer signs online (Linkerd's
 * anchor/issuer split). With a key passphrase (`--key-passphrase-env VAR`, the same on every
 * replica), the issuer and token keys are stored encrypted (PKCS#8, PBES2 with AES-256-CBC), so
 * whoever reads etcd without the passphrase cannot sign; the passphrase itself is never stored.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../core/clock.js';
import { ConfigInvalidError } from '../core/errors.js';
import { caPin } from '../controlplane-client/pin.js';
import { assembleAuthority, createAuthority, type Authority } from '../tls/authority.js';
import { loadAuthority, loadTokenKey, saveAuthority, saveTokenKey } from '../tls/authority-files.js';
import { writeFileAtomic } from '../tls/atomic-write.js';
import { privateKeyPem } from '../tls/keys.js';
import { pemDecodeAll } from '../tls/pem.js';
import { generateTokenKey } from '../tls/tokens.js';
import { adminTokenHash, createAdminToken } from './admin-token.js';
import { KEYS, StoreConflictError, type Store } from './store/store.js';

/** The value under `KEYS.authority`. */
export interface AuthorityRecord {
  readonly version: 1;
  readonly trustDomain: string;
  readonly anchorCertPem: string;
  readonly issuerCertPem: string;
  readonly issuerKeyPem: string;
  readonly bundlePem: string;
  readonly tokenKeyPem: string;
  /** Hex SHA-256 of the admin token's secret part. */
  readonly adminTokenSha256: string;
  readonly createdAt: number;
}

export interface ControlPlaneAuthority {
  readonly ca: Authority;
  readonly tokenKey: KeyObject;
  /** Pin of the CA's own anchor (what new tokens carry). */
  readonly pin: string;
  /** Pins of every anchor in the bundle. */
  readonly pins: readonly string[];
  readonly adminHash: Buffer;
  /** True when this start made the CA (and wrote the admin token). */
  readonly created: boolean;
  /** Where the admin token is, when this data directory holds it. */
  readonly adminTokenPath: string | undefined;
}

export const ADMIN_TOKEN_FILE = 'admin-token';
export const CA_DIR = 'ca';

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Parameters of reading and writing the record. */
export interface AuthorityKeyOptions {
  /** Encrypts the issuer and token keys in the store; needed to read them back. */
  readonly keyPassphrase?: string | undefined;
}

function readKey(pem: string, what: string, options: AuthorityKeyOptions): KeyObject {
  const encrypted = pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
  if (encrypted && options.keyPassphrase === undefined) {
    throw new ConfigInvalidError([{ file: `store ${KEYS.authority}`, document: 0, path: what, message: 'the key is encrypted: give the key passphrase every replica shares (--key-passphrase-env VAR)' }]);
  }
  try {
    return encrypted ? createPrivateKey({ key: pem, format: 'pem', passphrase: options.keyPassphrase }) : createPrivateKey(pem);
  } catch (err) {
    throw new ConfigInvalidError([{ file: `store ${KEYS.authority}`, document: 0, path: what, message: encrypted ? 'cannot decrypt the key: wrong key passphrase' : `cannot read the key: ${(err as Error).message}` }], { cause: err });
  }
}

function fromRecord(r: AuthorityRecord, options: AuthorityKeyOptions): { ca: Authority; tokenKey: KeyObject; adminHash: Buffer } {
  const one = (pem: string): Buffer => (pemDecodeAll(pem, 'CERTIFICATE')[0] as { der: Buffer }).der;
  const ca = assembleAuthority({
    anchorDer: one(r.anchorCertPem),
    anchorKey: undefined,
    issuerDer: one(r.issuerCertPem),
    issuerKey: readKey(r.issuerKeyPem, 'issuerKeyPem', options),
    bundleDer: pemDecodeAll(r.bundlePem, 'CERTIFICATE').map((b) => b.der),
    source: `store ${KEYS.authority}`,
  });
  return { ca, tokenKey: readKey(r.tokenKeyPem, 'tokenKeyPem', options), adminHash: Buffer.from(r.adminTokenSha256, 'hex') };
}

function toRecord(ca: Authority, tokenKey: KeyObject, adminHash: Buffer, now: number, options: AuthorityKeyOptions): AuthorityRecord {
  return {
    version: 1,
    trustDomain: ca.trustDomain,
    anchorCertPem: ca.anchor.pem,
    issuerCertPem: ca.issuer.pem,
    issuerKeyPem: privateKeyPem(ca.issuer.key, options.keyPassphrase),
    bundlePem: ca.bundlePem,
    tokenKeyPem: privateKeyPem(tokenKey, options.keyPassphrase),
    adminTokenSha256: adminHash.toString('hex'),
    createdAt: now,
  };
}

function finish(parts: { ca: Authority; tokenKey: KeyObject; adminHash: Buffer }, created: boolean, adminTokenPath: string | undefined): ControlPlaneAuthority {
  return { ...parts, pin: caPin(parts.ca.anchor.der), pins: parts.ca.anchors.map((a) => caPin(a.der)), created, adminTokenPath };
}

/**
 * Reads the shared authority, or makes it (see the file comment).
 *
 * @example const auth = await ensureAuthority(store, './cp-data', 'example.org', systemClock, console.log);
 */
export async function ensureAuthority(store: Store, dataDir: string, trustDomain: string, clock: Clock, onWarn: (m: string) => void, options: AuthorityKeyOptions = {}): Promise<ControlPlaneAuthority> {
  const tokenPath = join(dataDir, ADMIN_TOKEN_FILE);
  const caDir = join(dataDir, CA_DIR);
  const existing = await store.get<AuthorityRecord>(KEYS.authority);
  if (existing !== undefined) {
    const parts = fromRecord(existing.value, options);
    if (parts.ca.trustDomain !== trustDomain) onWarn(`the control plane's CA is for trust domain ${parts.ca.trustDomain}; the trust domain asked for (${trustDomain}) applies only when a CA is first made`);
    return finish(parts, false, (await exists(tokenPath)) ? tokenPath : undefined);
  }

  let candidate: { ca: Authority; tokenKey: KeyObject; adminHash: Buffer };
  let fresh: { admin?: string; ca: boolean } = { ca: false };
  if (await exists(join(caDir, 'ca.pem'))) {
    // The store lost its state (or never had it): the data directory's copy is the authority.
    const ca = await loadAuthority(caDir, { onWarn });
    const tokenKey = await loadTokenKey(caDir, { onWarn });
    const saved = (await exists(tokenPath)) ? adminTokenHash(await readFile(tokenPath, 'utf8')) : undefined;
    if (saved !== undefined) candidate = { ca, tokenKey, adminHash: saved };
    else {
      const admin = createAdminToken(caPin(ca.anchor.der));
      candidate = { ca, tokenKey, adminHash: admin.hash };
      fresh = { admin: admin.token, ca: false };
    }
  } else {
    const ca = await createAuthority({ trustDomain }, clock);
    const tokenKey = await generateTokenKey();
    const admin = createAdminToken(caPin(ca.anchor.der));
    candidate = { ca, tokenKey, adminHash: admin.hash };
    fresh = { admin: admin.token, ca: true };
  }

  try {
    await store.commit([{ type: 'put', key: KEYS.authority, value: toRecord(candidate.ca, candidate.tokenKey, candidate.adminHash, clock.wall(), options), ifModRevision: 0 }]);
  } catch (err) {
    if (!(err instanceof StoreConflictError)) throw err;
    // Another replica made it first: use theirs, write nothing.
    const winner = await store.get<AuthorityRecord>(KEYS.authority);
    if (winner === undefined) throw err;
    return finish(fromRecord(winner.value, options), false, (await exists(tokenPath)) ? tokenPath : undefined);
  }
  if (fresh.ca) {
    await saveAuthority(candidate.ca, caDir);
    await saveTokenKey(candidate.tokenKey, caDir);
  }
  if (fresh.admin !== undefined) await writeFileAtomic(tokenPath, `${fresh.admin}\n`, 0o600);
  return finish(candidate, fresh.admin !== undefined, tokenPath);
}
