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

    // The caller's own 250 ms timeout ends its call (the middle's 504 would be an upstream error).
    await assert.rejects(callerMesh.http('middle').request({ path: '/' }), (err: unknown) => isTrellisError(err, 'TRELLIS_TIMEOUT'));
    await sleep(300);
    assert.ok(isTrellisError(innerError, 'TRELLIS_TIMEOUT'), `the inner call timed out on the propagated deadline: ${String(innerError)}`);
    const sent = Number(backend.lastHeaders[DEADLINE_HEADER]);
    assert.ok(sent > 0 && sent <= 200, `backend saw a remaining budget of ${sent} ms`);
  });

  it('hostile deadline headers are ignored or capped: the outbound call still succeeds, no timer overflows', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w);
    };
    process.on('warning', onWarning);
    cleanup.push(async () => {
      process.off('warning', onWarning);
    });
    const backend = await startServer('backend', { kind: 'ok' });
    cleanup.push(() => backend.close());
    // `timeout: 0`: the propagated deadline is the only bound, so an overflowing one would fire at once.
    const mesh = await meshClient({ service: 'middle', config: serviceYaml('backend', [{ address: backend.address }], 'timeout: 0') });
    cleanup.push(() => mesh.close());
    const seen: (string | undefined)[] = [];
    const server = await mesh.serve((req, res) => {
      mesh.http('backend').request({ path: '/deep' }).then(
        async (r) => {
          await r.body.dump();
          seen.push(backend.lastHeaders[DEADLINE_HEADER] as string | undefined);
          res.end(`upstream ${r.statusCode}`);
        },
        (err: unknown) => {
          res.statusCode = 500;
          res.end(String(err));
        },
      );
    });
    const hostile = ['2147483648', '9999999999', '99999999999999999999', '9'.repeat(400), '-5', 'NaN', '1e99', 'Infinity', '12.5', '0x7fffffff', ' '];
    for (const value of hostile) {
      const res = await fetch(`http://${server.address}/`, { headers: { [DEADLINE_HEADER]: value } });
      assert.equal(`${res.status} ${await res.text()}`, '200 upstream 200', `deadline header ${JSON.stringify(value)}`);
    }
    assert.equal(backend.hits, hostile.length, 'every outbound call reached the backend');
    for (const sent of seen) {
      // Capped at 2^31 - 1 ms, or no deadline at all when the header was ignored.
      assert.ok(sent === undefined || (Number(sent) > 0 && Number(sent) <= 2 ** 31 - 1), `backend saw ${sent}`);
    }
    assert.ok(seen.some((s) => s !== undefined), 'a capped deadline still travels onward');
    await sleep(20); // warnings are emitted on the next tick
    assert.deepEqual(warnings.filter((w) => w.name === 'TimeoutOverflowWarning').map((w) => w.message), []);
  });
});
