/**
 * The etcd store against one real etcd member: the Store contract (compaction is etcd's own),
 * then key prefixes, endpoint checks and an unreachable etcd.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { openEtcdStore } from '../../src/controlplane/store/etcd-store.js';
import type { Store } from '../../src/controlplane/store/store.js';
import { StoreUnavailableError } from '../../src/controlplane/store/store.js';
import { etcdSkipReason, startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { freePort } from '../helpers/redis.js';
import { storeConformance } from '../helpers/store-conformance.js';

const skip = etcdSkipReason();
let etcd: EtcdCluster | undefined;
let raw: Etcd3 | undefined;

before(async () => {
  if (skip !== false) return;
  etcd = await startEtcd(1);
  raw = new Etcd3({ hosts: etcd.endpoints });
});
after(async () => {
  raw?.close();
  await etcd?.stop();
});

storeConformance({
  name: 'etcd (one member)',
  skip,
  open: () => openEtcdStore((etcd as EtcdCluster).endpoints),
  dispose: (s: Store) => s.close(),
  forget: async (s: Store, revision: number) => {
    // etcd compacts below a revision it has: move past `revision`, then compact everything up to it.
    await s.commit([{ type: 'put', key: '/trellis/filler', value: revision }]);
    await (raw as Etcd3).kv.compact({ revision: revision + 1, physical: true });
  },
  // etcd counts whole seconds, and raises a TTL under 1.5 x its election timeout (1 s) to 2 s.
  leases: { short: 3000, long: 8000, keepAliveEveryMs: 300 },
});

describe('etcd store', { skip }, () => {
  it('keeps its keys under the prefix it is given, apart from a store with another prefix', async () => {
    const endpoints = (etcd as EtcdCluster).endpoints;
    const a = await openEtcdStore(endpoints, { prefix: '/tenant-a' });
    const b = await openEtcdStore(endpoints, { prefix: '/tenant-b' });
    try {
      const r = await a.commit([{ type: 'put', key: '/trellis/resources/Mesh/mesh', value: { spec: 'a' } }]);
      assert.equal(await b.get('/trellis/resources/Mesh/mesh'), undefined);
      assert.deepEqual((await b.list('/trellis/')).entries, []);
      const stored = await (raw as Etcd3).get('/tenant-a/trellis/resources/Mesh/mesh').string();
      assert.deepEqual(JSON.parse(stored as string), { spec: 'a' });
      const e = await a.get('/trellis/resources/Mesh/mesh');
      assert.equal(e?.key, '/trellis/resources/Mesh/mesh');
      assert.equal(e?.modRevision, r);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('reads a value written by something else than a store as its text', async () => {
    await (raw as Etcd3).put('/trellis/test/foreign').value('not json');
    const s = await openEtcdStore((etcd as EtcdCluster).endpoints);
    assert.equal((await s.get('/trellis/test/foreign'))?.value, 'not json');
    await s.close();
  });

  it('health names each member, its version and leader', async () => {
    const s = await openEtcdStore((etcd as EtcdCluster).endpoints);
    const h = await s.health();
    await s.close();
    assert.equal(h.ok, true, h.detail);
    assert.match(h.detail, /1\/1 members reachable/);
    assert.match(h.detail, /etcd 3\.\d+\.\d+, leader known/);
  });

  it('an endpoint that is not a URL is refused with a TypeError naming it', async () => {
    await assert.rejects(openEtcdStore(['ftp://x:1']), (e: unknown) => e instanceof TypeError && e.message.includes('ftp://x:1'));
    await assert.rejects(openEtcdStore([]), TypeError);
  });

  it('no etcd at the endpoint: StoreUnavailableError naming it', async () => {
    const port = await freePort();
    await assert.rejects(
      openEtcdStore([`127.0.0.1:${port}`], { callTimeoutMs: 2000 }),
      (e: unknown) => e instanceof StoreUnavailableError && e.message.includes(`127.0.0.1:${port}`),
    );
  });
});
