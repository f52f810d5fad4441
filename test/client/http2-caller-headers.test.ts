/**
 * Caller headers that HTTP/1.1 allows and HTTP/2 forbids, sent to a `protocol: http2` service
 * (a real node:http2 h2c server on 127.0.0.1). node:http2 throws for a connection-specific header
 * (`te` other than `trailers`, `proxy-connection`, `http2-settings`) and for a single-value
 * header given twice under two spellings (`Content-Type` and `content-type`) inside undici's
 * HTTP/2 writer: that failed the attempt as an endpoint error (retried, charged to the breaker and
 * outlier detection) and left the request queued in the endpoint's undici client, so every later
 * request to the endpoint hung until its timeout (or, on a fresh connection, crashed the process).
 *
 * The forbidden headers are the caller's mistake: TRELLIS_INVALID_ARGUMENT through each entry
 * point, nothing reaches the server, nothing is charged, and the next request works. So is a path
 * and headers too large for one HTTP/2 header block (nghttp2's 64 KiB bound): node:http2 fails
 * the HEADERS frame, and undici's client stalled the same way. The two spellings are one header
 * (names are case-insensitive): it is sent, with both values. More header fields than the server
 * takes is refused by the server (a node:http2 server resets the stream, ENHANCE_YOUR_CALM): the
 * caller's mistake too, retried nowhere (before, a reset: sent to every endpoint, each charged).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { isTrellisError, meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { h2Service, startH2c } from './h2c-server.js';
import type { H2c } from './h2c-server.js';

/** Answers every stream `200 ok`. */
function startOk(): Promise<H2c> {
  return startH2c((stream) => {
    stream.respond({ ':status': 200, 'content-length': 2 });
    stream.end('ok');
  });
}

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function setup(): Promise<{ s: H2c; mesh: Mesh }> {
  const s = await startOk();
  cleanup.push(() => s.close());
  const mesh = await meshClient({
    service: 'caller',
    config: h2Service(s.port),
  });
  cleanup.push(() => mesh.close());
  return { s, mesh };
}

/** Headers HTTP/2 forbids, and what the refusal must name. */
const FORBIDDEN: { headers: Record<string, string> | string[]; names: RegExp }[] = [
  { headers: { te: 'gzip' }, names: /header te .*HTTP\/2/ },
  { headers: { TE: 'trailers, deflate' }, names: /header te .*HTTP\/2/ },
  { headers: ['te', 'trailers', 'te', 'trailers'], names: /header te .*HTTP\/2/ },
  { headers: { 'proxy-connection': 'keep-alive' }, names: /header proxy-connection .*HTTP\/2/ },
  { headers: { 'HTTP2-Settings': 'AAMAAABkAAQAAP__' }, names: /header http2-settings .*HTTP\/2/ },
];

type Send = (mesh: Mesh, headers: Record<string, string> | string[]) => Promise<number>;

const ENTRIES: [string, Send][] = [
  ['mesh.http().request()', async (mesh, headers) => {
    const res = await mesh.http('h2').request({ path: '/x', headers });
    await res.body.dump();
    return res.statusCode;
  }],
  ['undici.request() with mesh.dispatcher', async (mesh, headers) => {
    const res = await request('http://h2/x', { dispatcher: mesh.dispatcher, headers });
    await res.body.dump();
    return res.statusCode;
  }],
  ['fetch() with mesh.dispatcher', async (mesh, headers) => {
    const res = await fetch('http://h2/x', { dispatcher: mesh.dispatcher, headers: Array.isArray(headers) ? pairsOf(headers) : headers } as unknown as RequestInit);
    await res.arrayBuffer();
    return res.status;
  }],
];

function pairsOf(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}

