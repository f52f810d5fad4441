/**
 * Request bodies undici 7's HTTP/2 client cannot send, to a `protocol: http2` service (a real
 * node:http2 h2c server on 127.0.0.1). A GET or HEAD body (undici ends the stream with the
 * headers: "write after end") and a FormData body (undici's HTTP/2 path throws) failed as
 * endpoint errors, and the endpoint's undici client could send nothing more. They are the
 * caller's mistake now: TRELLIS_INVALID_ARGUMENT, nothing sent, nothing charged, the endpoint
 * still serves. A string or Buffer body with a method other than POST, PUT or PATCH tripped an
 * assertion in undici's HTTP/2 writer ("buffer body must have content length"): the HTTP/2 pool
 * now hands it over as a Blob, so it is sent (and replayed whole on a retry).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { isTrellisError, meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { h2Service, startH2c } from './h2c-server.js';
import type { H2c } from './h2c-server.js';

/** Answers each stream with the byte count of its body; `/flaky`'s first stream is answered 503 (a retry must carry the whole body again). */
function startCounting(): Promise<H2c> {
  return startH2c((stream, headers, s) => {
    stream.on('error', () => undefined);
    let n = 0;
    stream.on('data', (c: Buffer) => (n += c.length));
    stream.on('end', () => {
      if (stream.destroyed) return;
      const body = String(n);
      const status = headers[':path'] === '/flaky' && s.streams === 1 ? 503 : 200;
      stream.respond({ ':status': status, 'content-length': Buffer.byteLength(body) });
      stream.end(body);
    });
  });
}

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function setup(strict = true): Promise<{ s: H2c; mesh: Mesh }> {
  const s = await startCounting();
  cleanup.push(() => s.close());
  const mesh = await meshClient({
    service: 'caller',
    config: h2Service(s.port, strict),
  });
  cleanup.push(() => mesh.close());
  return { s, mesh };
}

describe('HTTP/2 destination: request bodies undici cannot send', () => {
  it('are refused as the caller\'s mistake, through mesh.http() and mesh.dispatcher', async () => {
    const { s, mesh } = await setup();
    const bad: { method: string; body: () => unknown; names: RegExp }[] = [
      { method: 'GET', body: () => 'abc', names: /GET request to an HTTP\/2 destination carries no body/ },
      { method: 'HEAD', body: () => Readable.from(['abc']), names: /HEAD request to an HTTP\/2 destination carries no body/ },
      { method: 'POST', body: () => { const f = new FormData(); f.set('a', 'b'); return f; }, names: /FormData/ },
    ];
    for (const b of bad) {
      await assert.rejects(mesh.http('h2').request({ path: '/x', method: b.method, body: b.body() as string }), (err: unknown) => {
        assert.ok(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), `${b.method}: ${String(err)}`);
        assert.match((err as Error).message, b.names);
        return true;
      });
      await assert.rejects(request('http://h2/x', { dispatcher: mesh.dispatcher, method: b.method as 'GET', body: b.body() as string }), (err: unknown) => isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'));
    }
    assert.equal(s.streams, 0, 'the server saw none of them');
    const st = mesh.inspect().services[0];
    assert.equal(st?.breaker, 'closed');
    assert.equal(st?.counters.retries, 0);
    const res = await mesh.http('h2').request({ path: '/after' });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(s.streams, 1);
  });

  it('what undici can send is sent', async () => {
    const { s, mesh } = await setup();
    const good: { method: string; body: unknown; bytes: string }[] = [
      { method: 'POST', body: 'abc', bytes: '3' },
      { method: 'patch', body: Buffer.from('abcd'), bytes: '4' },
      { method: 'DELETE', body: Readable.from(['ab', 'c']), bytes: '3' },
      { method: 'DELETE', body: new Blob(['abcde']), bytes: '5' },
      { method: 'DELETE', body: '', bytes: '0' },
      // In memory with a method undici 7's HTTP/2 client sends no length for: handed over as a Blob.
      { method: 'DELETE', body: 'abc', bytes: '3' },
      { method: 'PURGE', body: Buffer.from('abcdef'), bytes: '6' },
      { method: 'options', body: new Uint8Array([1, 2]), bytes: '2' },
      { method: 'DELETE', body: new ArrayBuffer(7), bytes: '7' },
      { method: 'GET', body: Buffer.alloc(0), bytes: '0' },
    ];
    let viaDispatcher = 0;
    for (const g of good) {
      const res = await mesh.http('h2').request({ path: '/x', method: g.method, body: g.body as string });
      assert.equal(res.statusCode, 200, g.method);
      assert.equal(await res.body.text(), g.bytes, g.method);
      if (typeof g.body !== 'string' && !(g.body instanceof Uint8Array)) continue;
      // The same in-memory body through mesh.dispatcher (undici.request).
      const r2 = await request('http://h2/x', { dispatcher: mesh.dispatcher, method: g.method as 'DELETE', body: g.body });
      assert.equal(r2.statusCode, 200, `${g.method} via mesh.dispatcher`);
      assert.equal(await r2.body.text(), g.bytes, `${g.method} via mesh.dispatcher`);
      viaDispatcher++;
    }
    assert.equal(s.streams, good.length + viaDispatcher);
    assert.equal(mesh.inspect().services[0]?.breaker, 'closed');
  });

  it('a DELETE with an in-memory body is replayed whole on a retry', async () => {
    const { s, mesh } = await setup(false);
    const res = await mesh.http('h2').request({ path: '/flaky', method: 'DELETE', body: 'abcd' });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), '4', 'the second attempt carried the 4 bytes');
    assert.equal(s.streams, 2);
    assert.equal(mesh.inspect().services[0]?.counters.retries, 1);
  });
});
