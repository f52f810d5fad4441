/**
 * Identity providers (RELIABILITY B1, B2, B4, B5). fileIdentity: serves checked files, reloads
 * on change and emits 'rotated', keeps the old material (with a warning naming the file) when
 * a new file is bad, warns at two thirds of the life and at expiry (naming the certificate and
 * its NotAfter), fails closed after expiry, and rejects ready() for unusable files at start.
 * issuedIdentity: key made in-process, certificate through sign(), renewal at two thirds of the
 * life re-checked against an injected wall clock, retries with backoff, fails closed at expiry.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { ConfigInvalidError, isTrellisError } from '../../src/core/errors.js';
import type { Authority } from '../../src/tls/authority.js';
import { fileIdentity, issuedIdentity, localAuthoritySigner, type IdentityProvider, type SignFunction, type TlsMaterial } from '../../src/tls/identity.js';
import { checkServerIdentityFor } from '../../src/tls/spiffe.js';
import { createToken, generateTokenKey } from '../../src/tls/tokens.js';
import { authority, connect, leaf, meshServer, oddLeaf, realTimeManualClock, type Creds } from './fixtures.js';

const TD = 'example.org';

// The providers' timers and file watchers never keep a process alive (by design), so the test
// process needs its own reference while it waits for them.
const keepAlive = setInterval(() => {}, 1000);
after(() => clearInterval(keepAlive));

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('fileIdentity', () => {
  let dir: string;
  let ca: Authority;
  const providers: IdentityProvider[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-fid-'));
    ca = await authority(TD);
  });
  after(async () => {
    for (const p of providers) p.close();
    await rm(dir, { recursive: true, force: true });
  });

  const write = async (sub: string, c: Creds): Promise<{ ca: string; cert: string; key: string }> => {
    const paths = { ca: join(dir, `${sub}-ca.pem`), cert: join(dir, `${sub}-svc.pem`), key: join(dir, `${sub}-svc.key`) };
    await writeFile(paths.ca, c.ca);
    await writeFile(paths.key, c.key);
    await writeFile(paths.cert, c.cert);
    return paths;
  };

  it('serves the files, reloads on change, keeps the old material on a bad file', async () => {
    const paths = await write('a', await leaf(ca, 'products'));
    const warnings: string[] = [];
    const id = fileIdentity(paths, { clock: realTimeManualClock(), onWarn: (m) => warnings.push(m), pollMs: 20 });
    providers.push(id);
    const first = await id.ready();
    assert.equal(first.service, 'products');
    assert.equal(first.spiffeId, 'spiffe://example.org/svc/products');
    assert.equal(first.trustDomain, TD);

    const rotatedP = new Promise<TlsMaterial>((resolve) => id.on('rotated', resolve));
    const next = await leaf(ca, 'products');
    await writeFile(paths.key, next.key);
    await writeFile(paths.cert, next.cert);
    const second = await rotatedP;
    assert.equal(second.cert, next.cert);
    assert.equal(id.current(), second);

    await writeFile(paths.cert, 'not a certificate');
    await until(() => warnings.some((w) => w.includes(paths.cert) && /keeping the previous certificate/.test(w)));
    assert.equal(id.current(), second);

    const mismatched = await leaf(ca, 'products');
    await writeFile(paths.cert, mismatched.cert); // key not replaced
    await until(() => warnings.some((w) => w.includes(paths.key) && /does not match/.test(w)));
    assert.equal(id.current(), second);

    const foreign = await leaf(await authority(TD), 'products');
    await writeFile(paths.key, foreign.key);
    await writeFile(paths.cert, foreign.cert); // right shape, but not under the bundle in ca.pem
    await until(() => warnings.some((w) => /does not verify against the trust bundle/.test(w)));
    assert.equal(id.current(), second);
  });

  it('warns at two thirds of the life and at expiry, then fails closed', async () => {
    const clock = realTimeManualClock();
    const paths = await write('b', await leaf(ca, 'products', { ttlMs: 3_000_000 }));
    const warnings: string[] = [];
    const id = fileIdentity(paths, { clock, onWarn: (m) => warnings.push(m), pollMs: 20 });
    providers.push(id);
    const m = await id.ready();
    assert.equal(warnings.length, 0);
    clock.advance(2_100_000); // life is 3000 s + 60 s backdating: 2/3 is at 2040 s
    await until(() => warnings.some((w) => /two thirds of its life/.test(w)));
    assert.ok(id.current() !== undefined);
    clock.advance(1_000_000);
    await until(() => warnings.some((w) => /expired at/.test(w)));
    const expired = warnings.find((w) => /expired at/.test(w)) as string;
    assert.ok(expired.includes(paths.cert) && expired.includes(new Date(m.notAfter).toISOString()), expired);
    assert.equal(id.current(), undefined);
  });

  it('rejects ready() for unusable or expired files at start, naming them, and recovers when fixed', async () => {
    const paths = await write('c', await leaf(ca, 'products'));
    await writeFile(paths.cert, 'garbage');
    const warnings: string[] = [];
    const id = fileIdentity(paths, { clock: realTimeManualClock(), onWarn: (m) => warnings.push(m), pollMs: 20 });
    providers.push(id);
    await assert.rejects(id.ready(), (err: unknown) => err instanceof ConfigInvalidError && err.issues[0]?.file === paths.cert);
    assert.equal(id.current(), undefined);
    const good = await leaf(ca, 'products');
    await writeFile(paths.key, good.key);
    await writeFile(paths.cert, good.cert);
    await until(() => id.current() !== undefined);
    assert.equal((await id.ready()).cert, good.cert);

    const now = Date.now();
    const old = await oddLeaf(ca, { uris: ['spiffe://example.org/svc/products'], notBefore: now - 7_200_000, notAfter: now - 3_600_000 });
    const expiredPaths = await write('d', old);
    const id2 = fileIdentity(expiredPaths, { clock: realTimeManualClock(), onWarn: () => {}, pollMs: 20 });
    providers.push(id2);
    await assert.rejects(id2.ready(), (err: unknown) => isTrellisError(err, 'TRELLIS_NO_IDENTITY') && (err as Error).message.includes(expiredPaths.cert) && /NotAfter/.test((err as Error).message));

    const wrongService = fileIdentity(paths, { clock: realTimeManualClock(), onWarn: () => {}, pollMs: 20, expect: { trustDomain: TD, service: 'orders' } });
    providers.push(wrongService);
    await assert.rejects(wrongService.ready(), (err: unknown) => err instanceof ConfigInvalidError && err.issues[0]?.file === paths.cert && /expected spiffe:\/\/example.org\/svc\/orders/.test(err.message));

    const missing = fileIdentity({ ca: join(dir, 'nope.pem'), cert: paths.cert, key: paths.key }, { clock: realTimeManualClock(), onWarn: () => {}, pollMs: 20 });
    providers.push(missing);
    await assert.rejects(missing.ready(), (err: unknown) => err instanceof ConfigInvalidError && /nope\.pem/.test(err.message) && /ENOENT/.test(err.message));
  });
});

describe('issuedIdentity', () => {
  let ca: Authority;
  let sign: SignFunction;
  let clock: ManualClock;
  const providers: IdentityProvider[] = [];
  before(async () => {
    clock = realTimeManualClock();
    ca = await authority(TD, clock);
    const tokenKey = await generateTokenKey();
    sign = localAuthoritySigner(ca, tokenKey, createToken(tokenKey, { service: 'checkout' }, clock), { clock, ttlMs: 30_000 });
  });
  after(() => {
    for (const p of providers) p.close();
  });

  it('gets a certificate, renews at two thirds of its life on the wall clock, emits rotated', async () => {
    let calls = 0;
    const counting: SignFunction = (csr) => {
      calls++;
      return sign(csr);
    };
    const warnings: string[] = [];
    const id = issuedIdentity({ service: 'checkout', trustDomain: TD, sign: counting }, { clock, onWarn: (m) => warnings.push(m), renewCheckMs: 15 });
    providers.push(id);
    const first = await id.ready();
    assert.equal(first.spiffeId, 'spiffe://example.org/svc/checkout');
    assert.equal(calls, 1);
    const rotations: TlsMaterial[] = [];
    id.on('rotated', (m) => rotations.push(m));

    clock.advance(15_000); // half-way: no renewal
    await sleep(80);
    assert.equal(calls, 1);
    clock.advance(6_000); // past 2/3 of 30 s
    await until(() => rotations.length === 1);
    assert.equal(calls, 2);
    const second = rotations[0] as TlsMaterial;
    assert.notEqual(second.key, first.key, 'a new key per certificate');
    assert.ok(second.notAfter > first.notAfter);
    assert.equal(id.current(), second);
    assert.deepEqual(warnings, []);

    // The renewed material works for a real mutual-TLS handshake.
    const server = await meshServer(await leaf(ca, 'products'));
    try {
      assert.equal(await connect(server.port, { ca: second.ca, cert: second.cert, key: second.key, checkServerIdentity: checkServerIdentityFor(TD, 'products') }), 'hello');
      assert.deepEqual(server.callers, [{ service: 'checkout', spiffeId: 'spiffe://example.org/svc/checkout' }]);
    } finally {
      await server.close();
    }
  });

  it('retries with backoff, refuses material for another identity, fails closed at expiry', async () => {
    const c = new ManualClock(0, clock.wall());
    let mode: 'fail' | 'wrong' | 'ok' = 'fail';
    let calls = 0;
    const tokenKey = await generateTokenKey();
    const wrongSign = localAuthoritySigner(ca, tokenKey, createToken(tokenKey, { service: 'payments' }, c), { clock: c, ttlMs: 30_000 });
    const okSign = localAuthoritySigner(ca, tokenKey, createToken(tokenKey, { service: 'checkout' }, c), { clock: c, ttlMs: 30_000 });
    const flaky: SignFunction = async (csr) => {
      calls++;
      if (mode === 'fail') throw new Error('control plane unreachable');
      return mode === 'wrong' ? wrongSign(csr) : okSign(csr);
    };
    const warnings: string[] = [];
    const id = issuedIdentity({ service: 'checkout', trustDomain: TD, sign: flaky }, { clock: c, onWarn: (m) => warnings.push(m), renewCheckMs: 20, retry: { baseMs: 5, maxMs: 20 } });
    providers.push(id);
    await until(() => calls >= 3);
    assert.equal(id.current(), undefined);
    assert.match(warnings[0] as string, /certificate request for spiffe:\/\/example.org\/svc\/checkout failed \(attempt 1\): control plane unreachable; retrying in \d+ ms; no certificate yet/);
    mode = 'wrong';
    const before = warnings.length;
    await until(() => warnings.length > before + 1);
    assert.ok(warnings.slice(before).some((w) => /unusable material.*expected spiffe:\/\/example.org\/svc\/checkout/.test(w)), warnings.slice(before).join('\n'));
    mode = 'ok';
    const m = await id.ready();
    assert.equal(m.service, 'checkout');

    mode = 'fail';
    c.advance(40_000); // past NotAfter, CA down
    await until(() => warnings.some((w) => /expired at .*NotAfter.*fail closed/.test(w)));
    assert.equal(id.current(), undefined);
  });

  it('close() stops renewal and rejects a pending ready()', async () => {
    const never: SignFunction = () => new Promise(() => {});
    const id = issuedIdentity({ service: 'checkout', trustDomain: TD, sign: never }, { clock, onWarn: () => {}, renewCheckMs: 10 });
    const pending = id.ready();
    id.close();
    await assert.rejects(pending, (err: unknown) => isTrellisError(err, 'TRELLIS_NO_IDENTITY'));
    await assert.rejects(id.ready(), (err: unknown) => isTrellisError(err, 'TRELLIS_NO_IDENTITY'));
    assert.throws(() => issuedIdentity({ service: 'Bad Name', trustDomain: TD, sign: never }, { clock, onWarn: () => {} }), ConfigInvalidError);
  });
});
