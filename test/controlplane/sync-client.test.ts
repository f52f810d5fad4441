/**
 * The control-plane client's parts: reconnect backoff (gRPC's numbers), the on-disk cache
 * (checksummed, 0600, a damaged file ignored), the token's CA pin, registry endpoints folded
 * into the Service documents, and certificate renewal over mTLS at two thirds of its life.
 */
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { reconnectDelayMs } from '../../src/controlplane-client/backoff.js';
import { ClientCache, defaultCacheDir } from '../../src/controlplane-client/cache-dir.js';
import { pinOfToken } from '../../src/controlplane-client/pin.js';
import { snapshotConfig, snapshotDocuments } from '../../src/controlplane-client/snapshot-config.js';
import type { SnapshotMessage } from '../../src/controlplane/sync/protocol.js';
import { meshClient } from '../../src/mesh-client.js';
import { makeCaMaterial, meshDoc, MemoryStore, mintToken, putResources, startCpFixture } from '../helpers/control-plane-fixture.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'trellis-cpc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const snapshot: SnapshotMessage = {
  type: 'snapshot',
  version: '12',
  mesh: { apiVersion: 'trellis/v1', kind: 'Mesh', metadata: { name: 'default' }, spec: { trustDomain: 'sync.test' } },
  services: [
    { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'products' }, spec: { protocol: 'http' } },
    { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'static' }, spec: { endpoints: [{ address: '127.0.0.1:1' }] } },
  ],
  endpoints: {
    products: [
      { address: '127.0.0.1:8081', labels: { version: 'v1' }, instance: 'a' },
      { address: '0.0.0.0:8082', labels: {}, instance: 'b' },
    ],
  },
};

describe('sync: the control-plane client parts', () => {
  it('reconnects after 1 s ×1.6 per attempt, capped at 120 s, each ±20 %', () => {
    assert.equal(reconnectDelayMs(0, () => 0.5), 1000);
    assert.equal(reconnectDelayMs(0, () => 0), 800);
    assert.equal(reconnectDelayMs(0, () => 1), 1200);
    assert.equal(reconnectDelayMs(1, () => 0.5), 1600);
    assert.equal(reconnectDelayMs(2, () => 0.5), 2560);
    assert.equal(reconnectDelayMs(30, () => 0.5), 120_000);
    assert.equal(reconnectDelayMs(30, () => 1), 144_000);
  });

  it('keeps files checksummed and private, and ignores a damaged one with a warning', async (t) => {
    const dir = await tempDir(t);
    const warnings: string[] = [];
    const cache = new ClientCache(path.join(dir, 'svc'), (m) => warnings.push(m));
    await cache.saveSnapshot(snapshot);
    await cache.saveIdentity({ ca: 'C', cert: 'X', key: 'K' });
    assert.equal((await stat(path.join(dir, 'svc', 'identity.json'))).mode & 0o777, 0o600);
    assert.equal((await stat(path.join(dir, 'svc'))).mode & 0o777, 0o700);
    assert.deepEqual((await cache.load()).snapshot, snapshot);
    const file = path.join(dir, 'svc', 'snapshot.json');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('8081', '8089'));
    assert.equal((await cache.load()).snapshot, undefined);
    assert.match(warnings.join('\n'), /snapshot\.json is damaged \(checksum mismatch\)/);
    await writeFile(file, text.slice(0, text.length / 2));
    assert.equal((await cache.load()).snapshot, undefined);
    assert.equal(defaultCacheDir('checkout', { XDG_CACHE_HOME: '/x' }), '/x/trellis/checkout');
  });

  it('reads the CA pin from a token, and refuses one without', async () => {
    const m = await makeCaMaterial();
    assert.equal(pinOfToken(mintToken(m, 'web')), m.pin);
    assert.throws(() => pinOfToken('a.b.c'), { code: 'TRELLIS_TOKEN_INVALID' });
    const noPin = `x.${Buffer.from(JSON.stringify({ sub: 'web' })).toString('base64url')}.y`;
    assert.throws(() => pinOfToken(noPin), /no cah claim/);
  });

  it('gives Services with neither endpoints nor dns the registry endpoints, leaving out addresses no caller may dial', () => {
    const warnings: string[] = [];
    const docs = snapshotDocuments(snapshot, (w) => warnings.push(w)) as { spec: { endpoints?: unknown } }[];
    assert.deepEqual(docs[1]?.spec.endpoints, [{ address: '127.0.0.1:8081', labels: { version: 'v1' } }]);
    assert.deepEqual(docs[2]?.spec.endpoints, [{ address: '127.0.0.1:1' }]);
    assert.match(warnings[0] ?? '', /0\.0\.0\.0:8082 of products \(instance b\) left out/);
  });

  it('puts the Mesh in the CA\'s trust domain, and refuses a snapshot that names another', () => {
    const none = snapshotConfig({ ...snapshot, mesh: null }, () => {}, 'ca.example');
    assert.equal(none.mesh.trustDomain, 'ca.example');
    const unnamed = snapshotConfig({ ...snapshot, mesh: { ...snapshot.mesh!, spec: {} } }, () => {}, 'ca.example');
    assert.equal(unnamed.mesh.trustDomain, 'ca.example');
    assert.throws(() => snapshotConfig(snapshot, () => {}, 'ca.example'), (err: Error & { code?: string }) => err.code === 'TRELLIS_CONFIG_INVALID' && /"sync\.test" is not the trust domain of the control plane's CA \("ca\.example"\)/.test(err.message));
  });

  it('renews its certificate over mTLS at two thirds of its life, keeps it on disk and says so', async (t) => {
    const m = await makeCaMaterial();
    const store = new MemoryStore();
    t.after(() => store.close());
    await putResources(store, [meshDoc()]);
    const cp = await startCpFixture({ material: m, store, certificateTtlMs: 6000 });
    t.after(() => cp.close());
    const dir = await tempDir(t);
    const mesh = await meshClient({ service: 'web', controlPlane: [cp.url], token: mintToken(m, 'web'), cacheDir: dir, logger: { warn: () => {} } });
    t.after(() => mesh.close({ drainTimeoutMs: 100 }));
    const rotated: { spiffeId: string }[] = [];
    mesh.on('certificate', (e) => rotated.push(e));
    const first = await readFile(path.join(dir, 'identity.json'), 'utf8');
    for (;;) {
      if (rotated.length > 0 && (await readFile(path.join(dir, 'identity.json'), 'utf8')) !== first) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(rotated[0]?.spiffeId, 'spiffe://sync.test/svc/web');
    assert.equal(cp.issued.bootstrap, 1);
    assert.ok(cp.issued.renewal >= 1);
  });
});
