/**
 * Each balancing algorithm against three real servers: the spread of requests, and that
 * least-request and ewma steer away from a slow endpoint.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { meshClient } from 'trellis';
import { runLoad, serviceYaml, startServers } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function spread(lb: string, n: number, concurrency: number, key?: (i: number) => string): Promise<number[]> {
  const ss = await startServers(3, lb);
  servers.push(...ss);
  const mesh = await meshClient({ config: serviceYaml('products', ss.map((s) => ({ address: s.address })), `loadBalancer: ${lb}`) });
  try {
    await runLoad(n, concurrency, async (i) => {
      const res = await mesh.http('products').request({ path: '/', ...(key ? { routeKey: key(i) } : {}) });
      await res.body.dump();
    });
  } finally {
    await mesh.close();
  }
  return ss.map((s) => s.hits);
}

describe('balancing across three endpoints', () => {
  it('round-robin spreads exactly', async () => {
    const hits = await spread('round-robin', 300, 1);
    assert.deepEqual(hits, [100, 100, 100]);
  });

  for (const lb of ['random', 'least-request', 'ewma']) {
    it(`${lb} uses every endpoint roughly evenly`, async () => {
      const hits = await spread(lb, 900, 6);
      for (const h of hits) assert.ok(h > 150 && h < 450, `${lb}: ${hits.join('/')}`);
    });
  }

  it('ring-hash sends a key to one endpoint and spreads many keys', async () => {
    const sticky = await spread('ring-hash', 200, 4, () => 'user-42');
    assert.equal(sticky.filter((h) => h > 0).length, 1, `one endpoint for one key: ${sticky.join('/')}`);
    const many = await spread('ring-hash', 900, 4, (i) => `user-${i}`);
    for (const h of many) assert.ok(h > 150, `many keys spread: ${many.join('/')}`);
  });

  for (const lb of ['least-request', 'ewma']) {
    it(`${lb} steers away from a slow endpoint`, async () => {
      const ss = await startServers(3, `slow-${lb}`);
      servers.push(...ss);
      const slow = ss[0];
      assert.ok(slow);
      slow.behaviour = { kind: 'ok', delayMs: 60 };
      const mesh = await meshClient({ config: serviceYaml('products', ss.map((s) => ({ address: s.address })), `loadBalancer: ${lb}`) });
      try {
        await runLoad(600, 8, async () => {
          const res = await mesh.http('products').request({ path: '/' });
          await res.body.dump();
        });
      } finally {
        await mesh.close();
      }
      const share = slow.hits / 600;
      assert.ok(share < 0.15, `${lb}: slow endpoint got ${(share * 100).toFixed(1)}% (${ss.map((s) => s.hits).join('/')})`);
    });
  }
});
