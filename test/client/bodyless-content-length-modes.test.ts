/**
 * A 204/304 with a content-length is complete (bodyless-content-length.test.ts): the same response in each mode
 * the attempt may be in when undici reports it (delivered, read whole first, drained for a retry),
 * on a HEAD, over HTTP/2, with the caller aborting at its headers; then that the endpoint's
 * bookkeeping was released (outstanding back to 0) and the next request on the pool works; and
 * that a 200 cut short (the same undici error) still fails.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Dispatcher } from 'undici';
import { fetch, request } from 'undici';
import { isTrellisError, meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { serviceYaml } from '../helpers/servers.js';
import { startH2c } from './h2c-server.js';
import { rawServer } from './raw-http-server.js';

const NOT_MODIFIED = (len: number): string => `HTTP/1.1 304 Not Modified\r\ncontent-length: ${len}\r\netag: "v1"\r\n\r\n`;
const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

function answer(method: string, path: string, n: number): string {
  if (path === '/304') return NOT_MODIFIED(1234);
  if (path === '/304big') return NOT_MODIFIED(1_000_000);
  if (path === '/204') return 'HTTP/1.1 204 No Content\r\ncontent-length: 17\r\n\r\n';
  if (path === '/short') return 'HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 10\r\n\r\nabc<close>';
  if (path === '/shortbig') return 'HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1000000\r\n\r\nabc<close>';
  if (path === '/drain') return n % 2 === 1 ? NOT_MODIFIED(1234) : OK;
  return OK;
}

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function setup(policy: string): Promise<{ mesh: Mesh; srv: Awaited<ReturnType<typeof rawServer>> }> {
  const srv = await rawServer(answer);
  cleanup.push(() => srv.close());
  const mesh = await meshClient({ config: serviceYaml('products', [{ address: srv.address }], policy) });
  cleanup.push(() => mesh.close());
  return { mesh, srv };
}

function endpointState(mesh: Mesh): { outstanding: number; ejected: boolean } {
  const e = mesh.inspect().services.find((s) => s.name === 'products')?.endpoints[0];
  assert.ok(e);
  return { outstanding: e.outstanding, ejected: e.ejected };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

const BUFFER = 'retries: { attempts: 3, on: [connect-failure, reset, gateway-error, 5xx] }\n'
  + 'outlierDetection: { consecutiveFailures: 1, ejectionTime: 60s, maxEjectedPercent: 100 }\n'
  + 'circuitBreaker: { errorThresholdPercent: 1, volumeThreshold: 1, resetTimeout: 60s }';
const DELIVER = 'retries: { attempts: 1 }\n'
  + 'outlierDetection: { consecutiveFailures: 1, ejectionTime: 60s, maxEjectedPercent: 100 }\n'
  + 'circuitBreaker: { errorThresholdPercent: 1, volumeThreshold: 1, resetTimeout: 60s }';

describe('a 304/204 with a content-length in each mode', () => {
  for (const [name, policy] of [['read whole first', BUFFER], ['streamed', DELIVER]] as const) {
    it(`${name}: complete, released, and the pool serves the next request`, async () => {
      const { mesh, srv } = await setup(policy);
      const h = mesh.http('products');
      for (const path of ['/304', '/304big', '/204', '/304', '/204']) {
        const before = srv.requests();
        const res = await h.request({ path });
        assert.equal(res.statusCode, path.startsWith('/304') ? 304 : 204);
        assert.equal(await res.body.text(), '');
        assert.equal(srv.requests() - before, 1);
        const ok = await h.request({ path: '/ok' });
        assert.equal(ok.statusCode, 200);
        assert.equal(await ok.body.text(), 'ok');
      }
      await settle();
      assert.deepEqual(endpointState(mesh), { outstanding: 0, ejected: false });
      assert.equal(mesh.inspect().services[0]?.breaker, 'closed');
    });
  }

  it('HEAD 304 with a content-length', async () => {
    const { mesh } = await setup(BUFFER);
    const res = await mesh.http('products').request({ method: 'HEAD', path: '/304' });
    assert.equal(res.statusCode, 304);
    await res.body.dump();
    const f = await fetch('http://products/304', { method: 'HEAD', dispatcher: mesh.dispatcher });
    assert.equal(f.status, 304);
    await settle();
    assert.deepEqual(endpointState(mesh), { outstanding: 0, ejected: false });
  });

  it('a 304 drained because the route retries it: the retry answers, the drained attempt is released', async () => {
    const { mesh, srv } = await setup('retries: { attempts: 2, on: [reset], budget: { ratio: 1, minPerSecond: 100 } }');
    const res = await mesh.http('products', { classify: (r) => (r.statusCode === 304 ? 'retryable-failure' : undefined) }).request({ path: '/drain' });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'ok');
    assert.equal(srv.requests(), 2);
    await settle();
    assert.equal(endpointState(mesh).outstanding, 0);
    const again = await request('http://products/ok', { dispatcher: mesh.dispatcher });
    assert.equal(again.statusCode, 200);
    await again.body.dump();
  });

  it('the caller aborting at the 304 headers: aborted, released, next request works', async () => {
    for (const policy of [BUFFER, DELIVER]) {
      const { mesh } = await setup(policy);
      const err = await new Promise<Error | undefined>((resolve) => {
        let abort: ((e?: Error) => void) | undefined;
        const handler = {
          onConnect(a: (e?: Error) => void) { abort = a; },
          onHeaders() { abort?.(new Error('caller gone')); return true; },
          onData: () => true,
          onComplete() { resolve(undefined); },
          onError(e: Error) { resolve(e); },
        } as unknown as Dispatcher.DispatchHandler;
        mesh.dispatcher.dispatch({ origin: 'http://products', path: '/304', method: 'GET' }, handler);
      });
      assert.ok(err !== undefined && isTrellisError(err, 'TRELLIS_ABORTED'), String(err));
      await settle();
      assert.deepEqual(endpointState(mesh), { outstanding: 0, ejected: false });
      const ok = await mesh.http('products').request({ path: '/ok' });
      assert.equal(ok.statusCode, 200);
      await ok.body.dump();
    }
  });

  it('a 200 cut short of its content-length (the same undici error) still fails', async () => {
    for (const [policy, path] of [[BUFFER, '/short'], [DELIVER, '/short'], [BUFFER, '/shortbig']] as const) {
      const { mesh } = await setup(policy);
      let failed: unknown;
      try {
        const res = await mesh.http('products').request({ path });
        await res.body.text();
      } catch (e) {
        failed = e;
      }
      assert.ok(failed !== undefined, `${path} must fail`);
      assert.ok(!isTrellisError(failed, 'TRELLIS_INVALID_ARGUMENT'), String(failed));
      await settle();
      assert.equal(endpointState(mesh).outstanding, 0);
    }
  });

  it('HTTP/2: a 304 with a content-length', async () => {
    const s = await startH2c((stream, headers) => {
      if (headers[':path'] === '/304') stream.respond({ ':status': 304, 'content-length': 1234, etag: '"v1"' }, { endStream: true });
      else {
        stream.respond({ ':status': 200, 'content-length': 2 });
        stream.end('ok');
      }
    });
    cleanup.push(() => s.close());
    const mesh = await meshClient({ config: `apiVersion: trellis/v1\nkind: Service\nmetadata: { name: products }\nspec:\n  protocol: http2\n  endpoints: [ { address: 127.0.0.1:${s.port} } ]\n  retries: { attempts: 3, on: [connect-failure, reset, 5xx] }\n` });
    cleanup.push(() => mesh.close());
    for (let i = 0; i < 2; i++) {
      const res = await mesh.http('products').request({ path: '/304' });
      assert.equal(res.statusCode, 304);
      assert.equal(await res.body.text(), '');
      const f = await fetch('http://products/304', { dispatcher: mesh.dispatcher });
      assert.equal(f.status, 304);
    }
    assert.equal(s.streams, 4);
    await settle();
    assert.deepEqual(endpointState(mesh), { outstanding: 0, ejected: false });
  });
});
