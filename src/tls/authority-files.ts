/**
 * The CA directory: how an authority and its token-signing key are kept on disk.
 *
 * ```
 * ca.pem       trust anchor certificate                          0644
 * anchor.key   anchor private key, PKCS#8, passphrase-encrypted   0600  (may be moved offline)
 *              when a passphrase is given
 * issuer.pem   issuer certificate (signed by the anchor)         0644
 * issuer.key   issuer private key, PKCS#8                        0600
 * bundle.pem   trust bundle: 1-2 anchors                          0644
 * token.key    Ed25519 bootstrap-token signing key, PKCS#8        0600
 * ```
 *
 * Every file is written atomically (`atomic-write.ts`); the directory is created 0700. Loading
 * checks that the pieces fit (`assembleAuthority`) and names the file at fault; it loads
 * expired material too, so that it can be replaced (docs/reliability.md rows B4). Group- or world-readable
 * key files are reported through `onWarn`.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { access, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigInvalidError } from '../core/errors.js';
import { assembleAuthority, type Authority } from './authority.js';
import { writeFileAtomic } from './atomic-write.js';
import { privateKeyPem } from './keys.js';
import { pemDecodeAll } from './pem.js';

/** File names inside a CA directory. */
export const CA_FILES = {
  anchorCert: 'ca.pem',
  anchorKey: 'anchor.key',
  issuerCert: 'issuer.pem',
  issuerKey: 'issuer.key',
  bundle: 'bundle.pem',
  tokenKey: 'token.key',
} as const;

const PUBLIC_MODE = 0o644;
const SECRET_MODE = 0o600;

function invalid(file: string, message: string, cause?: unknown): ConfigInvalidError {
  return new ConfigInvalidError([{ file, document: 0, path: '', message }], cause !== undefined ? { cause } : {});
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

export interface SaveAuthorityOptions {
  /** Encrypts anchor.key with this passphrase (PBES2, AES-256-CBC). */
  readonly anchorPassphrase?: string;
  /** Replace an authority already in the directory; default false (refuse). */
  readonly overwrite?: boolean;
}

/**
 * Writes `ca` into `dir` (created 0700 if missing).
 *
 * @throws ConfigInvalidError when `dir` already holds a CA and `overwrite` is not set.
 */
export async function saveAuthority(ca: Authority, dir: string, options: SaveAuthorityOptions = {}): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (options.overwrite !== true) {
    for (const f of [CA_FILES.anchorCert, CA_FILES.issuerKey]) {
      if (await exists(join(dir, f))) throw invalid(join(dir, f), `${dir} already holds a CA; refusing to overwrite it`);
    }
  }
  if (options.anchorPassphrase !== undefined && options.anchorPassphrase.length < 8) {
    throw invalid(join(dir, CA_FILES.anchorKey), 'the anchor passphrase must be at least 8 characters');
  }
  // Keys first, certificates after: a reader never finds a certificate without its key.
  if (ca.anchor.key !== undefined) await writeFileAtomic(join(dir, CA_FILES.anchorKey), privateKeyPem(ca.anchor.key, options.anchorPassphrase), SECRET_MODE);
  await writeFileAtomic(join(dir, CA_FILES.issuerKey), privateKeyPem(ca.issuer.key), SECRET_MODE);
  await writeFileAtomic(join(dir, CA_FILES.anchorCert), ca.anchor.pem, PUBLIC_MODE);
  await writeFileAtomic(join(dir, CA_FILES.issuerCert), ca.issuer.pem, PUBLIC_MODE);
  await writeFileAtomic(join(dir, CA_FILES.bundle), ca.bundlePem, PUBLIC_MODE);
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw invalid(path, code === 'ENOENT' ? 'cannot read: ENOENT, no such file (is this a CA directory made by `trellis ca init`?)' : `cannot read: ${code ?? (err as Error).message}`, err);
  }
}

function oneCertificate(path: string, text: string): Buffer {
  let blocks;
  try {
    blocks = pemDecodeAll(text, 'CERTIFICATE');
  } catch (err) {
    throw invalid(path, (err as Error).message, err);
  }
  if (blocks.length !== 1) throw invalid(path, `expected one PEM certificate, found ${blocks.length}`);
  return (blocks[0] as { der: Buffer }).der;
}

