/**
 * `mesh.close()` of an instance configured by the control plane waits for the cache writes under
 * way (docs/control-plane.md, the cache directory): the client keeps each snapshot and
 * certificate without waiting for the write, so before this a close right after a snapshot
 * arrived resolved with the write still running. An application that removes the directory next
 * failed (`ENOTEMPTY`: the write's temporary file appeared after the removal), and one that exits
 * next lost the snapshot it was just sent.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { meshClient } from '../../src/mesh-client.js';
import { makeCaMaterial, meshDoc, MemoryStore, mintToken, putResources, startCpFixture } from '../helpers/control-plane-fixture.js';

describe('control-plane instance: close() and the cache directory', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('close() right after start resolves with the snapshot and certificate written, no write left running', async () => {
    const m = await makeCaMaterial();
    const store = new MemoryStore();
    await putResources(store, [meshDoc()]);
    const cp = await startCpFixture({ material: m, store });
    cleanup.push(() => store.close(), () => cp.close());
    for (let i = 0; i < 5; i++) {
      const dir = await mkdtemp(path.join(tmpdir(), 'trellis-close-flush-'));
      cleanup.push(() => rm(dir, { recursive: true, force: true }));
      const mesh = await meshClient({ service: 'web', controlPlane: [cp.url], token: mintToken(m, 'web'), cacheDir: dir, logger: { warn: () => {} } });
      await mesh.close({ drainTimeoutMs: 0 });
      // Read at once: a write still running shows as a missing file or a temporary one.
      const files = (await readdir(dir)).sort();
      assert.deepEqual(files, ['identity.json', 'snapshot.json', 'trust.json'], `round ${i}: the cache is complete when close() resolves`);
    }
  });
});
