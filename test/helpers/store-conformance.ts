/**
 * The Store contract as tests: one suite every implementation (memory, embedded, etcd) runs, so
 * the control plane can use any of them the same way. Each test works under its own key prefix
 * and judges by what the store returned and what its watchers received; waits are for events
 * (bounded by a generous deadline that only fails a hung test), never for a guessed duration.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Store, StoreEvent, StoreWatch } from '../../src/controlplane/store/store.js';
import { StoreConflictError, StoreLeaseNotFoundError, StoreUnavailableError } from '../../src/controlplane/store/store.js';

export interface StoreHarness {
  readonly name: string;
  /** A store to test against (a fresh one, or a shared one: tests keep to their own prefix). */
  open(): Promise<Store>;
  /** Closes what `open` returned (and removes its files). */
  dispose(store: Store): Promise<void>;
  /** After this, a watch from before `revision` cannot be replayed (etcd: compaction; local: history limit). */
  forget(store: Store, revision: number): Promise<void>;
  /** Lease TTLs (ms) for the expiry test: `short` is kept alive, `long` lapses; and the keep-alive period. */
  readonly leases: { readonly short: number; readonly long: number; readonly keepAliveEveryMs: number };
  /** Skip reason, when the implementation cannot run here. */
  readonly skip?: string | false;
}

export interface Collected {
  readonly groups: { revision: number; events: readonly StoreEvent[] }[];
  readonly resets: string[];
  readonly watch: StoreWatch;
  /** Resolves when `cond()` holds (checked after every delivery); rejects after `ms` with `what`. */
  until(cond: () => boolean, what: string, ms?: number): Promise<void>;
}

export function collect(store: Store, prefix: string, afterRevision: number): Collected {
  const groups: { revision: number; events: readonly StoreEvent[] }[] = [];
  const resets: string[] = [];
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of [...waiters]) w();
  };
  const watch = store.watch(prefix, afterRevision, {
    onEvents: (events, revision) => {
      groups.push({ revision, events });
      wake();
    },
    onReset: (reason) => {
      resets.push(reason);
      wake();
    },
  });
  return {
    groups,
    resets,
    watch,
    until(cond, what, ms = 60_000) {
      if (cond()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`gave up waiting for ${what}; got ${JSON.stringify({ groups, resets })}`));
        }, ms);
        const check = (): void => {
          if (!cond()) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      });
    },
  };
}

const keyOf = (e: StoreEvent): string => (e.type === 'put' ? e.entry.key : e.key);

let seq = 0;

