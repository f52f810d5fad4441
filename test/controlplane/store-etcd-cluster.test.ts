/**
 * The etcd store on a real 3-member cluster: a watch through one member sees a commit made
 * through another; a watch whose member dies resumes on another member without losing or
 * repeating an event; commits go on after a member is killed; with no quorum, calls fail with
 * StoreUnavailableError instead of hanging.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { openEtcdStore } from '../../src/controlplane/store/etcd-store.js';
import { StoreUnavailableError } from '../../src/controlplane/store/store.js';
import { etcdSkipReason, startEtcd, type EtcdCluster, type EtcdMember } from '../helpers/etcd.js';
import { collect } from '../helpers/store-conformance.js';

const skip = etcdSkipReason();
let etcd: EtcdCluster | undefined;

before(async () => {
  if (skip !== false) return;
  etcd = await startEtcd(3);
});
after(async () => {
  await etcd?.stop();
});

/** The members that are not the raft leader (as the leader itself reports). */
async function followers(cluster: EtcdCluster): Promise<EtcdMember[]> {
  const out: EtcdMember[] = [];
  for (const m of cluster.members) {
    const c = new Etcd3({ hosts: m.clientUrl });
    try {
      const s = await c.maintenance.status();
      if (s.leader !== s.header.member_id) out.push(m);
    } finally {
      c.close();
    }
  }
  return out;
}

/** How many watch streams a member serves (its own metrics). */
async function watchStreams(m: EtcdMember): Promise<number> {
  const text = await (await fetch(`${m.clientUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('etcd_debugging_mvcc_watch_stream_total '));
  return Number(line?.split(' ')[1] ?? 0);
}

describe('etcd store on a 3-member cluster', { skip }, () => {
  it('a watch through member A sees a commit made through member B', async () => {
    const [a, b] = (etcd as EtcdCluster).members as [EtcdMember, EtcdMember];
    const onA = await openEtcdStore([a.clientUrl]);
    const onB = await openEtcdStore([b.clientUrl]);
    try {
      const w = collect(onA, '/trellis/resources/', await onA.revision());
      const r = await onB.commit([{ type: 'put', key: '/trellis/resources/Service/x', value: { from: 'B' } }]);
      await w.until(() => w.groups.length > 0, 'the event on A');
      w.watch.close();
      assert.equal(w.groups[0]?.revision, r);
      const ev = w.groups[0]?.events[0];
      assert.ok(ev?.type === 'put');
      assert.deepEqual(ev.entry.value, { from: 'B' });
      assert.deepEqual((await onA.get('/trellis/resources/Service/x'))?.value, { from: 'B' });
    } finally {
      await onA.close();
      await onB.close();
    }
  });

  it('when the member serving a watch hangs, the watch resumes on another (HTTP/2 keepalive) with no event lost', async () => {
    const cluster = etcd as EtcdCluster;
    const [f1, f2] = (await followers(cluster)) as [EtcdMember, EtcdMember];
    const leader = cluster.members.find((m) => m !== f1 && m !== f2) as EtcdMember;
    const before1 = await watchStreams(f1);
    const before2 = await watchStreams(f2);
    const watching = await openEtcdStore([f1.clientUrl, f2.clientUrl]);
    // Writes go through the leader: a commit sent to the hung member would end with an unknown outcome.
    const writer = await openEtcdStore([leader.clientUrl]);
    let paused: EtcdMember | undefined;
    try {
      const p = '/trellis/instances/hang/';
      const w = collect(watching, p, await watching.revision());
      const revs = [await writer.commit([{ type: 'put', key: `${p}0`, value: 0 }])];
      await w.until(() => w.groups.length === 1, 'the first event');
      paused = (await watchStreams(f1)) > before1 ? f1 : (await watchStreams(f2)) > before2 ? f2 : undefined;
      assert.ok(paused !== undefined, 'found the member serving the watch');
      paused.pause();
      for (let i = 1; i <= 3; i++) revs.push(await writer.commit([{ type: 'put', key: `${p}${i}`, value: i }]));
      await w.until(() => w.groups.length === 4, 'the events, through the member still answering', 90_000);
      w.watch.close();
      assert.deepEqual(
        w.groups.map((g) => g.revision),
        revs,
      );
      assert.deepEqual(w.resets, []);
    } finally {
      paused?.resume();
      await watching.close();
      await writer.close();
    }
  });

  it('when the member serving a watch dies, the watch resumes on another with no event lost or repeated, and commits go on', async () => {
    const cluster = etcd as EtcdCluster;
    const [f1, f2] = (await followers(cluster)) as [EtcdMember, EtcdMember];
    assert.ok(f1 !== undefined && f2 !== undefined, 'two followers');
    const before1 = await watchStreams(f1);
    const before2 = await watchStreams(f2);
    // The watching store only knows the two followers; the writer knows every member.
    const watching = await openEtcdStore([f1.clientUrl, f2.clientUrl]);
    const writer = await openEtcdStore(cluster.endpoints);
    try {
      const p = '/trellis/instances/failover/';
      const w = collect(watching, p, await watching.revision());
      const revs: number[] = [];
      revs.push(await writer.commit([{ type: 'put', key: `${p}0`, value: 0 }]));
      await w.until(() => w.groups.length === 1, 'the first event');
      // Whichever follower carries the watch stream now is killed.
      const carrier = (await watchStreams(f1)) > before1 ? f1 : (await watchStreams(f2)) > before2 ? f2 : undefined;
      assert.ok(carrier !== undefined, 'found the member serving the watch');
      await carrier.kill();
      for (let i = 1; i <= 20; i++) revs.push(await writer.commit([{ type: 'put', key: `${p}${i}`, value: i }]));
      await w.until(() => w.groups.length === 21, 'every event, through the surviving member');
      w.watch.close();
      assert.deepEqual(
        w.groups.map((g) => g.revision),
        revs,
      );
      assert.deepEqual(w.resets, []);
      const { entries } = await writer.list(p);
      assert.equal(entries.length, 21);
      const h = await writer.health();
      assert.equal(h.ok, true, h.detail);
      assert.match(h.detail, /2\/3 members reachable/);
      assert.match(h.detail, new RegExp(`${carrier.clientUrl}: unreachable`));
    } finally {
      await watching.close();
      await writer.close();
    }
  });

  it('without a quorum, commits and reads fail with StoreUnavailableError instead of hanging', async () => {
    const cluster = etcd as EtcdCluster;
    const s = await openEtcdStore(cluster.endpoints, { callTimeoutMs: 1500 });
    try {
      for (const m of cluster.members) if (m.alive()) {
        await m.kill();
        break; // one more down: one of three left
      }
      await assert.rejects(s.commit([{ type: 'put', key: '/trellis/test/noquorum', value: 1 }]), StoreUnavailableError);
      await assert.rejects(s.get('/trellis/test/noquorum'), StoreUnavailableError);
      const h = await s.health();
      assert.equal(h.ok, false, h.detail);
    } finally {
      await s.close();
    }
  });
});
