/**
 * Durability under kill -9: a child process commits in a loop (fixtures/store-writer.ts) and is
 * SIGKILLed at a random point — mid-append, mid-fsync, mid-snapshot (the log is compacted every
 * few KiB). Each reopen must find every commit the child acknowledged, no half transaction, and
 * the lease it holds; the next child continues from there. The random points come from a seed
 * printed in any failure.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openEmbeddedStore } from '../../src/controlplane/store/embedded-store.js';

const writer = fileURLToPath(new URL('./fixtures/store-writer.ts', import.meta.url));
const P = '/trellis/crash/';
const pad = (n: number): string => String(n).padStart(8, '0');

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Acks {
  chain: number;
  loops: Map<number, number>;
  lease: string | undefined;
}

/** Runs the writer until `acksBeforeKill` chain acks, then SIGKILLs it; resolves with what it acknowledged. */
function runAndKill(dir: string, acksBeforeKill: number, extraAcks: number, acks: Acks): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', writer, dir, '6000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  let err = '';
  let chainSeen = 0;
  let killed = false;
  const guard = setTimeout(() => child.kill('SIGKILL'), 90_000);
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() as string;
    for (const line of lines) {
      const [kind, a, b] = line.split(' ');
      if (kind === 'ack') {
        acks.chain = Math.max(acks.chain, Number(a));
        chainSeen++;
      } else if (kind === 'pack') acks.loops.set(Number(a), Math.max(acks.loops.get(Number(a)) ?? 0, Number(b)));
      else if (kind === 'lease') acks.lease = a;
      // Any line counts toward the kill point, so it lands while all four writers are busy.
      if (!killed && chainSeen >= acksBeforeKill && --extraAcks < 0) {
        killed = true;
        child.kill('SIGKILL');
      }
    }
  });
  return new Promise((resolve, reject) =>
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (signal === 'SIGKILL' && killed) resolve();
      else reject(new Error(`writer exited by itself (code ${code}, signal ${signal}):\n${err}`));
    }),
  );
}

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

it('kill -9 at random points loses no acknowledged commit and leaves no half transaction', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-crash-'));
  dirs.push(dir);
  const seed = Number(process.env.STORE_CRASH_SEED ?? Date.now() % 1_000_000);
  const random = rng(seed);
  const acks: Acks = { chain: 0, loops: new Map(), lease: undefined };
  const rounds = 6;
  for (let round = 1; round <= rounds; round++) {
    const at = 1 + Math.floor(random() * 80);
    const extra = Math.floor(random() * 8);
    await runAndKill(dir, at, extra, acks);
    const why = `seed ${seed}, round ${round} (killed after ${at} chain acks + ${extra} lines)`;

    const s = await openEmbeddedStore(dir, { onWarning: () => {} });
    try {
      const head = (await s.get<number>(`${P}head`))?.value ?? 0;
      const tail = (await s.get<number>(`${P}tail`))?.value ?? 0;
      assert.equal(head, tail, `head and tail are written by one transaction: ${why}`);
      assert.ok(head >= acks.chain, `chain commit ${acks.chain} was acknowledged but the store has ${head}: ${why}`);
      const xs = (await s.list<{ i: number }>(`${P}x/`)).entries.map((e) => e.key);
      const expected: string[] = [];
      for (let j = Math.max(1, head - 4); j <= head; j++) expected.push(`${P}x/${pad(j)}`);
      assert.deepEqual(xs, expected, `x/ holds exactly the last five of the chain: ${why}`);
      for (const [k, n] of acks.loops) {
        const keys = (await s.list<number>(`${P}p${k}/`)).entries;
        assert.ok(keys.length >= n, `loop ${k} acknowledged ${n} commits, the store has ${keys.length}: ${why}`);
        keys.forEach((e, idx) => assert.equal(e.value, idx + 1, `loop ${k} has no gap: ${why}`));
      }
      assert.ok(acks.lease !== undefined);
      assert.equal((await s.get(`${P}leased`))?.lease, acks.lease, why);
      await s.keepAlive(acks.lease);
    } finally {
      await s.close();
    }
  }
  assert.ok(acks.chain >= rounds, `the writer made progress: ${acks.chain} chain commits`);
});