export function storeConformance(h: StoreHarness): void {
  describe(`Store contract: ${h.name}`, { skip: h.skip }, () => {
    const open: Store[] = [];
    after(async () => {
      for (const s of open) await h.dispose(s);
    });
    /** A store and a key prefix of this test's own. */
    const fresh = async (): Promise<{ s: Store; p: string }> => {
      const s = await h.open();
      if (!open.includes(s)) open.push(s);
      return { s, p: `/trellis/test/${process.pid}-${++seq}/` };
    };

    it('commit returns strictly increasing revisions; get reads each key with its create and mod revisions', async () => {
      const { s, p } = await fresh();
      const r1 = await s.commit([{ type: 'put', key: `${p}a`, value: { n: 1 } }]);
      const r2 = await s.commit([
        { type: 'put', key: `${p}a`, value: { n: 2 } },
        { type: 'put', key: `${p}b`, value: ['x', 1, null] },
      ]);
      const r3 = await s.commit([{ type: 'put', key: `${p}b`, value: 'y' }]);
      assert.ok(r1 > 0 && r2 > r1 && r3 > r2, `revisions ${r1} ${r2} ${r3}`);
      const a = await s.get<{ n: number }>(`${p}a`);
      assert.deepEqual(a?.value, { n: 2 });
      assert.equal(a?.modRevision, r2);
      assert.equal(a?.createRevision, r1);
      assert.equal(a?.lease, undefined);
      const b = await s.get(`${p}b`);
      assert.deepEqual([b?.value, b?.createRevision, b?.modRevision], ['y', r2, r3]);
      assert.equal(await s.get(`${p}missing`), undefined);
      assert.ok((await s.revision()) >= r3);
    });

    it('a transaction is all or nothing: one failed condition applies none of its ops and names the key', async () => {
      const { s, p } = await fresh();
      const r1 = await s.commit([{ type: 'put', key: `${p}a`, value: 1 }]);
      await assert.rejects(
        s.commit([
          { type: 'put', key: `${p}b`, value: 2 },
          { type: 'delete', key: `${p}c` },
          { type: 'put', key: `${p}a`, value: 3, ifModRevision: r1 + 100 },
        ]),
        (err: unknown) => err instanceof StoreConflictError && err.key === `${p}a` && err.expected === r1 + 100 && err.actual === r1 && err.message.includes(`${p}a`),
      );
      assert.equal(await s.get(`${p}b`), undefined);
      assert.equal((await s.get(`${p}a`))?.value, 1);
      assert.equal(await s.revision(), r1, 'a refused transaction does not move the revision');
    });

    it('conditional create (0), update and delete succeed on the right revision and conflict on any other', async () => {
      const { s, p } = await fresh();
      const k = `${p}k`;
      const r1 = await s.commit([{ type: 'put', key: k, value: 'v1', ifModRevision: 0 }]);
      await assert.rejects(s.commit([{ type: 'put', key: k, value: 'again', ifModRevision: 0 }]), (e: unknown) => e instanceof StoreConflictError && e.actual === r1 && e.expected === 0);
      const r2 = await s.commit([{ type: 'put', key: k, value: 'v2', ifModRevision: r1 }]);
      await assert.rejects(s.commit([{ type: 'put', key: k, value: 'stale', ifModRevision: r1 }]), (e: unknown) => e instanceof StoreConflictError && e.actual === r2 && e.expected === r1);
      await assert.rejects(s.commit([{ type: 'delete', key: k, ifModRevision: r1 }]), StoreConflictError);
      assert.equal((await s.get(k))?.value, 'v2');
      const r3 = await s.commit([{ type: 'delete', key: k, ifModRevision: r2 }]);
      assert.ok(r3 > r2);
      assert.equal(await s.get(k), undefined);
      // A conditional write on a key that is absent: its revision is 0.
      await assert.rejects(s.commit([{ type: 'put', key: k, value: 'x', ifModRevision: r2 }]), (e: unknown) => e instanceof StoreConflictError && e.actual === 0);
      // Of several conditions, the one that failed is named.
      const r4 = await s.commit([{ type: 'put', key: `${p}x`, value: 1 }]);
      await assert.rejects(
        s.commit([
          { type: 'put', key: `${p}x`, value: 2, ifModRevision: r4 },
          { type: 'put', key: `${p}y`, value: 2, ifModRevision: r4 },
        ]),
        (e: unknown) => e instanceof StoreConflictError && e.key === `${p}y` && e.actual === 0,
      );
      assert.equal((await s.get(`${p}x`))?.value, 1);
    });

    it('a commit that changes nothing returns the current revision without moving it', async () => {
      const { s, p } = await fresh();
      const r1 = await s.commit([{ type: 'put', key: `${p}a`, value: 1 }]);
      assert.equal(await s.commit([{ type: 'delete', key: `${p}absent` }]), r1);
      assert.equal(await s.commit([]), r1);
      assert.equal(await s.revision(), r1);
    });

    it('refuses one key twice in a transaction and values that are not JSON, applying nothing', async () => {
      const { s, p } = await fresh();
      const r1 = await s.commit([{ type: 'put', key: `${p}a`, value: 1 }]);
      await assert.rejects(
        s.commit([
          { type: 'put', key: `${p}b`, value: 1 },
          { type: 'delete', key: `${p}b` },
        ]),
        (e: unknown) => e instanceof TypeError && e.message.includes(`${p}b`),
      );
      await assert.rejects(s.commit([{ type: 'put', key: `${p}c`, value: undefined }]), TypeError);
      await assert.rejects(s.commit([{ type: 'put', key: `${p}c`, value: { big: 1n } }]), TypeError);
      assert.equal(await s.get(`${p}b`), undefined);
      assert.equal(await s.revision(), r1);
    });

    it('list returns the keys under a prefix sorted by key, with the revision it read at', async () => {
      const { s, p } = await fresh();
      await s.commit([
        { type: 'put', key: `${p}c`, value: 3 },
        { type: 'put', key: `${p}a`, value: 1 },
      ]);
      await s.commit([{ type: 'put', key: `${p}b/x`, value: 2 }]);
      const last = await s.commit([{ type: 'put', key: `${p.slice(0, -1)}-other/a`, value: 0 }]);
      const { entries, revision } = await s.list<number>(p);
      assert.deepEqual(
        entries.map((e) => [e.key, e.value]),
        [
          [`${p}a`, 1],
          [`${p}b/x`, 2],
          [`${p}c`, 3],
        ],
      );
      assert.equal(revision, last);
      assert.deepEqual((await s.list(`${p}zzz`)).entries, []);
    });

    it('watch delivers every transaction after the revision, in order, its events sharing its revision', async () => {
      const { s, p } = await fresh();
      const { revision: r0 } = await s.list(p);
      const w = collect(s, p, r0);
      const r1 = await s.commit([
        { type: 'put', key: `${p}a`, value: 1 },
        { type: 'put', key: `${p}b`, value: 2 },
      ]);
      await s.commit([{ type: 'put', key: `${p.slice(0, -1)}-other/a`, value: 0 }]);
      const r2 = await s.commit([{ type: 'delete', key: `${p}a` }]);
      const r3 = await s.commit([{ type: 'put', key: `${p}c`, value: 3 }]);
      await w.until(() => w.groups.length >= 3, 'three transactions');
      w.watch.close();
      assert.deepEqual(
        w.groups.map((g) => [g.revision, g.events.map((e) => `${e.type} ${keyOf(e).slice(p.length)}`)]),
        [
          [r1, ['put a', 'put b']],
          [r2, ['delete a']],
          [r3, ['put c']],
        ],
      );
      const [g1, g2] = w.groups;
      const put = g1?.events[1];
      assert.ok(put?.type === 'put');
      assert.deepEqual([put.entry.value, put.entry.modRevision, put.entry.createRevision], [2, r1, r1]);
      const del = g2?.events[0];
      assert.ok(del?.type === 'delete');
      assert.equal(del.modRevision, r2);
      assert.deepEqual(w.resets, []);
    });

    it('a watch from a past revision replays what came after it, then follows', async () => {
      const { s, p } = await fresh();
      const r1 = await s.commit([{ type: 'put', key: `${p}a`, value: 1 }]);
      const r2 = await s.commit([{ type: 'put', key: `${p}a`, value: 2 }]);
      const r3 = await s.commit([{ type: 'put', key: `${p}b`, value: 3 }]);
      const w = collect(s, p, r1);
      const r4 = await s.commit([{ type: 'put', key: `${p}c`, value: 4 }]);
      await w.until(() => w.groups.length >= 3, 'replayed and live events');
      w.watch.close();
      assert.deepEqual(
        w.groups.map((g) => g.revision),
        [r2, r3, r4],
      );
    });

    it('a watch from a revision whose history is gone gets onReset (re-list), and no events', async () => {
      const { s, p } = await fresh();
      const r1 = await s.commit([{ type: 'put', key: `${p}a`, value: 1 }]);
      const r2 = await s.commit([{ type: 'put', key: `${p}a`, value: 2 }]);
      await h.forget(s, r2);
      const w = collect(s, p, r1 - 1);
      await w.until(() => w.resets.length > 0, 'onReset');
      assert.deepEqual(w.groups, []);
      assert.match(w.resets[0] as string, /revision/);
      // Re-listing and watching from the list's revision works.
      const { entries, revision } = await s.list(p);
      assert.deepEqual(entries.map((e) => e.value), [2]);
      const again = collect(s, p, revision);
      const r3 = await s.commit([{ type: 'put', key: `${p}a`, value: 3 }]);
      await again.until(() => again.groups.length > 0, 'an event after re-listing');
      again.watch.close();
      assert.equal(again.groups[0]?.revision, r3);
    });

    it('a closed watch receives nothing more', async () => {
      const { s, p } = await fresh();
      const w = collect(s, p, await s.revision());
      const r1 = await s.commit([{ type: 'put', key: `${p}a`, value: 1 }]);
      await w.until(() => w.groups.length === 1, 'first event');
      w.watch.close();
      await s.commit([{ type: 'put', key: `${p}a`, value: 2 }]);
      // A second watch sees the later commit: by then the closed one would have too.
      const probe = collect(s, p, r1);
      await probe.until(() => probe.groups.length === 1, 'the probe event');
      probe.watch.close();
      assert.equal(w.groups.length, 1);
    });

    it('revoking a lease deletes its keys at once, with delete events; the lease is then gone', async () => {
      const { s, p } = await fresh();
      const lease = await s.grantLease(60_000);
      const r1 = await s.commit([
        { type: 'put', key: `${p}leased`, value: 1, lease },
        { type: 'put', key: `${p}plain`, value: 2 },
      ]);
      assert.equal((await s.get(`${p}leased`))?.lease, lease);
      const w = collect(s, p, r1);
      await s.revokeLease(lease);
      assert.equal(await s.get(`${p}leased`), undefined);
      assert.equal((await s.get(`${p}plain`))?.value, 2);
      await w.until(() => w.groups.length > 0, 'the delete event');
      w.watch.close();
      assert.deepEqual(
        w.groups.flatMap((g) => g.events.map((e) => `${e.type} ${keyOf(e).slice(p.length)}`)),
        ['delete leased'],
      );
      await assert.rejects(s.keepAlive(lease), (e: unknown) => e instanceof StoreLeaseNotFoundError && e.lease === lease);
      const before = await s.revision();
      await assert.rejects(
        s.commit([
          { type: 'put', key: `${p}other`, value: 1 },
          { type: 'put', key: `${p}again`, value: 1, lease },
        ]),
        StoreLeaseNotFoundError,
      );
      assert.equal(await s.get(`${p}other`), undefined);
      assert.equal(await s.revision(), before);
      await s.revokeLease(lease); // revoking twice is harmless
    });

    it('a lease not kept alive expires and deletes its keys with delete events; keepAlive keeps another alive', async () => {
      const { s, p } = await fresh();
      const kept = await s.grantLease(h.leases.short);
      const lapsing = await s.grantLease(h.leases.long);
      const r1 = await s.commit([
        { type: 'put', key: `${p}kept`, value: 1, lease: kept },
        { type: 'put', key: `${p}lapsing`, value: 2, lease: lapsing },
      ]);
      const w = collect(s, p, r1);
      const deleted = (k: string) => () => w.groups.some((g) => g.events.some((e) => e.type === 'delete' && e.key === `${p}${k}`));
      // `kept` has the shorter TTL: without keep-alives it would expire first.
      let keepAliveError: unknown;
      const timer = setInterval(() => {
        s.keepAlive(kept).catch((err: unknown) => (keepAliveError ??= err));
      }, h.leases.keepAliveEveryMs);
      try {
        await w.until(deleted('lapsing'), 'the lapsing lease to expire');
      } finally {
        clearInterval(timer);
      }
      assert.equal(keepAliveError, undefined);
      assert.equal(await s.get(`${p}lapsing`), undefined);
      assert.equal((await s.get(`${p}kept`))?.value, 1, 'the lease kept alive outlived the longer one');
      assert.equal(deleted('kept')(), false);
      await w.until(deleted('kept'), 'the kept lease to expire once no longer kept alive');
      w.watch.close();
      await assert.rejects(s.keepAlive(kept), StoreLeaseNotFoundError);
    });

    it('health is ok; a closed store refuses calls with StoreUnavailableError', async () => {
      const s = await h.open();
      const health = await s.health();
      assert.equal(health.ok, true, health.detail);
      assert.match(health.detail, new RegExp(s.kind));
      await h.dispose(s);
      await assert.rejects(s.commit([{ type: 'put', key: '/trellis/test/closed', value: 1 }]), StoreUnavailableError);
      await assert.rejects(s.get('/trellis/test/closed'), StoreUnavailableError);
      assert.equal((await s.health()).ok, false);
    });
  });
}
