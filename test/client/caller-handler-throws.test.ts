/**
 * A caller's handler that throws from onHeaders or onData (an undici.stream() factory that cannot
 * open its destination, a handler's bug): undici aborts the request with that error. Through the
 * mesh it was taken for the endpoint's failure (TRELLIS_RESET, the endpoint ejected and the
 * breaker opened by one caller's exception), and, when the small body had been read whole first,
 * undici ignored it and the call never ended (until its deadline; never without one). Now the
 * caller gets its own error back, as from undici's dispatchers, the call ends at once, and no
 * endpoint or breaker is charged.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { stream } from 'undici';
import type { Dispatcher } from 'undici';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { serviceYaml } from '../helpers/servers.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const STRICT = 'outlierDetection: { consecutiveFailures: 1, ejectionTime: 60s, maxEjectedPercent: 100 }\n'
  + 'circuitBreaker: { errorThresholdPercent: 1, volumeThreshold: 1, resetTimeout: 60s }';

async function setup(policy: string): Promise<Mesh> {
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'content-length': 2 });
    res.end('ok');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanup.push(async () => {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  });
  const mesh = await meshClient({ service: 'caller', config: serviceYaml('svc', [{ address: `127.0.0.1:${(srv.address() as AddressInfo).port}` }], policy) });
  cleanup.push(() => mesh.close({ drainTimeoutMs: 100 }));
  return mesh;
}

function throwing(mesh: Mesh, where: 'onHeaders' | 'onData'): Promise<unknown> {
  return new Promise((resolve) => {
    const bug = new Error(`handler bug in ${where}`);
    const handler = {
      onConnect: () => undefined,
      onHeaders() {
        if (where === 'onHeaders') throw bug;
        return true;
      },
      onData() {
        if (where === 'onData') throw bug;
        return true;
      },
      onComplete: () => resolve('completed'),
      onError: (e: Error) => resolve(e),
    } as unknown as Dispatcher.DispatchHandler;
    mesh.dispatcher.dispatch({ origin: 'http://svc', path: '/', method: 'GET' }, handler);
  });
}

async function uncharged(mesh: Mesh): Promise<void> {
  // The endpoint's accounting settles as undici lets go of the request: waited for (bounded), not guessed.
  const svc = () => mesh.inspect().services.find((s) => s.name === 'svc');
  for (let i = 0; i < 200 && svc()?.endpoints.some((e) => e.outstanding !== 0); i++) await new Promise((r) => setTimeout(r, 10));
  const st = svc();
  assert.equal(st?.breaker, 'closed');
  assert.deepEqual(st?.endpoints.map((e) => [e.ejected, e.outstanding]), [[false, 0]]);
  const res = await mesh.http('svc').request({ path: '/' });
  assert.equal(await res.body.text(), 'ok');
}

describe("a caller's handler that throws", () => {
  for (const [mode, policy] of [['streamed', `timeout: 60s\nretries: { attempts: 1 }\n${STRICT}`], ['read whole first', `timeout: 60s\nretries: { attempts: 3, on: [reset] }\n${STRICT}`], ['read whole first, no timeout', `timeout: 0s\nretries: { attempts: 3, on: [reset] }\n${STRICT}`]] as const) {
    for (const where of ['onHeaders', 'onData'] as const) {
      it(`${mode}: from ${where}, gets its own error back, charged to no one`, { timeout: 10_000 }, async () => {
        const mesh = await setup(policy);
        const err = await throwing(mesh, where);
        assert.ok(err instanceof Error, String(err));
        assert.equal(err.message, `handler bug in ${where}`);
        await uncharged(mesh);
      });
    }
  }

  it('an undici.stream() factory that throws, through mesh.dispatcher', { timeout: 10_000 }, async () => {
    const mesh = await setup(`timeout: 60s\nretries: { attempts: 3, on: [reset] }\n${STRICT}`);
    await assert.rejects(stream('http://svc/', { method: 'GET', dispatcher: mesh.dispatcher }, () => {
      throw new Error('cannot open the file');
    }), /cannot open the file/);
    await uncharged(mesh);
  });
});
