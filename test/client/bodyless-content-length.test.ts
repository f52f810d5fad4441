/**
 * A 304 (or a 204) that carries a content-length is a complete response without a body: a 304's
 * content-length is the size the full response would have (RFC 9110 8.6). undici 7's HTTP/1.1
 * client fails it (UND_ERR_RES_CONTENT_LENGTH_MISMATCH, comparing the bytes read with the
 * header), which through the mesh turned a conditional GET's 304 into an error of the endpoint:
 * retried on the next endpoint, charged to outlier detection and the breaker. Now the caller
 * gets the 304, through mesh.http().request(), undici's request() and fetch() over
 * mesh.dispatcher, and the endpoint is charged nothing (judged by what the server saw: one
 * request per call, and by the endpoint staying in rotation).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fetch, request } from 'undici';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { serviceYaml } from '../helpers/servers.js';
import { rawServer } from './raw-http-server.js';

/** Ejects on one failure and retries resets and 5xx: any charge to the endpoint shows. */
const POLICY =
  'retries: { attempts: 3, on: [connect-failure, reset, gateway-error, 5xx] }\n'
  + 'outlierDetection: { consecutiveFailures: 1, ejectionTime: 60s, maxEjectedPercent: 100 }';

for (const status of [304, 204] as const) {
  const head = status === 304
    ? 'HTTP/1.1 304 Not Modified\r\ncontent-length: 1234\r\netag: "v1"\r\n\r\n'
    : 'HTTP/1.1 204 No Content\r\ncontent-length: 17\r\n\r\n';
  describe(`a ${status} with a content-length through the mesh`, () => {
    let srv: Awaited<ReturnType<typeof rawServer>>;
    let mesh: Mesh;
    before(async () => {
      srv = await rawServer(() => head);
      mesh = await meshClient({ config: serviceYaml('products', [{ address: srv.address }], POLICY) });
    });
    after(async () => {
      await mesh.close();
      await srv.close();
    });

    it('reaches mesh.http().request() as a complete response, sent once', async () => {
      for (let i = 0; i < 3; i++) {
        const before = srv.requests();
        const res = await mesh.http('products').request({ method: 'GET', path: '/item', headers: { 'if-none-match': '"v1"' } });
        assert.equal(res.statusCode, status);
        assert.equal(await res.body.text(), '');
        assert.equal(srv.requests() - before, 1, 'not retried');
      }
    });

    it("reaches undici's request() and fetch() over mesh.dispatcher", async () => {
      const res = await request('http://products/item', { dispatcher: mesh.dispatcher });
      assert.equal(res.statusCode, status);
      assert.equal(await res.body.text(), '');
      const f = await fetch('http://products/item', { dispatcher: mesh.dispatcher });
      assert.equal(f.status, status);
      assert.equal(await f.text(), '');
    });

    it('leaves the endpoint in rotation (nothing charged to outlier detection)', async () => {
      const ejected = mesh.inspect().services.find((s) => s.name === 'products')?.endpoints.filter((e) => e.ejected) ?? [];
      assert.deepEqual(ejected, []);
    });
  });
}
