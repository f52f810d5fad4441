/**
 * The circuit breaker against a real server: opens past the volume and error thresholds,
 * fails fast with TRELLIS_CIRCUIT_OPEN without touching the upstream, probes once when
 * half-open, and closes when the upstream recovers.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { meshClient, isTrellisError } from 'trellis';
import { serviceYaml, startServer } from '../helpers/servers.js';

describe('circuit breaker', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanup) await c();
  });

  it('opens, fails fast, and recovers', async () => {
    const s = await startServer('flaky', { kind: 'status', status: 500 });
    cleanup.push(() => s.close());
    const mesh = await meshClient({
      config: serviceYaml('products', [{ address: s.address }], 'outlierDetection: false\nretries: { attempts: 1 }\ncircuitBreaker: { errorThresholdPercent: 50, volumeThreshold: 10, resetTimeout: 300ms }'),
    });
    cleanup.push(() => mesh.close());
    const states: string[] = [];
    mesh.on('breaker', (e) => states.push(e.state));

    // Below the volume threshold the breaker stays closed even at 100% failures.
    for (let i = 0; i < 9; i++) {
      const res = await mesh.http('products').request({ path: '/' });
      assert.equal(res.statusCode, 500);
      await res.body.dump();
    }
    assert.equal(mesh.inspect().services[0]?.breaker, 'closed');
    const r10 = await mesh.http('products').request({ path: '/' });
    await r10.body.dump();
    assert.equal(mesh.inspect().services[0]?.breaker, 'open');

    // Failing fast is judged by what the upstream saw (nothing), not by a wall-clock bound: the
    // first refusal runs cold code, and the suite runs on a loaded machine.
    const before = s.hits;
    await assert.rejects(mesh.http('products').request({ path: '/' }), (err: unknown) => isTrellisError(err, 'TRELLIS_CIRCUIT_OPEN') && /products/.test((err as Error).message));
    assert.equal(s.hits, before, 'no request reached the upstream');

    s.behaviour = { kind: 'ok', delayMs: 100 };
    await sleep(350);
    // Half-open: one probe goes through, concurrent calls fail fast.
    const probe = mesh.http('products').request({ path: '/' });
    await sleep(10);
    await assert.rejects(mesh.http('products').request({ path: '/' }), (err: unknown) => isTrellisError(err, 'TRELLIS_CIRCUIT_OPEN'));
    const res = await probe;
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(mesh.inspect().services[0]?.breaker, 'closed');
    assert.deepEqual(states, ['open', 'half-open', 'closed']);
  });
});
