/**
 * The embedded store: the Store contract, then what only a store on disk has to get right:
 * restart keeps every commit and lease, watches from before a restart are reset, a torn last
 * record is cut off, snapshots compact the log, and one directory has one writer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openEmbeddedStore } from '../../src/controlplane/store/embedded-store.js';
import type { Store } from '../../src/controlplane/store/store.js';
import { StoreCorruptError, StoreLeaseNotFoundError, StoreLockedError, StoreUnavailableError } from '../../src/controlplane/store/store.js';
import { collect, storeConformance } from '../helpers/store-conformance.js';

const HISTORY = 5;
const dirs: string[] = [];
const tempDir = async (): Promise<string> => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'trellis-store-'));
  dirs.push(d);
  return d;
};
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

storeConformance({
  name: 'embedded',
  open: async () => openEmbeddedStore(await tempDir(), { historyLimit: HISTORY, sweepMs: 50 }),
  dispose: (s: Store) => s.close(),
  forget: async (s: Store) => {
    for (let i = 0; i <= HISTORY; i++) await s.commit([{ type: 'put', key: '/trellis/filler', value: i }]);
  },
  leases: { short: 2000, long: 5000, keepAliveEveryMs: 200 },
});

const noWarnings = { onWarning: () => {} };

describe('embedded store on disk', () => {
  it('a reopened store has every commit, revision and lease; watches from before the restart are reset', async () => {
    const dir = await tempDir();
    const a = await openEmbeddedStore(dir);
    const lease = await a.grantLease(60_000);
    const r1 = await a.commit([
      { type: 'put', key: '/trellis/resources/Service/a', value: { spec: 1 } },
      { type: 'put', key: '/trellis/instances/a/1', value: { id: '1' }, lease },
    ]);
    const r2 = await a.commit([{ type: 'put', key: '/trellis/resources/Service/a', value: { spec: 2 } }]);
    await a.close();

    const b = await openEmbeddedStore(dir);
    try {
      assert.equal(await b.revision(), r2);
      const svc = await b.get('/trellis/resources/Service/a');
      assert.deepEqual([svc?.value, svc?.createRevision, svc?.modRevision], [{ spec: 2 }, r1, r2]);
      assert.equal((await b.get('/trellis/instances/a/1'))?.lease, lease);
      await b.keepAlive(lease); // the lease came back with the store
      const old = collect(b, '/trellis/', r1);
      await old.until(() => old.resets.length > 0, 'onReset for a watch from before the restart');
      assert.match(old.resets[0] as string, /restarted/);
      const live = collect(b, '/trellis/', r2);
      const r3 = await b.commit([{ type: 'delete', key: '/trellis/resources/Service/a' }]);
      assert.equal(r3, r2 + 1);
      await live.until(() => live.groups.length > 0, 'an event after the restart');
      live.watch.close();
      assert.equal(live.groups[0]?.revision, r3);
      assert.deepEqual(live.resets, []);
    } finally {
      await b.close();
    }
  });

  it('a lease restored at restart gets its whole TTL again from the restart, then expires and deletes its keys', async () => {
    const dir = await tempDir();
    // An injected clock; `sweeps()` waits until the lease sweeper has read it twice more.
    let t = 1_000_000;
    let reads = 0;
    const now = (): number => {
      reads++;
      return t;
    };
    const sweeps = async (): Promise<void> => {
      const target = reads + 2;
      while (reads < target) await new Promise((r) => setTimeout(r, 5));
    };
    const a = await openEmbeddedStore(dir, { now, sweepMs: 10 });
    const lease = await a.grantLease(60_000);
    await a.commit([{ type: 'put', key: '/trellis/instances/s/1', value: 1, lease }]);
    await a.close();
    t += 10 * 60_000; // the control plane was down for ten minutes: long past the lease's expiry
    const b = await openEmbeddedStore(dir, { now, sweepMs: 10 });
    try {
      const w = collect(b, '/trellis/instances/', await b.revision());
      await sweeps();
      assert.equal((await b.get('/trellis/instances/s/1'))?.value, 1, 'the lease did not expire at restart');
      t += 59_000;
      await sweeps();
      assert.equal((await b.get('/trellis/instances/s/1'))?.value, 1, 'its TTL counts from the restart');
      t += 2_000;
      await w.until(() => w.groups.some((g) => g.events.some((e) => e.type === 'delete')), 'the restored lease to expire');
      w.watch.close();
      assert.equal(await b.get('/trellis/instances/s/1'), undefined);
      await assert.rejects(b.keepAlive(lease), StoreLeaseNotFoundError);
    } finally {
      await b.close();
    }
    // The expiry was logged like any commit.
    const c = await openEmbeddedStore(dir);
    assert.equal(await c.get('/trellis/instances/s/1'), undefined);
    await assert.rejects(c.keepAlive(lease), StoreLeaseNotFoundError);
    await c.close();
  });

  it('a torn last record (a crash mid-append) is cut off; everything before it stays, and writing goes on', async () => {
    const dir = await tempDir();
    const a = await openEmbeddedStore(dir);
    const r1 = await a.commit([{ type: 'put', key: '/trellis/a', value: 'kept' }]);
    await a.close();
    const log = (await readdir(dir)).find((n) => n.startsWith('wal-')) as string;
    const size = (await stat(path.join(dir, log))).size;
    // A header announcing 100 bytes, then 10 of them.
    const torn = Buffer.alloc(18);
    torn.writeUInt32LE(100, 0);
    torn.writeUInt32LE(12345, 4);
    await appendFile(path.join(dir, log), torn);
    const warnings: string[] = [];
    const b = await openEmbeddedStore(dir, { onWarning: (m) => warnings.push(m) });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /cut 18 bytes/);
    assert.equal((await stat(path.join(dir, log))).size, size);
    assert.equal((await b.get('/trellis/a'))?.value, 'kept');
    assert.equal(await b.revision(), r1);
    const r2 = await b.commit([{ type: 'put', key: '/trellis/b', value: 'after' }]);
    await b.close();
    const c = await openEmbeddedStore(dir, { onWarning: (m) => warnings.push(m) });
    assert.equal(warnings.length, 1, 'the second reopen finds a clean log');
    assert.equal((await c.get('/trellis/b'))?.value, 'after');
    assert.equal(await c.revision(), r2);
    await c.close();
  });

  it('a bad checksum in the last record drops it and whatever follows it', async () => {
    const dir = await tempDir();
    const a = await openEmbeddedStore(dir);
    await a.commit([{ type: 'put', key: '/trellis/a', value: 1 }]);
    const r2 = await a.commit([{ type: 'put', key: '/trellis/b', value: 2 }]);
    await a.close();
    const log = path.join(dir, (await readdir(dir)).find((n) => n.startsWith('wal-')) as string);
    const buf = await readFile(log);
    buf[buf.length - 2] = (buf[buf.length - 2] as number) ^ 0xff; // flip a byte of the last record
    await writeFile(log, buf);
    const b = await openEmbeddedStore(dir, noWarnings);
    assert.equal((await b.get('/trellis/a'))?.value, 1);
    assert.equal(await b.get('/trellis/b'), undefined);
    assert.equal(await b.revision(), r2 - 1);
    await b.close();
  });

  it('snapshots compact the log; recovery from snapshot plus log gives the same state', async () => {
    const dir = await tempDir();
    const a = await openEmbeddedStore(dir, { compactBytes: 2048 });
    const lease = await a.grantLease(60_000);
    let last = 0;
    for (let i = 0; i < 60; i++) {
      last = await a.commit([
        { type: 'put', key: `/trellis/k/${i % 7}`, value: { i, pad: 'x'.repeat(40) } },
        ...(i % 10 === 0 ? [{ type: 'put' as const, key: `/trellis/leased/${i}`, value: i, lease }] : []),
      ]);
    }
    await a.compact();
    await a.commit([{ type: 'delete', key: '/trellis/k/0' }]);
    const expected = await a.list('/trellis/');
    await a.close();
    const files = await readdir(dir);
    assert.ok(files.includes('snapshot'), `files: ${files}`);
    assert.equal(files.filter((n) => n.startsWith('wal-')).length, 1, `one log after compaction: ${files}`);
    const b = await openEmbeddedStore(dir);
    assert.deepEqual(await b.list('/trellis/'), expected);
    assert.equal(expected.revision, last + 1);
    await b.keepAlive(lease);
    await b.close();
  });

  it('snapshots started together finish in order: an older snapshot never lands over a newer one that removed its log', async () => {
    const dir = await tempDir();
    // The first snapshot is held just before its rename until the second has finished (or, when
    // snapshots run one at a time as they must, for a second: the second cannot finish first).
    let second: Promise<void> | undefined;
    let calls = 0;
    const a = await openEmbeddedStore(dir, {
      beforeSnapshotRename: async () => {
        if (++calls !== 1) return;
        await Promise.race([new Promise((r) => setImmediate(r)).then(() => second?.catch(() => {})), new Promise((r) => setTimeout(r, 1000))]);
      },
    });
    await a.commit([{ type: 'put', key: '/trellis/a', value: 1 }]);
    const first = a.compact();
    await a.commit([{ type: 'put', key: '/trellis/b', value: 2 }]);
    second = a.compact();
    await Promise.all([first, second]);
    const expected = await a.list('/trellis/');
    await a.close();
    const b = await openEmbeddedStore(dir);
    try {
      assert.deepEqual(await b.list('/trellis/'), expected);
    } finally {
      await b.close();
    }
  });

  it('refuses to open over a log that is damaged before later logs (acknowledged writes would be lost)', async () => {
    const dir = await tempDir();
    const a = await openEmbeddedStore(dir);
    await a.commit([{ type: 'put', key: '/trellis/a', value: 1 }]);
    await a.close();
    const log = (await readdir(dir)).find((n) => n.startsWith('wal-')) as string;
    await appendFile(path.join(dir, log), Buffer.from([1, 2, 3]));
    const seq = Number(/wal-(\d+)/.exec(log)?.[1]);
    await writeFile(path.join(dir, `wal-${String(seq + 1).padStart(12, '0')}.log`), '');
    await assert.rejects(openEmbeddedStore(dir, noWarnings), (e: unknown) => e instanceof StoreCorruptError && e.message.includes(log));
  });

  it('a failed write (disk full) is not acknowledged; the store then refuses everything until reopened', async () => {
    const dir = await tempDir();
    const s = await openEmbeddedStore(dir);
    const r1 = await s.commit([{ type: 'put', key: '/trellis/a', value: 1 }]);
    // The next log the store starts is /dev/full: every write to it fails with ENOSPC.
    const seq = Number(/wal-(\d+)/.exec((await readdir(dir)).find((n) => n.startsWith('wal-')) as string)?.[1]);
    const next = path.join(dir, `wal-${String(seq + 1).padStart(12, '0')}.log`);
    await symlink('/dev/full', next);
    const w = collect(s, '/trellis/', r1);
    try {
      await s.compact();
      await assert.rejects(s.commit([{ type: 'put', key: '/trellis/b', value: 2 }]), (e: unknown) => e instanceof StoreUnavailableError && /could not write.*ENOSPC/.test(e.message));
      await assert.rejects(s.get('/trellis/a'), (e: unknown) => e instanceof StoreUnavailableError && /must be reopened/.test(e.message));
      await assert.rejects(s.grantLease(1000), StoreUnavailableError);
      const h = await s.health();
      assert.equal(h.ok, false);
      assert.match(h.detail, /ENOSPC/);
      await w.until(() => w.resets.length > 0, 'watchers told to re-list');
      assert.deepEqual(w.groups, [], 'the failed commit was never published');
    } finally {
      await s.close();
      await rm(next, { force: true });
    }
    const again = await openEmbeddedStore(dir);
    assert.equal((await again.get('/trellis/a'))?.value, 1);
    assert.equal(await again.get('/trellis/b'), undefined);
    assert.equal(await again.revision(), r1);
    await again.close();
  });

  it('files are private: directory 0700, files 0600', async () => {
    const dir = path.join(await tempDir(), 'store');
    const a = await openEmbeddedStore(dir, { compactBytes: 1 });
    await a.commit([{ type: 'put', key: '/trellis/authority', value: { key: 'secret' } }]);
    await a.compact();
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    for (const n of await readdir(dir)) assert.equal((await stat(path.join(dir, n))).mode & 0o777, 0o600, n);
    await a.close();
  });
});

const holder = fileURLToPath(new URL('./fixtures/store-open.ts', import.meta.url));

function runOpener(dir: string, mode: 'try' | 'hold'): { exit: Promise<{ code: number | null; out: string }>; kill: () => void; ready: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', holder, dir, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let signal: () => void = () => {};
  const ready = new Promise<void>((r) => (signal = r));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('HOLDING')) signal();
  });
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const exit = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    }),
  );
  return { exit, kill: () => child.kill('SIGKILL'), ready };
}

describe('embedded store: one writer per directory', () => {
  it('a second process cannot open a directory a live process holds, and is told which pid holds it', async () => {
    const dir = await tempDir();
    const a = await openEmbeddedStore(dir);
    try {
      const { code, out } = await runOpener(dir, 'try').exit;
      assert.equal(code, 3, out);
      assert.match(out, new RegExp(`StoreLockedError: the store directory ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by process ${process.pid}`));
      // In this process too.
      await assert.rejects(openEmbeddedStore(dir), (e: unknown) => e instanceof StoreLockedError && e.pid === process.pid);
    } finally {
      await a.close();
    }
    // Once closed, the next process opens it.
    const { code, out } = await runOpener(dir, 'try').exit;
    assert.equal(code, 0, out);
  });

  it('a lock left by a killed process is stale: the next open takes it over', async () => {
    const dir = await tempDir();
    const h = runOpener(dir, 'hold');
    await h.ready;
    await assert.rejects(openEmbeddedStore(dir), StoreLockedError);
    h.kill();
    await h.exit;
    const s = await openEmbeddedStore(dir);
    assert.equal((await s.get('/trellis/held'))?.value, 'by the killed process');
    await s.close();
  });

  it('a lock whose pid was reused by an unrelated process is stale too', async () => {
    const dir = await tempDir();
    // Our own pid, with a start time that is not ours: a process that died and whose pid came back.
    await writeFile(path.join(dir, 'lock'), JSON.stringify({ pid: process.pid, start: '1' }));
    const s = await openEmbeddedStore(dir);
    await s.close();
  });
});