describe('HTTP/2 destination: headers HTTP/2 forbids', () => {
  for (const [entry, send] of ENTRIES) {
    it(`are refused as the caller's mistake, charged to no one (${entry})`, async () => {
      const { s, mesh } = await setup();
      // A connection first, so a failure would happen on a live session.
      assert.equal(await send(mesh, {}), 200);
      assert.equal(s.streams, 1);
      for (const bad of FORBIDDEN) {
        await assert.rejects(send(mesh, bad.headers), (err: unknown) => {
          assert.ok(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), `${JSON.stringify(bad.headers)} failed with ${String(err)} (cause ${String((err as { cause?: unknown }).cause)})`);
          return true;
        });
      }
      assert.equal(s.streams, 1, 'the server saw none of them');
      const st = mesh.inspect().services[0];
      assert.equal(st?.breaker, 'closed');
      assert.equal(st?.counters.retries, 0);
      assert.ok(st?.endpoints.every((e) => !e.ejected), 'no endpoint ejected');
      // The endpoint's connection still serves; a null value is no header at all.
      assert.equal(await send(mesh, { te: 'trailers' }), 200);
      if (!entry.startsWith('fetch')) assert.equal(await send(mesh, { te: null, 'proxy-connection': null } as unknown as Record<string, string>), 200);
      assert.equal(s.streams, entry.startsWith('fetch') ? 2 : 3);
    });
  }

  it('names the header and HTTP/2 in the refusal', async () => {
    const { mesh } = await setup();
    for (const bad of FORBIDDEN) {
      await assert.rejects(mesh.http('h2').request({ path: '/x', headers: bad.headers }), (err: unknown) => {
        assert.ok(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), String(err));
        assert.match((err as Error).message, bad.names);
        return true;
      });
    }
  });

  it('a header block larger than HTTP/2 can send (64 KiB) is refused, and the endpoint still serves', async () => {
    const { s, mesh } = await setup();
    const h2 = mesh.http('h2');
    // Just under the limit is sent as it is.
    const fits = await h2.request({ path: '/x', headers: { 'x-big': 'a'.repeat(60_000) } });
    assert.equal(fits.statusCode, 200);
    await fits.body.dump();
    assert.equal(s.streams, 1);
    const tooBig: { path: string; headers?: Record<string, string>; query?: Record<string, string> }[] = [
      { path: '/x', headers: { 'x-big': 'a'.repeat(70_000) } },
      { path: '/x', query: { q: 'a'.repeat(70_000) } },
      { path: '/x', headers: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`x-h${i}`, 'v'.repeat(700)])) },
      { path: `/${'p'.repeat(70_000)}` },
    ];
    for (const opts of tooBig) {
      await assert.rejects(h2.request(opts), (err: unknown) => {
        assert.ok(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), String(err));
        assert.match((err as Error).message, /HTTP\/2 can send in one header block/);
        return true;
      });
      await assert.rejects(request(`http://h2${opts.path}`, { dispatcher: mesh.dispatcher, headers: opts.headers, query: opts.query }), (err: unknown) => isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'));
    }
    assert.equal(s.streams, 1, 'the server saw none of them');
    const st = mesh.inspect().services[0];
    assert.equal(st?.breaker, 'closed');
    assert.equal(st?.counters.retries, 0);
    const res = await h2.request({ path: '/after' });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(s.streams, 2);
  });

  it('a host header that is no valid authority is refused (an HTTP/2 server resets such a stream)', async () => {
    const { s, mesh } = await setup();
    for (const host of ['a b', 'x\ty', '\u00ff.example', 'a"b']) {
      await assert.rejects(mesh.http('h2').request({ path: '/x', headers: { host } }), (err: unknown) => {
        assert.ok(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), `${JSON.stringify(host)}: ${String(err)}`);
        assert.match((err as Error).message, /header host is not a valid authority/);
        return true;
      });
      await assert.rejects(request('http://h2/x', { dispatcher: mesh.dispatcher, headers: { Host: host } }), (err: unknown) => isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'));
    }
    assert.equal(s.streams, 0);
    assert.equal(mesh.inspect().services[0]?.breaker, 'closed');
    for (const host of ['other.example:8443', '[::1]:80', 'user@h', '']) {
      const res = await mesh.http('h2').request({ path: '/x', headers: { host } });
      assert.equal(res.statusCode, 200, JSON.stringify(host));
      await res.body.dump();
    }
    assert.equal(s.last[':authority'], 'h2', 'an empty host is the service name');
  });

  it("more header fields than the server takes (its ENHANCE_YOUR_CALM reset) is the caller's mistake, retried nowhere", async () => {
    const { s, mesh } = await setup();
    const h2 = mesh.http('h2');
    const many = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v']));
    // A node:http2 server takes 128 fields with the four pseudo-headers; the mesh adds two of its own.
    const fits = await h2.request({ path: '/x', headers: many(100) });
    assert.equal(fits.statusCode, 200);
    await fits.body.dump();
    await assert.rejects(h2.request({ path: '/x', headers: many(130) }), (err: unknown) => {
      assert.ok(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), `${String(err)} (cause ${String((err as { cause?: unknown }).cause)})`);
      assert.match((err as Error).message, /ENHANCE_YOUR_CALM/);
      return true;
    });
    await assert.rejects(request('http://h2/x', { dispatcher: mesh.dispatcher, headers: many(200) }), (err: unknown) => isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'));
    const st = mesh.inspect().services[0];
    assert.equal(st?.breaker, 'closed');
    assert.equal(st?.counters.retries, 0);
    assert.ok(st?.endpoints.every((e) => !e.ejected), 'no endpoint ejected');
    const res = await h2.request({ path: '/after' });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(s.streams, 2, 'the server answered the two requests it took');
  });

  it('sends one header given under two spellings, with both values', async () => {
    const { s, mesh } = await setup();
    const res = await mesh.http('h2').request({ path: '/x', headers: ['Content-Type', 'text/plain', 'content-type', 'text/html', 'X-Tag', 'a', 'x-tag', 'b'] });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(s.streams, 1);
    assert.equal(s.last['content-type'], 'text/plain, text/html');
    assert.equal(s.last['x-tag'], 'a, b');
    const st = mesh.inspect().services[0];
    assert.equal(st?.breaker, 'closed');
  });
});
