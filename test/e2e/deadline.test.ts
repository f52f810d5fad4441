/**
 * Deadline propagation: a request handled by mesh.serve carries its remaining deadline onward,
 * in the x-trellis-timeout-ms header and through AsyncLocalStorage into the handler's calls.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { meshClient, isTrellisError, DEADLINE_HEADER } from 'trellis';
import { serviceYaml, startServer } from '../helpers/servers.js';

describe('deadline propagation', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('an inbound deadline bounds and travels with outbound calls', async () => {
    const backend = await startServer('backend', { kind: 'ok', delayMs: 400 });
    cleanup.push(() => backend.close());
    // "middle" calls backend with a generous own timeout; the caller's deadline must win.
    const middleMesh = await meshClient({ service: 'middle', config: serviceYaml('backend', [{ address: backend.address }], 'timeout: 10s') });
    cleanup.push(() => middleMesh.close());
    let innerError: unknown;
    const server = await middleMesh.serve((req, res) => {
      void (async () => {
        await sleep(50);
        try {
          const r = await middleMesh.http('backend').request({ path: '/deep' });
          await r.body.dump();
          res.end('ok');
        } catch (err) {
          innerError = err;
          res.statusCode = 504;
          res.end('timeout');
        }
      })();
    });
    const callerMesh = await meshClient({ service: 'caller', config: serviceYaml('middle', [{ address: server.address }], 'timeout: 250ms') });
    cleanup.push(() => callerMesh.close());

    const t0 = performance.now();
    await assert.rejects(callerMesh.http('middle').request({ path: '/' }), (err: unknown) => isTrellisError(err, 'TRELLIS_TIMEOUT'));
    assert.ok(performance.now() - t0 < 450);
    await sleep(300);
    assert.ok(isTrellisError(innerError, 'TRELLIS_TIMEOUT'), `the inner call timed out on the propagated deadline: ${String(innerError)}`);
    const sent = Number(backend.lastHeaders[DEADLINE_HEADER]);
    assert.ok(sent > 0 && sent <= 200, `backend saw a remaining budget of ${sent} ms`);
  });
});
