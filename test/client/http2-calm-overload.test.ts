/**
 * A node:http2 server resets a new stream with ENHANCE_YOUR_CALM for two different reasons: a
 * request of more header fields than it takes (maxHeaderListPairs: the caller's mistake), and a
 * session over its maxSessionMemory (data queued to a reader that is slow, on another stream) or
 * its concurrent streams: the server's state, not the request. The second is a reset of the
 * endpoint (retried as one), not TRELLIS_INVALID_ARGUMENT: the same request succeeds once the
 * session drained. ENHANCE_YOUR_CALM as a session's GOAWAY is never the caller's mistake either.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { isTrellisError, meshClient } from 'trellis';
import type { Mesh } from 'trellis';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** An h2c server of `maxSessionMemory: 1` (MB): /big queues 4 MB, /goaway sends a GOAWAY, the rest is `200 ok`. */
async function start(): Promise<{ port: number; streams: () => number }> {
  const server = http2.createServer({ maxSessionMemory: 1 });
  let streams = 0;
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => undefined);
  });
  server.on('stream', (stream, h) => {
    streams++;
    stream.on('error', () => undefined);
    const path = h[':path'];
    if (path === '/big') {
      stream.respond({ ':status': 200 });
      stream.end(Buffer.alloc(4 << 20));
    } else if (path === '/goaway') {
      stream.session?.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    } else {
      stream.respond({ ':status': 200, 'content-length': 2 });
      stream.end('ok');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(async () => {
    for (const s of sessions) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as AddressInfo).port, streams: () => streams };
}

async function mesh(port: number, retries: string): Promise<Mesh> {
  const m = await meshClient({
    service: 'caller',
    config: `apiVersion: trellis/v1\nkind: Service\nmetadata: { name: h2 }\nspec:\n  protocol: http2\n  timeout: 10s\n  endpoints: [ { address: 127.0.0.1:${port} } ]\n  retries: ${retries}\n`,
  });
  cleanup.push(() => m.close());
  return m;
}

describe('HTTP/2 ENHANCE_YOUR_CALM that is not the caller’s request', () => {
  it('a stream refused because the server’s session is over its memory is a reset, not the caller’s mistake', async () => {
    const s = await start();
    const m = await mesh(s.port, '{ attempts: 1 }');
    const h = m.http('h2');
    const big = await h.request({ path: '/big' });
    big.body.pause();
    // The server queues the 4 MB it cannot send (flow control): its session is over 1 MB.
    let err: unknown;
    for (let i = 0; i < 50 && err === undefined; i++) {
      try {
        const r = await h.request({ path: '/ok' });
        await r.body.dump();
        await new Promise((r) => setTimeout(r, 20));
      } catch (e) {
        err = e;
      }
    }
    assert.ok(err !== undefined, 'the server refused a stream while its session was full');
    assert.match(String((err as { cause?: unknown }).cause), /ENHANCE_YOUR_CALM/);
    assert.ok(!isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), `a plain GET is not invalid: ${String(err)}`);
    assert.ok(isTrellisError(err, 'TRELLIS_RESET'), String(err));
    big.body.resume();
    await big.body.dump({ limit: 1 << 30 });
    const again = await h.request({ path: '/ok' });
    assert.equal(again.statusCode, 200, 'the same request is taken once the session drained');
    await again.body.dump();
  });

  it('as a session GOAWAY it stays a reset', async () => {
    const s = await start();
    const m = await mesh(s.port, '{ attempts: 1 }');
    await assert.rejects(m.http('h2').request({ path: '/goaway' }), (err: unknown) => {
      assert.ok(!isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), String(err));
      return true;
    });
  });
});
