/**
 * The shared authority record, on the reference store: replicas starting at once on one store
 * make one CA (the loser reads the winner's, and only the winner writes an admin token), and
 * with a key passphrase the issuer and token keys are stored encrypted: a replica without the
 * passphrase, or with a wrong one, refuses to start with a typed error naming the key.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureAuthority } from '../../src/controlplane/authority-state.js';
import { MemoryStore } from '../../src/controlplane/store/memory-store.js';
import { KEYS } from '../../src/controlplane/store/store.js';
import { systemClock } from '../../src/core/clock.js';

describe('the shared authority record', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-cp-authority-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('two replicas starting at once on one store make one CA; only the winner writes the admin token', async () => {
    const store = new MemoryStore();
    try {
      const [a, b] = await Promise.all([
        ensureAuthority(store, join(dir, 'a'), 'example.org', systemClock, () => {}),
        ensureAuthority(store, join(dir, 'b'), 'example.org', systemClock, () => {}),
      ]);
      assert.equal(a.pin, b.pin);
      assert.equal(a.adminHash.toString('hex'), b.adminHash.toString('hex'));
      assert.deepEqual([a.created, b.created].sort(), [false, true]);
      const loser = a.created ? 'b' : 'a';
      assert.deepEqual(await readdir(join(dir, loser)).catch(() => []), [], 'the loser wrote nothing');
    } finally {
      await store.close();
    }
  });

  it('with a key passphrase the keys are stored encrypted, and cannot be read without it', async () => {
    const store = new MemoryStore();
    try {
      const first = await ensureAuthority(store, join(dir, 'enc'), 'example.org', systemClock, () => {}, { keyPassphrase: 'correct horse battery' });
      const record = (await store.get<{ issuerKeyPem: string; tokenKeyPem: string }>(KEYS.authority))?.value;
      assert.match(record?.issuerKeyPem ?? '', /BEGIN ENCRYPTED PRIVATE KEY/);
      assert.match(record?.tokenKeyPem ?? '', /BEGIN ENCRYPTED PRIVATE KEY/);
      await assert.rejects(ensureAuthority(store, join(dir, 'enc2'), 'example.org', systemClock, () => {}), { code: 'TRELLIS_CONFIG_INVALID', message: /issuerKeyPem.*encrypted/ });
      await assert.rejects(ensureAuthority(store, join(dir, 'enc2'), 'example.org', systemClock, () => {}, { keyPassphrase: 'wrong horse battery' }), { code: 'TRELLIS_CONFIG_INVALID', message: /wrong key passphrase/ });
      const again = await ensureAuthority(store, join(dir, 'enc2'), 'example.org', systemClock, () => {}, { keyPassphrase: 'correct horse battery' });
      assert.equal(again.pin, first.pin);
      assert.equal(again.ca.issuer.cert.fingerprint256, first.ca.issuer.cert.fingerprint256);
    } finally {
      await store.close();
    }
  });
});
