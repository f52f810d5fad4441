/**
 * openStore chooses the store from the control plane's flags: the embedded store under
 * `<dataDir>/store` by default, etcd when endpoints are given.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { openStore } from '../../src/controlplane/store/open-store.js';
import { StoreUnavailableError } from '../../src/controlplane/store/store.js';
import { etcdSkipReason, startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { freePort } from '../helpers/redis.js';

let dataDir: string | undefined;
let etcd: EtcdCluster | undefined;
after(async () => {
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  await etcd?.stop();
});

it('without etcd endpoints: the embedded store, in <dataDir>/store', async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'trellis-cp-'));
  const s = await openStore({ dataDir });
  assert.equal(s.kind, 'embedded');
  await s.commit([{ type: 'put', key: '/trellis/authority', value: { v: 1 } }]);
  await s.close();
  assert.deepEqual(await readdir(dataDir), ['store']);
  const again = await openStore({ dataDir, etcd: [] });
  assert.deepEqual((await again.get('/trellis/authority'))?.value, { v: 1 });
  await again.close();
});

it('with etcd endpoints: the etcd store; an unreachable etcd is a StoreUnavailableError', { skip: etcdSkipReason() }, async () => {
  etcd = await startEtcd(1);
  const s = await openStore({ dataDir: '/nonexistent', etcd: etcd.endpoints });
  assert.equal(s.kind, 'etcd');
  await s.close();
  await assert.rejects(openStore({ dataDir: '/nonexistent', etcd: [`http://127.0.0.1:${await freePort()}`] }), StoreUnavailableError);
});
