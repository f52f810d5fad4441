/**
 * The CA (RELIABILITY B3, B4, B5, B8): anchor/issuer split, files and their modes, an
 * encrypted anchor key, leaf shape (one URI SAN, CA=false, key usages, backdated NotBefore,
 * NotAfter capped by the issuer), an expired issuer refusing to issue and naming itself, issuer
 * rotation, and two-anchor bundles.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { ConfigInvalidError, isTrellisError } from '../../src/core/errors.js';
import { CA_FILES, loadAuthority, saveAuthority } from '../../src/tls/authority-files.js';
import { BACKDATE_MS, createAuthority, issueLeaf, mergeBundles, rotateIssuer, withTrustBundle, type Authority } from '../../src/tls/authority.js';
import { chainProblem } from '../../src/tls/chain.js';
import { generateP256KeyPair } from '../../src/tls/keys.js';
import { splitCertificates } from '../../src/tls/pem.js';
import { certificateFacts } from '../../src/tls/x509-inspect.js';
import { realTimeManualClock } from './fixtures.js';

const TD = 'example.org';
const HOUR = 3_600_000;

describe('authority', () => {
  let dir: string;
  let clock: ManualClock;
  let ca: Authority;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-ca-'));
    clock = realTimeManualClock();
    ca = await createAuthority({ trustDomain: TD, issuerTtlMs: 48 * HOUR }, clock);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('makes a self-signed anchor and an issuer under it, both for the trust domain', () => {
    assert.equal(ca.trustDomain, TD);
    assert.ok(ca.anchor.cert.ca && ca.issuer.cert.ca);
    assert.ok(ca.anchor.cert.verify(ca.anchor.cert.publicKey));
    assert.ok(ca.issuer.cert.verify(ca.anchor.cert.publicKey));
    assert.ok(ca.issuer.notAfter <= ca.anchor.notAfter);
    assert.ok(Math.abs(ca.anchor.notAfter - (clock.wall() + 3650 * 24 * HOUR)) < 2000, 'anchor defaults to 10 years');
    assert.deepEqual(certificateFacts(ca.issuer.der).uris, ['spiffe://example.org']);
    assert.equal(splitCertificates(ca.bundlePem).length, 1);
  });

  it('issues leaves with exactly the identity, CA=false, backdated NotBefore', async () => {
    const k = await generateP256KeyPair();
    const l = issueLeaf(ca, { service: 'checkout', publicKey: k.publicKey, ttlMs: HOUR }, clock);
    const [leafPem, issuerPem] = splitCertificates(l.certificateChainPem);
    const cert = new X509Certificate(leafPem as string);
    assert.equal(issuerPem, ca.issuer.pem);
    assert.equal(cert.subjectAltName, 'URI:spiffe://example.org/svc/checkout');
    assert.equal(cert.ca, false);
    const facts = certificateFacts(cert.raw);
    assert.equal(facts.ca, false);
    assert.equal(facts.keyUsage, 1, 'digitalSignature only for an EC key');
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'serverAuth + clientAuth');
    assert.ok(cert.checkIssued(ca.issuer.cert) && cert.verify(ca.issuer.cert.publicKey));
    assert.ok(cert.checkPrivateKey(k.privateKey));
    // Backdated by 60 s (certificate times have 1 s resolution).
    assert.ok(Math.abs(Date.parse(cert.validFrom) - (clock.wall() - BACKDATE_MS)) < 1500);
    assert.ok(Math.abs(l.notAfter - (clock.wall() + HOUR)) < 1500);
    assert.equal(chainProblem([cert, ca.issuer.cert], [ca.anchor.cert]), undefined);
  });

  it('adds keyEncipherment for RSA keys', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const k = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const l = issueLeaf(ca, { service: 'legacy', publicKey: k.publicKey, ttlMs: HOUR }, clock);
    assert.equal(certificateFacts(new X509Certificate(l.certPem).raw).keyUsage, 1 | 4);
  });

  it('never issues past the issuer, and refuses once the issuer expired, naming it', async () => {
    const k = await generateP256KeyPair();
    const l = issueLeaf(ca, { service: 'checkout', publicKey: k.publicKey, ttlMs: 100 * HOUR }, clock);
    assert.ok(l.notAfter <= ca.issuer.notAfter);
    const later = new ManualClock(0, clock.wall());
    later.advance(49 * HOUR);
    assert.throws(
      () => issueLeaf(ca, { service: 'checkout', publicKey: k.publicKey, ttlMs: HOUR }, later),
      (err: unknown) => isTrellisError(err, 'TRELLIS_CONFIG_INVALID') && /issuer\.pem.*Trellis issuer .* expired at \d{4}-\d\d-\d\dT.*NotAfter/.test((err as Error).message),
    );
  });

  it('saves files with the right modes and loads them back', async () => {
    const d = join(dir, 'plain');
    await saveAuthority(ca, d);
    const mode = async (f: string): Promise<number> => (await stat(join(d, f))).mode & 0o777;
    assert.equal(await mode(CA_FILES.issuerKey), 0o600);
    assert.equal(await mode(CA_FILES.anchorKey), 0o600);
    assert.equal(await mode(CA_FILES.anchorCert), 0o644);
    assert.equal((await stat(d)).mode & 0o777, 0o700);
    const loaded = await loadAuthority(d);
    assert.equal(loaded.trustDomain, TD);
    assert.equal(loaded.issuer.pem, ca.issuer.pem);
    assert.ok(loaded.anchor.key !== undefined);
    await assert.rejects(saveAuthority(ca, d), (err: unknown) => isTrellisError(err, 'TRELLIS_CONFIG_INVALID') && /already holds a CA/.test((err as Error).message));
  });

  it('encrypts the anchor key with a passphrase; loads without it for issuing only', async () => {
    const d = join(dir, 'encrypted');
    await saveAuthority(ca, d, { anchorPassphrase: 'correct horse battery' });
    assert.match(await readFile(join(d, CA_FILES.anchorKey), 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
    const noPass = await loadAuthority(d);
    assert.equal(noPass.anchor.key, undefined);
    const k = await generateP256KeyPair();
    assert.ok(issueLeaf(noPass, { service: 'a', publicKey: k.publicKey, ttlMs: HOUR }, clock).certPem);
    await assert.rejects(rotateIssuer(noPass, {}, clock), /anchor key/);
    const withPass = await loadAuthority(d, { anchorPassphrase: 'correct horse battery' });
    assert.ok(withPass.anchor.key !== undefined);
    await assert.rejects(loadAuthority(d, { anchorPassphrase: 'wrong passphrase' }), (err: unknown) => err instanceof ConfigInvalidError && /anchor\.key/.test(err.message));
  });

  it('names the file at fault when a CA directory is inconsistent', async () => {
    const d = join(dir, 'broken');
    await saveAuthority(ca, d);
    const other = await createAuthority({ trustDomain: TD }, clock);
    await writeFile(join(d, CA_FILES.issuerCert), other.issuer.pem);
    await assert.rejects(loadAuthority(d), (err: unknown) => err instanceof ConfigInvalidError && err.issues[0]?.file === join(d, CA_FILES.issuerKey));
    await writeFile(join(d, CA_FILES.issuerCert), 'garbage');
    await assert.rejects(loadAuthority(d), (err: unknown) => err instanceof ConfigInvalidError && err.issues[0]?.file === join(d, CA_FILES.issuerCert));
    await assert.rejects(loadAuthority(join(dir, 'missing')), (err: unknown) => err instanceof ConfigInvalidError && /ENOENT/.test(err.message));
  });

  it('rotates the issuer under the same anchor', async () => {
    const rotated = await rotateIssuer(ca, { issuerTtlMs: 24 * HOUR }, clock);
    assert.notEqual(rotated.issuer.pem, ca.issuer.pem);
    assert.equal(rotated.anchor.pem, ca.anchor.pem);
    const k = await generateP256KeyPair();
    const l = issueLeaf(rotated, { service: 'a', publicKey: k.publicKey, ttlMs: HOUR }, clock);
    const chain = splitCertificates(l.certificateChainPem).map((p) => new X509Certificate(p));
    assert.equal(chainProblem(chain, [ca.anchor.cert]), undefined);
  });

  it('holds two anchors in the bundle during anchor rotation, and no more', async () => {
    const next = await createAuthority({ trustDomain: TD }, clock);
    const two = withTrustBundle(ca, mergeBundles(ca.bundlePem, next.bundlePem));
    assert.equal(two.anchors.length, 2);
    assert.equal(splitCertificates(two.bundlePem).length, 2);
    const third = await createAuthority({ trustDomain: TD }, clock);
    assert.throws(() => withTrustBundle(ca, mergeBundles(ca.bundlePem, next.bundlePem, third.bundlePem)), /1 or 2 anchors/);
    assert.throws(() => withTrustBundle(ca, next.bundlePem), /does not contain the anchor/);
    const d = join(dir, 'two-anchors');
    await saveAuthority(two, d);
    assert.equal((await loadAuthority(d)).anchors.length, 2);
  });
});
