/**
 * An instance that started from its cached snapshot (no control plane answered in time) says
 * it holds that version (`have`) when it reconnects. A replica that still knows the version
 * sends the next change as a delta against it, and the instance applies it: the cached snapshot
 * is a delta base like one it ACKed on a stream. (Before: the instance could apply deltas only
 * against versions ACKed on a stream, so it refused this one, reconnected and turned deltas off.)
 *
 * The replica is made unreachable at the second start by stream admission: its bucket is empty
 * (the test holds its clock) so the stream is refused with Retry-After, and the instance starts
 * from the cache; the test then refills the bucket.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { meshClient } from '../../src/mesh-client.js';
import type { Mesh } from '../../src/index.js';
import { makeCaMaterial, meshDoc, MemoryStore, mintToken, putResources, serviceDoc, startCpFixture } from '../helpers/control-plane-fixture.js';
import { sampleSum } from '../helpers/prometheus.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('sync: a delta against the cached snapshot an instance started from', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('is applied, with no reconnect for a whole snapshot', async () => {
    const m = await makeCaMaterial();
    const store = new MemoryStore();
    await putResources(store, [meshDoc(), serviceDoc('catalog', { endpoints: [{ address: '127.0.0.1:9001' }] })]);
    const clock = { t: 0 };
    // One stream admitted, then none until the test moves the clock (a refused one is told to
    // come back in a few seconds: later than the cached start's 5 s wait is not needed).
    const cp = await startCpFixture({ material: m, store, streamAdmission: { ratePerSecond: 0.25, burst: 1 }, clock: { now: () => clock.t, wall: () => Date.now() } });
    cleanup.push(() => store.close(), () => cp.close());
    const dir = await mkdtemp(path.join(tmpdir(), 'trellis-delta-cached-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const token = mintToken(m, 'web');

    // First start: the stream is admitted, the snapshot is applied and kept in the cache.
    const first = await meshClient({ service: 'web', controlPlane: [cp.url], token, cacheDir: dir, logger: { warn: () => {} } });
    for (let i = 0; i < 500; i++) {
      if (await access(path.join(dir, 'snapshot.json')).then(() => true, () => false)) break;
      await sleep(10);
    }
    await first.close({ drainTimeoutMs: 100 });

    // Second start: refused (the bucket is empty), so it starts from the cache.
    const warnings: string[] = [];
    let mesh: Mesh | undefined;
    try {
      mesh = await meshClient({ service: 'web', controlPlane: [cp.url], token, cacheDir: dir, logger: { warn: (w) => warnings.push(w) } });
      let connected = false;
      mesh.on('control-plane', (e) => {
        if (e.state === 'connected') connected = true;
      });
      assert.ok(warnings.some((w) => /starting from the snapshot kept in/.test(w)), `started from the cache: ${warnings.join(' | ')}`);
      const deltaBytes = async (): Promise<number> => sampleSum(await cp.registry.metrics(), 'trellis_controlplane_pushed_bytes_total', { kind: 'delta' });
      const before = await deltaBytes();
      // Admit it again, then wait for its stream to be open (its hello carried the cached version).
      clock.t += 3_600_000;
      for (let i = 0; i < 6000 && !connected; i++) await sleep(10);
      assert.ok(connected, 'the instance reconnected once admitted');
      // A change: the replica sends it as a delta against the cached version.
      await putResources(store, [serviceDoc('catalog', { endpoints: [{ address: '127.0.0.1:9002' }] })]);
      const has9002 = (): boolean => JSON.stringify(mesh!.inspect().services.find((s) => s.name === 'catalog') ?? {}).includes('127.0.0.1:9002');
      for (let i = 0; i < 3000 && !has9002(); i++) await sleep(10);
      assert.ok(has9002(), 'the change reached the instance');
      assert.ok((await deltaBytes()) > before, 'the change went out as a delta');
      assert.deepEqual(warnings.filter((w) => /cannot apply/.test(w)), [], 'the delta was applied, not refused');
    } finally {
      await mesh?.close({ drainTimeoutMs: 100 });
    }
  });
});