async function warnIfLoose(path: string, onWarn: ((m: string) => void) | undefined): Promise<void> {
  if (onWarn === undefined || process.platform === 'win32') return;
  const s = await stat(path);
  if ((s.mode & 0o077) !== 0) onWarn(`${path} is readable by group or others (mode ${(s.mode & 0o777).toString(8)}); it should be 0600`);
}

function parseKey(path: string, pem: string, passphrase?: string): KeyObject {
  try {
    return createPrivateKey(passphrase !== undefined ? { key: pem, format: 'pem', passphrase } : { key: pem, format: 'pem' });
  } catch (err) {
    throw invalid(path, `not a usable private key${passphrase !== undefined ? ' (or a wrong passphrase)' : ''}: ${(err as Error).message}`, err);
  }
}

export interface LoadAuthorityOptions {
  /** Passphrase of an encrypted anchor.key; without it the anchor key stays unloaded. */
  readonly anchorPassphrase?: string;
  readonly onWarn?: (message: string) => void;
}

/**
 * Reads the authority in `dir`. A missing anchor.key, or an encrypted one without its
 * passphrase, leaves `anchor.key` undefined: issuing leaves needs only the issuer key.
 *
 * @throws ConfigInvalidError naming the file that is missing, unreadable or inconsistent.
 */
export async function loadAuthority(dir: string, options: LoadAuthorityOptions = {}): Promise<Authority> {
  const p = (f: string): string => join(dir, f);
  const anchorDer = oneCertificate(p(CA_FILES.anchorCert), await readText(p(CA_FILES.anchorCert)));
  const issuerDer = oneCertificate(p(CA_FILES.issuerCert), await readText(p(CA_FILES.issuerCert)));
  await warnIfLoose(p(CA_FILES.issuerKey), options.onWarn);
  const issuerKey = parseKey(p(CA_FILES.issuerKey), await readText(p(CA_FILES.issuerKey)));
  let anchorKey: KeyObject | undefined;
  if (await exists(p(CA_FILES.anchorKey))) {
    await warnIfLoose(p(CA_FILES.anchorKey), options.onWarn);
    const pem = await readText(p(CA_FILES.anchorKey));
    const encrypted = pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
    if (!encrypted || options.anchorPassphrase !== undefined) anchorKey = parseKey(p(CA_FILES.anchorKey), pem, encrypted ? options.anchorPassphrase : undefined);
  }
  let bundleDer: Buffer[] | undefined;
  if (await exists(p(CA_FILES.bundle))) {
    try {
      bundleDer = pemDecodeAll(await readText(p(CA_FILES.bundle)), 'CERTIFICATE').map((b) => b.der);
    } catch (err) {
      throw invalid(p(CA_FILES.bundle), (err as Error).message, err);
    }
  }
  try {
    return assembleAuthority({ anchorDer, anchorKey, issuerDer, issuerKey, ...(bundleDer !== undefined ? { bundleDer } : {}), source: dir });
  } catch (err) {
    if (err instanceof ConfigInvalidError) throw err;
    throw invalid(dir, `cannot read the CA: ${(err as Error).message}`, err);
  }
}

/** Writes the token-signing key into `dir` (0600); refuses to replace one unless `overwrite`. */
export async function saveTokenKey(key: KeyObject, dir: string, options: { overwrite?: boolean } = {}): Promise<void> {
  const path = join(dir, CA_FILES.tokenKey);
  if (options.overwrite !== true && (await exists(path))) throw invalid(path, 'a token key already exists; refusing to overwrite it (every token signed with it would stop working)');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, privateKeyPem(key), SECRET_MODE);
}

/** Reads the Ed25519 token-signing key of the CA directory `dir`. */
export async function loadTokenKey(dir: string, options: { onWarn?: (m: string) => void } = {}): Promise<KeyObject> {
  const path = join(dir, CA_FILES.tokenKey);
  const pem = await readText(path);
  await warnIfLoose(path, options.onWarn);
  const key = parseKey(path, pem);
  if (key.asymmetricKeyType !== 'ed25519') throw invalid(path, `expected an Ed25519 key, found ${key.asymmetricKeyType ?? 'unknown'}`);
  return key;
}
