/**
 * The inbound request timeout applies per HTTP/2 stream, as node:http applies it per HTTP/1.1
 * request: on one h2c session from a real node:http2 client to `mesh.serve`, a stream whose
 * request body never ends is answered 408 and reset (the handler sees its request aborted),
 * while a normal stream opened beside it, a stream whose handler is slower than the timeout (its
 * request arrived whole), and a stream opened after the reset are all served on the same session.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { meshClient } from 'trellis';
import type { Mesh, MeshServer } from 'trellis';
import { quietLogger } from '../helpers/servers.js';

const REQUEST_TIMEOUT_MS = 300;

interface Outcome {
  status: number | undefined;
  body: string;
  rstCode: number | undefined;
}

/** Sends `body` (or only part of it, never ending: `stall`) and reports what came back. */
function send(session: ClientHttp2Session, path: string, method: string, body: string | undefined, stall = false): { stream: ClientHttp2Stream; outcome: Promise<Outcome> } {
  const stream = session.request({ ':path': path, ':method': method }, { endStream: body === undefined });
  if (body !== undefined) {
    if (stall) stream.write(body);
    else stream.end(body);
  }
  const outcome = new Promise<Outcome>((resolve) => {
    let status: number | undefined;
    let text = '';
    stream.on('response', (h) => {
      status = Number(h[':status']);
    });
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      text += d;
    });
    stream.on('error', () => undefined);
    stream.on('close', () => resolve({ status, body: text, rstCode: stream.rstCode }));
  });
  return { stream, outcome };
}

/** Fails the test instead of hanging when a stream never ends (the behaviour this file guards). */
function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} never ended`)), 10_000);
    }),
  ]);
}

describe('HTTP/2 inbound: the request timeout applies per stream', () => {
  let mesh: Mesh;
  let server: MeshServer;
  let session: ClientHttp2Session;
  const completed: string[] = [];
  const aborted: string[] = [];

  before(async () => {
    mesh = await meshClient({ service: 'b', config: `apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { mtls: off }\n`, logger: quietLogger() });
    server = await mesh.serve(
      (req: IncomingMessage, res: ServerResponse) => {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (d: string) => {
          body += d;
        });
        req.on('aborted', () => aborted.push(req.url ?? ''));
        req.on('end', () => {
          // node:http2 ends an aborted request too: a careful reader (raw-body) checks first.
          if (req.aborted) return;
          completed.push(req.url ?? '');
          // A handler slower than the request timeout: its request arrived whole, so it is served.
          const delay = req.url === '/slow' ? REQUEST_TIMEOUT_MS * 2 : 0;
          setTimeout(() => res.end(`${req.url}:${body.length}`), delay);
        });
      },
      { timeouts: { headersTimeoutMs: 200, requestTimeoutMs: REQUEST_TIMEOUT_MS, checkIntervalMs: 100 } },
    );
    session = http2.connect(`http://127.0.0.1:${server.port}`);
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
    });
  });

  after(async () => {
    session.destroy();
    await mesh.close({ drainTimeoutMs: 200 });
  });

  it('a stalled stream gets 408 and a reset; the other streams and the session are unaffected', async () => {
    const stalled = send(session, '/upload', 'POST', 'part of it', true);
    const normal = send(session, '/normal', 'POST', 'whole');
    const slow = send(session, '/slow', 'POST', 'whole too');
    const s = await bounded(stalled.outcome, 'the stalled stream');
    assert.equal(s.status, 408);
    assert.equal(s.rstCode, http2.constants.NGHTTP2_CANCEL);
    assert.deepEqual(await bounded(normal.outcome, 'the normal stream'), { status: 200, body: '/normal:5', rstCode: http2.constants.NGHTTP2_NO_ERROR });
    assert.deepEqual(await bounded(slow.outcome, 'the slow stream'), { status: 200, body: '/slow:9', rstCode: http2.constants.NGHTTP2_NO_ERROR });
    assert.equal(session.closed || session.destroyed, false, 'the session goes on');
    const next = send(session, '/after', 'GET', undefined);
    assert.deepEqual(await bounded(next.outcome, 'the stream after the reset'), { status: 200, body: '/after:0', rstCode: http2.constants.NGHTTP2_NO_ERROR });
    assert.deepEqual(aborted, ['/upload'], 'the handler saw the stalled request aborted');
    assert.deepEqual(completed.sort(), ['/after', '/normal', '/slow']);
  });

  it('many streams that send their headers and stall (up to the session\'s concurrency) each get 408 and a reset; the session then serves a normal stream', async () => {
    const n = Math.min(session.remoteSettings.maxConcurrentStreams ?? 100, 100);
    const before = aborted.length;
    const stalled = Array.from({ length: n }, (_, i) => send(session, `/stall/${i}`, 'POST', '', true));
    const outcomes = await bounded(Promise.all(stalled.map((s) => s.outcome)), 'the stalled streams');
    for (const o of outcomes) {
      assert.equal(o.status, 408);
      assert.equal(o.rstCode, http2.constants.NGHTTP2_CANCEL);
    }
    assert.equal(session.closed || session.destroyed, false, 'the session goes on');
    const next = send(session, '/after-many', 'GET', undefined);
    assert.deepEqual(await bounded(next.outcome, 'the stream after the stalled ones'), { status: 200, body: '/after-many:0', rstCode: http2.constants.NGHTTP2_NO_ERROR });
    assert.equal(aborted.length - before, n, 'the handler saw every stalled request aborted');
  });
});
