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
import { hello, rawClient } from '../helpers/raw-stream-client.js';
import type { RawClient } from '../helpers/raw-stream-client.js';
import { makeCaMaterial, meshDoc, MemoryStore, mintToken, putResources, startCpFixture } from '../helpers/control-plane-fixture.js';
import type { CpFixture } from '../helpers/control-plane-fixture.js';
import { sampleSum } from '../helpers/prometheus.js';

const refusedCount = async (cp: CpFixture): Promise<number> => sampleSum(await cp.registry.metrics(), 'trellis_controlplane_streams_refused_total', { code: 'TRELLIS_OVERLOADED' });

describe('sync: stream admission', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  /** Admission's clock is the test's: a token comes back only when the test moves it. */
  async function fixture(rate: number, burst: number): Promise<{ cp: CpFixture; m: Awaited<ReturnType<typeof makeCaMaterial>>; clock: { t: number } }> {
    const m = await makeCaMaterial();
    const store = new MemoryStore();
    await putResources(store, [meshDoc()]);
    const clock = { t: 0 };
    const cp = await startCpFixture({ material: m, store, streamAdmission: { ratePerSecond: rate, burst }, clock: { now: () => clock.t, wall: () => Date.now() } });
    cleanup.push(() => store.close(), () => cp.close());
    return { cp, m, clock };
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
    // Four more, the admission clock standing still: no token comes back.
    const rest = await Promise.all([2, 3, 4, 5].map(open));
    const answers = await Promise.all(rest.map(async (c) => ({ h: await c.response, c })));
    const refused = answers.filter((a) => Number(a.h[':status']) === 503);
    assert.equal(refused.length, 4);
    const waits: number[] = [];
    for (const r of refused) {
      await r.c.ended;
      assert.match(r.c.raw(), /"code":"TRELLIS_OVERLOADED"/);
      waits.push(Number(r.h['retry-after']));
    }
    waits.sort((a, b) => a - b);
    // A token every 2 s: the first refused is due when it comes back (2 s) plus its own slot,
    // and each next one 2 s later.
    assert.deepEqual(waits, [4, 6, 8, 10], 'each refused stream gets a later slot');
    assert.equal(await refusedCount(cp), refused.length);
  });

  it('an instance refused with Retry-After waits for it, and is refused once', async (t) => {
    // One token every 4 s, one held: a raw stream takes it, so the instance's first stream is
    // refused with Retry-After 8 s. The token comes back 3 s (real time) after that refusal:
    // an instance that waits its Retry-After (6.4-9.6 s) finds it; one that came back on its
    // own backoff (about 1 s) would be refused again.
    const { cp, m, clock } = await fixture(0.25, 1);
    const taker = await rawClient(cp, m, 'web');
    cleanup.push(() => taker.close());
    taker.send(hello('web', 'taker'));
    assert.equal(Number((await taker.response)[':status']), 200);
    const dir = await mkdtemp(path.join(tmpdir(), 'trellis-admission-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    let mesh: Mesh | undefined;
    const refill = (async () => {
      while ((await refusedCount(cp)) === 0) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 3000));
      clock.t += 60_000;
    })();
    try {
      mesh = await meshClient({ service: 'web', controlPlane: [cp.url], token: mintToken(m, 'web'), cacheDir: dir, logger: { warn: () => {} } });
      assert.equal(await refusedCount(cp), 1, 'the instance was refused exactly once before it was admitted');
      await refill;
    } finally {
      await mesh?.close({ drainTimeoutMs: 100 });
    }
  });
});
