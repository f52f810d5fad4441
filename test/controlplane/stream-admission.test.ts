/**
 * Admission of new instance streams (docs/control-plane.md, "The instance stream"): past its
 * rate a replica answers a new stream 503 TRELLIS_OVERLOADED at once, with a Retry-After that
 * gives each refused instance a later slot (so a reconnect storm comes back spread out), counts
 * it in trellis_controlplane_streams_refused_total{code="TRELLIS_OVERLOADED"}; and the client
 * waits that long before it tries again, so it is refused once instead of coming back on its
 * own 1 s backoff into the same full bucket.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { meshClient } from '../../src/mesh-client.js';
import type { Mesh } from '../../src/index.js';
import { rawClient } from '../helpers/raw-stream-client.js';
import type { RawClient } from '../helpers/raw-stream-client.js';
import { makeCaMaterial, meshDoc, MemoryStore, mintToken, putResources, startCpFixture } from '../helpers/control-plane-fixture.js';
import type { CpFixture } from '../helpers/control-plane-fixture.js';

const hello = (service: string, instance: string): Record<string, unknown> => ({ type: 'hello', instance, service, labels: {}, agent: 'test', have: null, now: Date.now() });
const refusedCount = async (cp: CpFixture): Promise<number> => Number(/trellis_controlplane_streams_refused_total\{code="TRELLIS_OVERLOADED"\} (\d+)/.exec(await cp.registry.metrics())?.[1] ?? 0);

describe('sync: stream admission', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  async function fixture(rate: number, burst: number): Promise<{ cp: CpFixture; m: Awaited<ReturnType<typeof makeCaMaterial>> }> {
    const m = await makeCaMaterial();
    const store = new MemoryStore();
    await putResources(store, [meshDoc()]);
    const cp = await startCpFixture({ material: m, store, streamAdmission: { ratePerSecond: rate, burst } });
    cleanup.push(() => store.close(), () => cp.close());
    return { cp, m };
  }

  it('past the rate, new streams get 503 TRELLIS_OVERLOADED at once, each with a later Retry-After', async () => {
    const { cp, m } = await fixture(0.5, 2);
    const open = async (i: number): Promise<RawClient> => {
      const c = await rawClient(cp, m, 'web');
      cleanup.push(() => c.close());
      c.send(hello('web', `w-${i}`));
      return c;
    };
    const first = [await open(0), await open(1)];
    for (const c of first) assert.equal(Number((await c.response)[':status']), 200, 'the burst is admitted');
    // Four more together: one token comes back every 2 s, so at most one of them can be admitted.
    const rest = await Promise.all([2, 3, 4, 5].map(open));
    const answers = await Promise.all(rest.map(async (c) => ({ h: await c.response, c })));
    const refused = answers.filter((a) => Number(a.h[':status']) === 503);
    assert.ok(refused.length >= 3, `${refused.length} of 4 refused`);
    const waits: number[] = [];
    for (const r of refused) {
      await r.c.ended;
      assert.match(r.c.raw(), /"code":"TRELLIS_OVERLOADED"/);
      waits.push(Number(r.h['retry-after']));
    }
    waits.sort((a, b) => a - b);
    for (let i = 1; i < waits.length; i++) assert.ok(waits[i]! > waits[i - 1]!, `each refused stream gets a later slot: ${waits.join(', ')} s`);
    assert.ok(waits[0]! >= 1);
    assert.equal(await refusedCount(cp), refused.length);
  });

  it('an instance refused with Retry-After waits for it, and is refused once', async (t) => {
    // One token every 2 s, one held: a raw stream takes it, so the instance's first stream is
    // refused with Retry-After 4 s; coming back after 3.2-4.8 s it finds the token refilled.
    // Coming back on its own backoff (about 1 s) it would be refused again.
    const { cp, m } = await fixture(0.5, 1);
    const taker = await rawClient(cp, m, 'web');
    cleanup.push(() => taker.close());
    taker.send(hello('web', 'taker'));
    assert.equal(Number((await taker.response)[':status']), 200);
    const dir = await mkdtemp(path.join(tmpdir(), 'trellis-admission-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    let mesh: Mesh | undefined;
    try {
      mesh = await meshClient({ service: 'web', controlPlane: [cp.url], token: mintToken(m, 'web'), cacheDir: dir, logger: { warn: () => {} } });
      assert.equal(await refusedCount(cp), 1, 'the instance was refused exactly once before it was admitted');
    } finally {
      await mesh?.close({ drainTimeoutMs: 100 });
    }
  });
});
