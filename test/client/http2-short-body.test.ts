/**
 * An HTTP/2 response cut short of its content-length by an RST_STREAM that follows its last DATA
 * frame closely: node:http2 ends the stream before it reports the reset, and undici's HTTP/2
 * client completes the response at the stream's end, so a 200 of content-length 100 reached the
 * caller as complete after 7 bytes. It now fails as a body cut short (as over HTTP/1.1), whatever
 * the reset's code (ENHANCE_YOUR_CALM too: after the headers, never the caller's mistake), read
 * whole first or streamed. A complete body, a HEAD and a 304 with a content-length still pass.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { fetch } from 'undici';
import { isTrellisError, meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { startH2c } from './h2c-server.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function setup(retries: string): Promise<Mesh> {
  const s = await startH2c((stream, headers) => {
    stream.on('error', () => undefined);
    const path = String(headers[':path']);
    if (path.startsWith('/cut')) {
      const code = path === '/cut-calm' ? http2.constants.NGHTTP2_ENHANCE_YOUR_CALM : http2.constants.NGHTTP2_INTERNAL_ERROR;
      stream.respond({ ':status': 200, 'content-length': 100 });
      stream.write('partial', () => stream.close(code));
    } else if (path === '/304') {
      stream.respond({ ':status': 304, 'content-length': 1234 }, { endStream: true });
    } else if (headers[':method'] === 'HEAD') {
      stream.respond({ ':status': 200, 'content-length': 1234 }, { endStream: true });
    } else {
      stream.respond({ ':status': 200, 'content-length': 2 });
      stream.end('ok');
    }
  });
  cleanup.push(() => s.close());
  const mesh = await meshClient({
    service: 'caller',
    config: `apiVersion: trellis/v1\nkind: Service\nmetadata: { name: h2 }\nspec:\n  protocol: http2\n  timeout: 10s\n  endpoints: [ { address: 127.0.0.1:${s.port} } ]\n  retries: ${retries}\n`,
  });
  cleanup.push(() => mesh.close());
  return mesh;
}

describe('HTTP/2 body cut short of its content-length by a prompt RST_STREAM', () => {
  for (const [name, retries] of [['streamed', '{ attempts: 1 }'], ['read whole first', '{ attempts: 2, on: [reset, 5xx] }']] as const) {
    it(`${name}: fails, never a complete response, never the caller's mistake`, async () => {
      const mesh = await setup(retries);
      for (const path of ['/cut', '/cut-calm']) {
        let err: unknown;
        let text: string | undefined;
        try {
          const r = await mesh.http('h2').request({ path });
          text = await r.body.text();
        } catch (e) {
          err = e;
        }
        assert.ok(err !== undefined, `${path}: a body of 7 of 100 bytes is no response (got ${JSON.stringify(text)})`);
        assert.ok(!isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), String(err));
        await assert.rejects(async () => {
          const f = await fetch(`http://h2${path}`, { dispatcher: mesh.dispatcher });
          await f.text();
        });
      }
      const ok = await mesh.http('h2').request({ path: '/ok' });
      assert.equal(await ok.body.text(), 'ok');
      const head = await mesh.http('h2').request({ method: 'HEAD', path: '/ok' });
      assert.equal(head.statusCode, 200);
      await head.body.dump();
      const nm = await mesh.http('h2').request({ path: '/304' });
      assert.equal(nm.statusCode, 304);
      await nm.body.dump();
    });
  }
});
