/**
 * Rate limits through the mesh: outbound per instance fails fast with TRELLIS_RATE_LIMITED,
 * inbound answers 429 with Retry-After, and two instances sharing a global inbound limit through
 * a real Redis pass about N per second together, not 2N.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { meshClient, isTrellisError, retryAfterMsOf } from 'trellis';
import type { Mesh, MeshServer } from 'trellis';
import { quietLogger, serviceYaml, startServer } from '../helpers/servers.js';
import { redisSkipReason, startRedis } from '../helpers/redis.js';

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

describe('rate limiting through the mesh', () => {
  it('outbound: excess fails fast with TRELLIS_RATE_LIMITED and never reaches upstream', async () => {
    const s = await startServer('limited');
    cleanup.push(() => s.close());
    const mesh = await meshClient({ config: serviceYaml('products', [{ address: s.address }], 'rateLimit: { requestsPerSecond: 5, burst: 5 }') });
    cleanup.push(() => mesh.close());
    let ok = 0;
    let limited = 0;
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) {
      try {
        const r = await mesh.http('products').request({ path: '/' });
        await r.body.dump();
        ok++;
      } catch (err) {
        assert.ok(isTrellisError(err, 'TRELLIS_RATE_LIMITED'), String(err));
        // 5/s: the next token is at most 200 ms away, and never "now" for a refused call.
        const wait = retryAfterMsOf(err);
        assert.ok(wait !== undefined && wait > 0 && wait <= 200, `retry after ${wait} ms`);
        limited++;
      }
    }
    // The burst, plus what the bucket refilled (5/s) while the loop ran: bounded by the time
    // it took, not by a guess at how fast this machine is.
    const elapsedMs = performance.now() - t0;
    assert.ok(ok >= 5 && ok <= 5 + Math.ceil(elapsedMs / 200) + 1, `admitted ${ok} in ${elapsedMs.toFixed(0)} ms`);
    if (elapsedMs < 2000) assert.ok(limited > 0, 'some were refused');
    assert.equal(limited, 20 - ok);
    assert.equal(s.hits, ok);
  });

  it('inbound: excess gets 429 with Retry-After and a JSON body naming the service', async () => {
    const mesh = await meshClient({
      service: 'orders',
      config: 'apiVersion: trellis/v1\nkind: Service\nmetadata: { name: orders }\nspec:\n  inbound:\n    rateLimit: { requestsPerSecond: 2, burst: 3 }\n',
    });
    cleanup.push(() => mesh.close());
    let handled = 0;
    const server = await mesh.serve((_req, res) => {
      handled++;
      res.end('ok');
    });
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    let body = '';
    for (let i = 0; i < 8; i++) {
      const r = await fetch(`http://${server.address}/`);
      statuses.push(r.status);
      if (r.status === 429) {
        retryAfter = r.headers.get('retry-after');
        body = await r.text();
      } else await r.text();
    }
    assert.equal(statuses.filter((x) => x === 200).length, 3);
    assert.equal(handled, 3);
    assert.ok(Number(retryAfter) >= 1);
    assert.match(body, /TRELLIS_RATE_LIMITED/);
    assert.match(body, /orders/);
  });

  const skip = redisSkipReason();
  it('two instances sharing a global limit of N/s pass about N/s together', { skip }, async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const config = `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { redis: { url: "${redis.url}" } }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: orders }
spec:
  inbound:
    rateLimit: { requestsPerSecond: 40, burst: 40, scope: global }
`;
    const servers: MeshServer[] = [];
    const meshes: Mesh[] = [];
    for (let i = 0; i < 2; i++) {
      const m = await meshClient({ service: 'orders', config, logger: quietLogger() });
      meshes.push(m);
      cleanup.push(() => m.close());
      servers.push(await m.serve((_q, r) => r.end('ok')));
    }
    // Warm up the Redis connections, then drive both instances flat out for 3 s.
    for (const s of servers) await (await fetch(`http://${s.address}/`)).text();
    const t0 = performance.now();
    let passed = 0;
    const drive = async (s: MeshServer): Promise<void> => {
      while (performance.now() - t0 < 3000) {
        const r = await fetch(`http://${s.address}/`);
        await r.text();
        if (r.status === 200) passed++;
      }
    };
    await Promise.all(servers.flatMap((s) => [drive(s), drive(s), drive(s)]));
    const seconds = (performance.now() - t0) / 1000;
    const rate = passed / seconds;
    // N = 40/s, plus the 40-token burst spread over the run: well under 2N.
    assert.ok(rate < 40 * 1.5 + 40 / seconds && rate > 40 * 0.6, `together ${rate.toFixed(1)}/s for a global 40/s`);
  });
});
