/**
 * Failure behaviour against real servers: a killed endpoint costs no idempotent request, a
 * hung endpoint yields TRELLIS_TIMEOUT within the bound, a per-try timeout moves on, and with
 * every endpoint failing the retry budget bounds the attempts.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { meshClient, isTrellisError } from 'trellis';
import { quietLogger, runLoad, serviceYaml, startServer, startServers } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { startProcessServer } from '../helpers/processes.js';
import type { ProcessServer } from '../helpers/processes.js';

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

describe('failures', () => {
  it('a SIGKILLed endpoint costs zero failed idempotent requests out of 3000', async () => {
    const procs: ProcessServer[] = await Promise.all(['k0', 'k1', 'k2'].map((n) => startProcessServer(n)));
    cleanup.push(() => procs.forEach((p) => p.kill()));
    const mesh = await meshClient({
      config: serviceYaml('products', procs.map((p) => ({ address: p.address })), `loadBalancer: round-robin\nretries: { attempts: 3, on: [connect-failure, reset, gateway-error] }`),
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    const victim = procs[1];
    assert.ok(victim);
    const result = await runLoad(3000, 16, async (i) => {
      if (i === 1000) victim.kill('SIGKILL');
      const res = await mesh.http('products').request({ path: `/item/${i}` });
      await res.body.dump();
      assert.equal(res.statusCode, 200);
    });
    assert.equal(result.errors.length, 0, `failed: ${result.errors.length}; first: ${String(result.errors[0])}`);
    const view = mesh.inspect().services[0];
    assert.ok(view);
    const ep = view.endpoints.find((e) => e.id === victim.address);
    assert.equal(ep?.ejected, true, 'the dead endpoint is ejected');
  });

  it('a hung endpoint yields TRELLIS_TIMEOUT within the bound', async () => {
    const s = await startServer('hung', { kind: 'hang' });
    cleanup.push(() => s.close());
    const mesh = await meshClient({ config: serviceYaml('products', [{ address: s.address }], 'timeout: 300ms') });
    cleanup.push(() => mesh.close());
    const t0 = performance.now();
    await assert.rejects(mesh.http('products').request({ path: '/' }), (err: unknown) => isTrellisError(err, 'TRELLIS_TIMEOUT'));
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 290 && elapsed < 600, `took ${elapsed.toFixed(0)} ms`);
  });

  it('a per-try timeout abandons a hung endpoint and retries on another', async () => {
    const hung = await startServer('hung2', { kind: 'hang' });
    const good = await startServer('good2');
    cleanup.push(() => hung.close(), () => good.close());
    const mesh = await meshClient({
      config: serviceYaml('products', [{ address: hung.address }, { address: good.address }], 'loadBalancer: round-robin\ntimeout: 2s\nretries: { attempts: 2, perTryTimeout: 100ms, on: [timeout] }'),
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      const res = await mesh.http('products').request({ path: '/' });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-server'], 'good2');
      await res.body.dump();
      // Well inside the 2 s overall timeout: the 100 ms per-try timeout moved it on, not the overall one.
      assert.ok(performance.now() - t0 < 1500);
    }
  });

  it('with every endpoint failing, attempts stay within the retry budget', async () => {
    const ss = await startServers(2, 'fail', { kind: 'status', status: 503 });
    cleanup.push(() => Promise.all(ss.map((s) => s.close())).then(() => undefined));
    const mesh = await meshClient({
      config: serviceYaml('products', ss.map((s) => ({ address: s.address })), 'outlierDetection: false\nretries: { attempts: 5, on: [gateway-error], backoff: { base: 1ms, max: 2ms }, budget: { ratio: 0.2, minPerSecond: 1, ttl: 10s } }'),
    });
    cleanup.push(() => mesh.close());
    const n = 500;
    const result = await runLoad(n, 10, async () => {
      const res = await mesh.http('products').request({ path: '/' });
      await res.body.dump();
      return res.statusCode;
    });
    assert.equal(result.errors.length, 0);
    assert.ok(result.results.every((s) => s === 503), 'the last 503 reaches the caller');
    const attempts = ss.reduce((a, s) => a + s.hits, 0);
    // 20% of requests plus the 1/s minimum over the 10 s window.
    assert.ok(attempts <= n * 1.2 + 10 + 1, `attempts ${attempts} for ${n} requests`);
    assert.ok(attempts > n, 'some retries happened');
  });

  it('a POST is not retried after a reset, but is after a connect failure', async () => {
    const resetting = await startServer('reset', { kind: 'destroy' });
    cleanup.push(() => resetting.close());
    const mesh = await meshClient({
      config: serviceYaml('products', [{ address: resetting.address }, { address: '127.0.0.1:1' }], 'loadBalancer: round-robin\noutlierDetection: false\nretries: { attempts: 3, on: [connect-failure, reset] }'),
    });
    cleanup.push(() => mesh.close());
    let resetErrors = 0;
    for (let i = 0; i < 6; i++) {
      resetting.hits = 0;
      try {
        const res = await mesh.http('products').request({ method: 'POST', path: '/', body: 'x' });
        await res.body.dump();
      } catch (err) {
        assert.ok(isTrellisError(err), String(err));
        // A reset ends the call, directly or after a connect-failure retry elsewhere.
        const cause = (err as { cause?: unknown }).cause;
        if (isTrellisError(err, 'TRELLIS_RESET') || isTrellisError(cause, 'TRELLIS_RESET')) resetErrors++;
      }
      assert.ok(resetting.hits <= 1, 'a POST reached the upstream at most once');
    }
    assert.ok(resetErrors >= 1);
    const res = await mesh.http('products').request({ method: 'POST', path: '/', body: 'x', idempotent: true }).catch((e: unknown) => e);
    assert.ok(isTrellisError(res), 'every attempt fails here: reset or refused');
  });
});
