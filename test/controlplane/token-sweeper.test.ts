/**
 * The token sweeper against a real in-memory store: a record changed between the sweep's list and
 * its delete is kept (the others go), and an unavailable store fails the sweep (reported) after
 * one refused commit, instead of being tried once per record and reported as a success.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { sweepExpiredTokens, startTokenSweeper } from '../../src/controlplane/token-sweeper.js';
import { MemoryStore } from '../../src/controlplane/store/memory-store.js';
import { KEYS, StoreUnavailableError } from '../../src/controlplane/store/store.js';
import type { StoreOp } from '../../src/controlplane/store/store.js';

const NOW = 1_800_000_000_000;

async function seed(store: MemoryStore, n: number): Promise<void> {
  await store.commit(Array.from({ length: n }, (_, i) => ({ type: 'put', key: KEYS.token(`t${i}`), value: { jti: `t${i}`, service: 's', exp: NOW - 1000 } }) as StoreOp));
}

/** A memory store whose commits can be made to fail as an unreachable store's do. */
class FlakyStore extends MemoryStore {
  down = false;
  commits = 0;
  beforeCommit: (() => Promise<void>) | undefined;
  override async commit(ops: readonly StoreOp[]): Promise<number> {
    this.commits++;
    const hook = this.beforeCommit;
    this.beforeCommit = undefined;
    if (hook !== undefined) await hook();
    if (this.down) throw new StoreUnavailableError('store unreachable');
    return super.commit(ops);
  }
}

describe('token sweeper', () => {
  it('keeps a record changed since the sweep read it, removes the rest', async () => {
    const store = new FlakyStore();
    try {
      await seed(store, 10);
      // Between the list and the first batch's commit, t3 is revoked (rewritten).
      store.beforeCommit = async () => {
        await store.commit([{ type: 'put', key: KEYS.token('t3'), value: { jti: 't3', service: 's', exp: NOW - 1000, revoked: true } }]);
      };
      const removed = await sweepExpiredTokens(store, new ManualClock(0, NOW));
      assert.equal(removed, 9);
      assert.deepEqual((await store.list(KEYS.tokens)).entries.map((e) => e.key), [KEYS.token('t3')]);
    } finally {
      await store.close();
    }
  });

  it('an unavailable store fails the sweep after one commit, and the sweeper reports it', async () => {
    const store = new FlakyStore();
    try {
      await seed(store, 200);
      store.down = true;
      store.commits = 0;
      await assert.rejects(sweepExpiredTokens(store, new ManualClock(0, NOW)), StoreUnavailableError);
      assert.equal(store.commits, 1, 'not one commit per record');
      const warnings: string[] = [];
      let warned: () => void = () => undefined;
      const warning = new Promise<void>((resolve) => {
        warned = resolve;
      });
      const sweeper = startTokenSweeper(store, new ManualClock(0, NOW), (m) => {
        warnings.push(m);
        warned();
      }, 3_600_000);
      await warning;
      await sweeper.close();
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? '', /store unreachable/);
      assert.equal((await store.list(KEYS.tokens)).entries.length, 200);
    } finally {
      await store.close();
    }
  });

  it('close() during a sweep of a large backlog stops it after the batch in flight', async () => {
    const store = new FlakyStore();
    try {
      await seed(store, 640);
      store.commits = 0;
      let closing: (p: Promise<void>) => void = () => undefined;
      const closed = new Promise<Promise<void>>((resolve) => {
        closing = resolve;
      });
      // The first batch's commit is where the close arrives (before the store sees it).
      store.beforeCommit = async () => closing(sweeper.close());
      const sweeper = startTokenSweeper(store, new ManualClock(0, NOW), () => undefined, 3_600_000);
      await (await closed);
      assert.equal(store.commits, 1, 'one batch, then the sweep saw the close');
      assert.equal((await store.list(KEYS.tokens)).entries.length, 640 - 64);
    } finally {
      await store.close();
    }
  });
});
